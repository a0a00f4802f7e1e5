"""DOL parsing and building (EMV Book 3 section 5.4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contactless.errors import RemoteProtocolError, TlvError
from contactless.tlv.dol import build_dol, dol_length, fit_value, parse_dol

VISA_PDOL = "9F66049F02069F03069F1A0295055F2A029A039C019F3704"


def test_parse_visa_pdol() -> None:
    entries = parse_dol(bytes.fromhex(VISA_PDOL))
    assert [(tag.hex().upper(), length) for tag, length in entries] == [
        ("9F66", 4),
        ("9F02", 6),
        ("9F03", 6),
        ("9F1A", 2),
        ("95", 5),
        ("5F2A", 2),
        ("9A", 3),
        ("9C", 1),
        ("9F37", 4),
    ]
    assert dol_length(entries) == 33


def test_parse_three_byte_tag_and_zero_length() -> None:
    # DF8117 (a Book C-2 tag: DF, then 81 with bit 8 set continues, 17 ends it).
    entries = parse_dol(bytes.fromhex("DF8117019F4C00"))
    assert entries == [(bytes.fromhex("DF8117"), 1), (bytes.fromhex("9F4C"), 0)]


def test_parse_empty_dol() -> None:
    assert parse_dol(b"") == []


@pytest.mark.parametrize(
    ("dol", "offset", "tag", "reason"),
    [
        ("9F0206 9F", 3, None, "tag is truncated"),
        ("9F0206 9F1A", 3, "9F1A", "no length byte"),
        ("9F0206 00 02", 3, None, "00 is not a valid tag"),
        ("FF02", 0, None, "FF is not a valid tag"),
        ("9F81818181 01", 0, None, "longer than 4 bytes"),
    ],
)
def test_parse_errors_name_offset_and_tag(
    dol: str, offset: int, tag: str | None, reason: str
) -> None:
    with pytest.raises(TlvError) as caught:
        parse_dol(bytes.fromhex(dol))
    error = caught.value
    assert isinstance(error, RemoteProtocolError)  # the card sent it: the card's fault
    assert error.offset == offset
    assert error.tag == tag
    assert reason in str(error)


def test_build_visa_pdol_from_terminal_values() -> None:
    values = {
        "9F66": bytes.fromhex("36004000"),
        "9F02": bytes.fromhex("000000000150"),
        "9F03": bytes.fromhex("000000000000"),
        "9F1A": bytes.fromhex("0250"),
        "95": bytes(5),
        "5F2A": bytes.fromhex("0978"),
        "9A": bytes.fromhex("240517"),
        "9C": b"\x00",
        "9F37": bytes.fromhex("A1B2C3D4"),
    }
    data = build_dol(parse_dol(bytes.fromhex(VISA_PDOL)), values)
    expected = [
        "36004000",  # 9F66
        "000000000150",  # 9F02
        "000000000000",  # 9F03
        "0250",  # 9F1A
        "0000000000",  # 95
        "0978",  # 5F2A
        "240517",  # 9A
        "00",  # 9C
        "A1B2C3D4",  # 9F37
    ]
    assert data.hex().upper() == "".join(expected)


def test_unknown_and_unavailable_tags_are_zero_filled() -> None:
    # 9F7C (known, no value given) and DF8117 (not known to the terminal) -> zeros.
    entries = parse_dol(bytes.fromhex("9F02069F7C04DF811702"))
    data = build_dol(entries, {0x9F02: bytes.fromhex("000000000100")})
    assert data.hex().upper() == "000000000100" + "00000000" + "0000"


def test_constructed_tag_is_zero_filled_even_with_a_value() -> None:
    entries = parse_dol(bytes.fromhex("BF0C03"))
    assert build_dol(entries, {b"\xbf\x0c": b"\x01\x02\x03"}) == bytes(3)


@pytest.mark.parametrize(
    ("tag", "value", "length", "expected"),
    [
        # n: longer -> leftmost bytes dropped; shorter -> leading zeros (right-justified)
        ("9F02", "000000000150", 4, "00000150"),
        ("9F02", "0150", 6, "000000000150"),
        ("9F1A", "0840", 1, "40"),
        # b: longer -> rightmost bytes dropped; shorter -> trailing zeros
        ("9F33", "E0F8C8", 2, "E0F8"),
        ("9F40", "F000F0A001", 7, "F000F0A0010000"),
        # cn: shorter -> trailing FF
        ("5A", "4761739001010010", 10, "4761739001010010FFFF"),
        # an / ans: shorter -> trailing zeros, longer -> rightmost dropped
        ("9F1C", "5445524D", 8, "5445524D00000000"),
        ("9F4E", "4D45524348414E54", 4, "4D455243"),
    ],
)
def test_fitting_follows_the_format(tag: str, value: str, length: int, expected: str) -> None:
    entries = [(bytes.fromhex(tag), length)]
    assert build_dol(entries, {tag: bytes.fromhex(value)}).hex().upper() == expected


def test_fit_value_without_a_known_format_is_binary() -> None:
    assert fit_value(b"\x01\x02\x03", 2, None) == b"\x01\x02"
    assert fit_value(b"\x01", 3, None) == b"\x01\x00\x00"


def test_tags_may_be_given_as_int_text_or_bytes() -> None:
    entries = parse_dol(bytes.fromhex("9C019F3502"))
    by_int = build_dol(entries, {0x9C: b"\x20", 0x9F35: b"\x22"})
    by_text = build_dol(entries, {"9c": b"\x20", "9F 35": b"\x22"})
    by_bytes = build_dol(entries, {b"\x9c": b"\x20", b"\x9f\x35": b"\x22"})
    assert by_int == by_text == by_bytes == bytes.fromhex("200022")


_tags = st.sampled_from(["9F02", "9F66", "5A", "9F1C", "9F37", "DF8117", "9F7C", "BF0C", "95"])


@given(st.lists(st.tuples(_tags, st.integers(0, 255)), max_size=12), st.binary(max_size=40))
def test_built_data_always_has_the_asked_length(pairs: list[tuple[str, int]], value: bytes) -> None:
    dol = b"".join(bytes.fromhex(tag) + bytes((length,)) for tag, length in pairs)
    entries = parse_dol(dol)
    assert [(t.hex().upper(), n) for t, n in entries] == pairs
    values = {tag: value for tag, _ in pairs}
    assert len(build_dol(entries, values)) == dol_length(entries)


@given(st.binary(max_size=30))
def test_parse_never_crashes(data: bytes) -> None:
    try:
        entries = parse_dol(data)
    except TlvError as error:
        assert 0 <= error.offset < len(data)
    else:
        assert b"".join(tag + bytes((length,)) for tag, length in entries) == data
