"""Masking of PAN, Track 1/2 and names: first 6 + last 4 digits, never more, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contactless.masking import (
    NAME_MASK,
    SENSITIVE_TAGS,
    mask_name,
    mask_pan,
    mask_track1,
    mask_track2,
    mask_value,
)

# Public test-card PANs (Visa ADVT, Mastercard M-TIP, Amex, a 19-digit UnionPay-style PAN).
PANS = {
    "4761739001010010": "476173******0010",
    "5413330089099130": "541333******9130",
    "374245455400126": "374245*****0126",
    "6212345678901234567": "621234*********4567",
    "4000000000002": "400000***0002",
}


@pytest.mark.parametrize(("pan", "masked"), PANS.items())
def test_mask_pan_keeps_first_six_and_last_four(pan: str, masked: str) -> None:
    assert mask_pan(pan) == masked
    assert len(masked) == len(pan)


@pytest.mark.parametrize(
    ("given_pan", "masked"),
    [
        ("4761739001010010FFF", "476173******0010"),  # cn padding from tag 5A
        ("374245455400126f", "374245*****0126"),
        (bytes.fromhex("374245455400126F"), "374245*****0126"),
        ("4761 7390 0101 0010", "476173******0010"),
        ("5413-3300-8909-9130", "541333******9130"),
    ],
)
def test_mask_pan_normalises_padding_bytes_and_separators(
    given_pan: str | bytes, masked: str
) -> None:
    assert mask_pan(given_pan) == masked


@pytest.mark.parametrize(
    ("short", "masked"),
    [
        ("476173900101", "********0101"),  # 12 digits: 6 + 4 would leave only 2 hidden
        ("12345678", "****5678"),
        ("1234567", "*******"),
        ("1234", "****"),
        ("", ""),
    ],
)
def test_short_numbers_show_less(short: str, masked: str) -> None:
    assert mask_pan(short) == masked


@pytest.mark.parametrize(
    "garbage",
    [
        "4761A39001010010",
        "not a pan",
        "４７６１７３９００１０１００１０",
        "47617390010100\x1b[2J",
        "²³",
    ],
)
def test_mask_pan_masks_garbage_whole(garbage: str) -> None:
    masked = mask_pan(garbage)
    assert set(masked) <= {"*"}
    assert len(masked) == len(garbage.strip())


def test_mask_pan_accepts_odd_types_without_raising() -> None:
    assert mask_pan(None) == "****"  # type: ignore[arg-type]
    assert mask_pan(4761739001010010) == "476173******0010"  # type: ignore[arg-type]


def test_mask_track2_from_tag_57_bytes() -> None:
    value = bytes.fromhex("4761739001010010D22122011143804400000F")
    assert mask_track2(value) == "476173******0010D2212201*************"


def test_mask_track2_from_hex_and_magstripe_text() -> None:
    assert mask_track2("5413330089099130d2512201012340917") == "541333******9130D2512201*********"
    assert mask_track2("54:13:33:00:89:09:91:30:D2:51:22:01") == "541333******9130D2512201"
    assert mask_track2(";4761739001010010=22122011143804400000?") == (
        "476173******0010=2212201*************"
    )


@pytest.mark.parametrize(
    "garbage",
    [
        "4761739001010010",  # no separator
        "4761739001010010D2212",  # too short after the separator
        "4761739001010010D2212201D123",  # two separators
        "47617390A1010010D2212201123",  # letter in the PAN
        "12345678901234567890D2212201",  # 20-digit PAN
        "",
    ],
)
def test_mask_track2_masks_unparseable_input_whole(garbage: str) -> None:
    masked = mask_track2(garbage)
    assert set(masked) <= {"*"}
    assert len(masked) == len(garbage)


def test_mask_track1() -> None:
    track1 = b"B4761739001010010^VISA ACQUIRER TEST/CARD 01^2212201113380000"
    masked = mask_track1(track1)
    assert masked == "B476173******0010^" + NAME_MASK + "^2212201" + "*" * 9
    assert "VISA" not in masked
    assert mask_track1("no carets here") == "*" * 14


def test_sensitive_tags_are_the_card_and_cardholder_data() -> None:
    assert frozenset({"5A", "57", "56", "9F6B", "9F1F", "9F20", "5F20", "9F0B"}) == SENSITIVE_TAGS


@pytest.mark.parametrize(
    ("tag", "value", "masked"),
    [
        ("5A", bytes.fromhex("4761739001010010"), "476173******0010"),
        ("5a", bytes.fromhex("374245455400126F"), "374245*****0126"),
        (0x5A, bytes.fromhex("5413330089099130"), "541333******9130"),
        (
            "57",
            bytes.fromhex("4761739001010010D22122011143804400000F"),
            "476173******0010D2212201*************",
        ),
        (
            "9F6B",
            bytes.fromhex("5413330089099130D25122010123409172"),
            "541333******9130D2512201**********",
        ),
        ("5F20", b"CARDHOLDER/VISA", "********"),
        ("9F0B", "张三".encode("gbk"), "********"),
        ("9F1F", b"1234567890", "*" * 10),
        ("9F20", bytes.fromhex("123456789F"), "*" * 9),
        ("56", b"B4761739001010010^TEST/CARD^2212201", "B476173******0010^********^2212201"),
    ],
)
def test_mask_value_per_tag(tag: str | int, value: bytes, masked: str) -> None:
    assert mask_value(tag, value) == masked  # type: ignore[arg-type]


def test_mask_value_of_other_tags_is_hex() -> None:
    assert mask_value("82", b"\x19\x80") == "1980"
    assert mask_value("9F02", bytes.fromhex("000000000100")) == "000000000100"


def test_mask_value_accepts_text_already_decoded() -> None:
    assert mask_value("5A", "4761739001010010") == "476173******0010"
    assert mask_value("5F20", "CARDHOLDER/VISA") == "********"


@pytest.mark.parametrize("tag", ["5F20", "9F0B"])
def test_masked_names_do_not_tell_their_length(tag: str) -> None:
    # One star per character would tell "LI/A" from "REDACTED/CARDHOLDER" (and a live read
    # from the replay of its redacted trace).
    names = [b"", b"LI/A", b"CARDHOLDER/VISA", b"REDACTED/CARDHOLDER", b"X" * 45]
    assert {mask_value(tag, name) for name in names} == {NAME_MASK}
    assert {mask_value(tag, name.decode()) for name in names} == {NAME_MASK}
    assert NAME_MASK == "********" and mask_name("A") == NAME_MASK


def test_the_track1_name_does_not_tell_its_length() -> None:
    short = mask_track1("B4761739001010010^LI/A^2212201")
    long = mask_track1("B4761739001010010^VISA ACQUIRER TEST/CARD 01^2212201")
    assert short == long == "B476173******0010^" + NAME_MASK + "^2212201"


# --- properties: never raise, never reveal more than 6 + 4 digits ---------------------------


@given(st.text(max_size=80) | st.binary(max_size=40))
def test_maskers_never_raise(data: str | bytes) -> None:
    mask_pan(data)
    mask_track2(data)
    mask_track1(data)
    for tag in SENSITIVE_TAGS:
        mask_value(tag, data)


@given(st.text(alphabet="0123456789", min_size=13, max_size=19))
def test_pan_masking_hides_all_but_six_and_four(pan: str) -> None:
    masked = mask_pan(pan)
    assert masked[:6] == pan[:6]
    assert masked[-4:] == pan[-4:]
    assert masked[6:-4] == "*" * (len(pan) - 10)


@given(
    pan=st.text(alphabet="0123456789", min_size=13, max_size=19),
    expiry_service=st.text(alphabet="0123456789", min_size=7, max_size=7),
    discretionary=st.text(alphabet="0123456789", max_size=16),
)
def test_track2_masking_never_contains_the_pan(
    pan: str, expiry_service: str, discretionary: str
) -> None:
    nibbles = f"{pan}D{expiry_service}{discretionary}"
    if len(nibbles) % 2:
        nibbles += "F"
    masked = mask_track2(bytes.fromhex(nibbles))
    assert pan not in masked
    assert masked.startswith(mask_pan(pan) + "D" + expiry_service)
    assert masked.endswith("*" * len(discretionary))
