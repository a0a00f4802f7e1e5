"""EMV bit fields and structures against public examples, and their errors."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contactless.errors import ContactlessError, LocalProtocolError, RemoteProtocolError
from contactless.tlv import bitfields
from contactless.tlv.bitfields import (
    AflEntry,
    CvmRule,
    Track2,
    cid_summary,
    decode_afl,
    decode_aip,
    decode_auc,
    decode_cid,
    decode_ctq,
    decode_cvm_list,
    decode_tsi,
    decode_ttq,
    decode_tvr,
    parse_track2,
)


def set_bits(decoded: dict[str, bool]) -> set[str]:
    return {key for key, value in decoded.items() if value}


# --- AIP (82) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_value", "expected"),
    [
        # Mastercard contactless (M/Chip): CVM, TRM, CDA; byte 2 bit 8 = EMV mode (Book C-2).
        (
            "1980",
            {
                "cardholder_verification_supported",
                "terminal_risk_management",
                "cda_supported",
                "emv_mode_supported",
            },
        ),
        # Mastercard contact, DDA + CDA.
        (
            "3900",
            {
                "dda_supported",
                "cardholder_verification_supported",
                "terminal_risk_management",
                "cda_supported",
            },
        ),
        # SDA card.
        (
            "5800",
            {"sda_supported", "cardholder_verification_supported", "terminal_risk_management"},
        ),
        # Visa contact SDA with issuer authentication.
        (
            "5C00",
            {
                "sda_supported",
                "cardholder_verification_supported",
                "terminal_risk_management",
                "issuer_authentication_supported",
            },
        ),
        # Visa qVSDC with fDDA.
        ("2000", {"dda_supported"}),
        ("0001", {"relay_resistance_supported"}),
        ("0000", set()),
    ],
)
def test_aip(hex_value: str, expected: set[str]) -> None:
    assert set_bits(decode_aip(bytes.fromhex(hex_value))) == expected


def test_aip_labels_are_human_text_in_bit_order() -> None:
    assert bitfields.AIP.labels(bytes.fromhex("5901")) == [
        "SDA supported",
        "Cardholder verification supported",
        "Terminal risk management to be performed",
        "CDA supported",
        "Relay resistance protocol supported",
    ]


def test_set_rfu_bits_are_reported_not_dropped() -> None:
    assert bitfields.AIP.labels(bytes.fromhex("0010")) == ["RFU byte 2 bit 5"]
    assert decode_aip(bytes.fromhex("0010")) == dict.fromkeys(decode_aip(b"\0\0"), False)


def test_every_bit_field_names_every_non_rfu_bit_once() -> None:
    for field in (
        bitfields.AIP,
        bitfields.AUC,
        bitfields.TVR,
        bitfields.TSI,
        bitfields.TTQ,
        bitfields.CTQ,
    ):
        keys = [bit.key for bit in field.bits if bit is not None]
        assert len(keys) == len(set(keys)), field.name
        all_ones = field.decode(b"\xff" * field.length)
        assert list(all_ones) == keys and all(all_ones.values())


# --- AUC, TSI, CTQ, TTQ, TVR ----------------------------------------------------------------


def test_auc() -> None:
    assert set_bits(decode_auc(bytes.fromhex("3F00"))) == {
        "domestic_goods",
        "international_goods",
        "domestic_services",
        "international_services",
        "atm",
        "non_atm",
    }
    assert set_bits(decode_auc(bytes.fromhex("FFC0"))) == set(decode_auc(b"\0\0"))


def test_tsi_e800_is_the_usual_completed_transaction() -> None:
    assert set_bits(decode_tsi(bytes.fromhex("E800"))) == {
        "oda_performed",
        "cvm_performed",
        "card_risk_management_performed",
        "terminal_risk_management_performed",
    }


@pytest.mark.parametrize(
    ("hex_value", "labels"),
    [
        (
            "36000000",
            [
                "EMV mode supported",
                "EMV contact chip supported",
                "Online PIN supported",
                "Signature supported",
            ],
        ),
        (
            "B6004000",
            [
                "Mag-stripe mode supported",
                "EMV mode supported",
                "EMV contact chip supported",
                "Online PIN supported",
                "Signature supported",
                "Consumer Device CVM supported",
            ],
        ),
        (
            "2A800000",
            [
                "EMV mode supported",
                "Offline-only reader",
                "Signature supported",
                "Online cryptogram required",
            ],
        ),
        ("00000080", ["fDDA v1.0 supported"]),
    ],
)
def test_ttq(hex_value: str, labels: list[str]) -> None:
    assert bitfields.TTQ.labels(bytes.fromhex(hex_value)) == labels


def test_ttq_keys() -> None:
    decoded = decode_ttq(bytes.fromhex("B6004000"))
    assert decoded["magstripe_mode_supported"] and decoded["cdcvm_supported"]
    assert not decoded["offline_only_reader"] and not decoded["cvm_required"]


def test_ctq() -> None:
    assert set_bits(decode_ctq(bytes.fromhex("8080"))) == {"online_pin_required", "cdcvm_performed"}
    assert set_bits(decode_ctq(bytes.fromhex("2040"))) == {
        "online_if_oda_fails",
        "issuer_update_supported",
    }


@pytest.mark.parametrize(
    ("hex_value", "labels"),
    [
        ("0000000000", []),
        ("0000008000", ["Transaction exceeds floor limit"]),
        ("8000000000", ["Offline data authentication was not performed"]),
        ("0000048000", ["Online CVM captured", "Transaction exceeds floor limit"]),
        ("0240000000", ["SDA selected", "Expired application"]),
        ("0000200000", ["PIN Try Limit exceeded"]),
        ("0000000040", ["Issuer authentication failed"]),
    ],
)
def test_tvr(hex_value: str, labels: list[str]) -> None:
    assert bitfields.TVR.labels(bytes.fromhex(hex_value)) == labels


def test_tvr_keys() -> None:
    decoded = decode_tvr(bytes.fromhex("0000008000"))
    assert decoded["floor_limit_exceeded"]
    assert sum(decoded.values()) == 1


@pytest.mark.parametrize(
    ("decoder", "tag", "length"),
    [
        (decode_aip, "82", 2),
        (decode_auc, "9F07", 2),
        (decode_tvr, "95", 5),
        (decode_tsi, "9B", 2),
        (decode_ttq, "9F66", 4),
        (decode_ctq, "9F6C", 2),
        (decode_cid, "9F27", 1),
    ],
)
def test_wrong_length_names_tag_and_expected_length(
    decoder: Callable[[bytes], Any], tag: str, length: int
) -> None:
    for bad in (b"", b"\x00" * (length + 1)):
        with pytest.raises(RemoteProtocolError) as caught:
            decoder(bad)
        message = str(caught.value)
        assert f"tag {tag}" in message
        assert f"{length} byte" in message


def test_non_bytes_is_the_callers_error() -> None:
    with pytest.raises(LocalProtocolError):
        decode_aip("1980")  # type: ignore[arg-type]


# --- CID (9F27) --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("byte", "cryptogram", "advice", "reason"),
    [
        (0x00, "AAC", False, "No information given"),
        (0x40, "TC", False, "No information given"),
        (0x80, "ARQC", False, "No information given"),
        (0xC0, "RFU", False, "No information given"),
        (0x88, "ARQC", True, "No information given"),
        (0x09, "AAC", True, "Service not allowed"),
        (0x0A, "AAC", True, "PIN Try Limit exceeded"),
        (0x03, "AAC", False, "Issuer authentication failed"),
        (0x07, "AAC", False, "RFU"),
    ],
)
def test_cid(byte: int, cryptogram: str, advice: bool, reason: str) -> None:
    decoded = decode_cid(bytes([byte]))
    assert decoded["cryptogram"] == cryptogram
    assert decoded["advice_required"] is advice
    assert decoded["reason"] == reason
    assert decoded["reason_code"] == byte & 0x07


def test_cid_summary() -> None:
    assert cid_summary(b"\x80") == "ARQC"
    assert cid_summary(b"\x0a") == "AAC, advice required, PIN Try Limit exceeded"
    assert cid_summary(b"\x90") == "ARQC, payment system bits 01"


# --- AFL (94) ----------------------------------------------------------------------------------


def test_afl_public_example() -> None:
    assert decode_afl(bytes.fromhex("0801010010010301")) == [
        AflEntry(sfi=1, first=1, last=1, oda=0),
        AflEntry(sfi=2, first=1, last=3, oda=1),
    ]


def test_afl_more_entries_and_records() -> None:
    entries = decode_afl(bytes.fromhex("100102011801010020010200F0010500"))
    assert [(e.sfi, list(e.records), e.oda) for e in entries] == [
        (2, [1, 2], 1),
        (3, [1], 0),
        (4, [1, 2], 0),
        (30, [1, 2, 3, 4, 5], 0),
    ]
    assert decode_afl(b"") == []


@pytest.mark.parametrize(
    ("hex_value", "fragment"),
    [
        ("080101", "multiple of 4"),
        ("0801010008", "multiple of 4"),
        ("00010100", "entry 1 (offset 0, 00010100): SFI 0 is outside 1-30"),
        ("08010100F8010100", "entry 2 (offset 4, F8010100): SFI 31 is outside 1-30"),
        ("0C010100", "three low bits"),
        ("08000100", "first record number is 0"),
        ("08030100", "last record 1 is before first record 3"),
        ("08010102", "2 records for offline data authentication, but only 1"),
        ("0801010010010304", "entry 2 (offset 4, 10010304): 4 records"),
    ],
)
def test_afl_errors_name_the_entry(hex_value: str, fragment: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        decode_afl(bytes.fromhex(hex_value))
    assert fragment in str(caught.value)
    assert "tag 94" in str(caught.value)


# --- CVM list (8E) ------------------------------------------------------------------------------


def test_cvm_list_mastercard_style() -> None:
    # Online PIN if supported (else next), signature if supported, no CVM if supported.
    cvm = decode_cvm_list(bytes.fromhex("000000000000000042031E031F03"))
    assert (cvm.x, cvm.y) == (0, 0)
    assert cvm.rules == (
        CvmRule("Enciphered PIN verified online", "If terminal supports the CVM", True, 0x02, 0x03),
        CvmRule("Signature (paper)", "If terminal supports the CVM", False, 0x1E, 0x03),
        CvmRule("No CVM required", "If terminal supports the CVM", False, 0x1F, 0x03),
    )


def test_cvm_list_amounts_and_conditions() -> None:
    # X = 50.00, Y = 100.00 (minor units); offline plaintext PIN then signature if over X;
    # no CVM if under Y; fail CVM processing always.
    cvm = decode_cvm_list(bytes.fromhex("000013880000271041075E071F080000"))
    assert (cvm.x, cvm.y) == (5000, 10000)
    assert [(r.method, r.condition, r.apply_next) for r in cvm.rules] == [
        (
            "Plaintext PIN verified by ICC",
            "If transaction is in the application currency and is over X value",
            True,
        ),
        (
            "Signature (paper)",
            "If transaction is in the application currency and is over X value",
            True,
        ),
        (
            "No CVM required",
            "If transaction is in the application currency and is under Y value",
            False,
        ),
        ("Fail CVM processing", "Always", False),
    ]


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (0x01, "Plaintext PIN verified by ICC"),
        (0x03, "Plaintext PIN verified by ICC and signature"),
        (0x04, "Enciphered PIN verified by ICC"),
        (0x05, "Enciphered PIN verified by ICC and signature"),
        (0x08, "Finger biometric verified offline"),
        (0x10, "RFU CVM 10"),
        (0x20, "Payment system specific CVM 20"),
        (0x30, "Issuer specific CVM 30"),
        (0x3F, "Not available for use"),
        (0x5E, "Signature (paper)"),  # the apply-next bit is not part of the code
    ],
)
def test_cvm_method_names(code: int, name: str) -> None:
    assert bitfields.cvm_method_name(code) == name


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (0x00, "Always"),
        (0x01, "If unattended cash"),
        (0x02, "If not unattended cash and not manual cash and not purchase with cashback"),
        (0x04, "If manual cash"),
        (0x05, "If purchase with cashback"),
        (0x0A, "RFU condition 0A"),
        (0x80, "Payment system specific condition 80"),
    ],
)
def test_cvm_condition_names(code: int, name: str) -> None:
    assert bitfields.cvm_condition_name(code) == name


def test_cvm_rule_text() -> None:
    rule = decode_cvm_list(bytes.fromhex("00000000000000004203")).rules[0]
    assert (
        str(rule) == "Enciphered PIN verified online (if terminal supports the CVM), else next rule"
    )


@pytest.mark.parametrize("hex_value", ["", "00000000", "00000000000000", "000000000000000042"])
def test_cvm_list_bad_lengths(hex_value: str) -> None:
    with pytest.raises(RemoteProtocolError, match="tag 8E"):
        decode_cvm_list(bytes.fromhex(hex_value))


def test_cvm_list_without_rules() -> None:
    assert decode_cvm_list(bytes(8)).rules == ()


# --- Track 2 (57) -------------------------------------------------------------------------------

VISA_TRACK2 = bytes.fromhex("4761739001010010D22122011143804400000F")
MASTERCARD_TRACK2 = bytes.fromhex("5413330089099130D25122010123409172")


def test_track2_visa_test_card() -> None:
    track = parse_track2(VISA_TRACK2)
    assert track == Track2("4761739001010010", "2212", "201", "1143804400000")


def test_track2_without_padding() -> None:
    track = parse_track2(MASTERCARD_TRACK2)
    assert (track.pan, track.expiry, track.service_code, track.discretionary) == (
        "5413330089099130",
        "2512",
        "201",
        "0123409172",
    )


def test_track2_short_pan_and_no_discretionary_data() -> None:
    track = parse_track2(bytes.fromhex("374245455400126D2709101F"))
    assert (track.pan, track.expiry, track.service_code, track.discretionary) == (
        "374245455400126",
        "2709",
        "101",
        "",
    )


def test_track2_repr_and_str_are_masked() -> None:
    track = parse_track2(VISA_TRACK2)
    for text in (repr(track), str(track), f"{track}"):
        assert "4761739001010010" not in text
        assert "1143804400000" not in text
    assert str(track) == "476173******0010D2212201*************"
    assert track.text(show_sensitive=True) == "4761739001010010D22122011143804400000"


@pytest.mark.parametrize(
    ("hex_value", "fragment"),
    [
        ("", "empty"),
        ("4761739001010010", "no field separator"),
        ("4761739001010010D2212F", "fewer than 7 digits"),
        ("4761739001010010D221220111D3", "nibble 26 (byte 13)"),
        ("47617390A1010010D2212201", "nibble 8 (byte 4) is 'A'"),
        ("4761739001010010D2212201FF", "nibble 24"),
        ("1234567890123456789012D2212201", "PAN has 22 digits"),
        ("D2212201", "PAN has 0 digits"),
    ],
)
def test_track2_errors(hex_value: str, fragment: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        parse_track2(bytes.fromhex(hex_value))
    message = str(caught.value)
    assert fragment in message
    assert "tag 57" in message
    assert "4761739001010010" not in message and "47617390" not in message


# --- properties ---------------------------------------------------------------------------------

DECODERS: list[Callable[[bytes], Any]] = [
    decode_aip,
    decode_auc,
    decode_tvr,
    decode_tsi,
    decode_ttq,
    decode_ctq,
    decode_cid,
    cid_summary,
    decode_afl,
    decode_cvm_list,
    parse_track2,
    bitfields.AIP.labels,
    bitfields.TVR.labels,
]


@pytest.mark.parametrize("decoder", DECODERS, ids=lambda d: getattr(d, "__qualname__", str(d)))
@given(data=st.binary(max_size=64))
def test_random_bytes_give_a_result_or_a_contactless_error(
    decoder: Callable[[bytes], Any], data: bytes
) -> None:
    with contextlib.suppress(ContactlessError):
        decoder(data)


@given(st.binary(min_size=2, max_size=2))
def test_aip_round_trips_every_named_bit(data: bytes) -> None:
    decoded = decode_aip(data)
    for index, bit in enumerate(bitfields.AIP.bits):
        if bit is not None:
            assert decoded[bit.key] == bool(data[index // 8] & (0x80 >> (index % 8)))


@given(
    st.lists(
        st.tuples(
            st.integers(1, 30), st.integers(1, 255), st.integers(0, 254), st.integers(0, 255)
        ),
        max_size=8,
    )
)
def test_valid_afls_decode_to_their_entries(rows: list[tuple[int, int, int, int]]) -> None:
    entries = [AflEntry(sfi, first, min(255, first + extra), 0) for sfi, first, extra, _ in rows]
    entries = [
        AflEntry(e.sfi, e.first, e.last, oda % (e.last - e.first + 2))
        for e, (_, _, _, oda) in zip(entries, rows, strict=True)
    ]
    raw = b"".join(bytes([e.sfi << 3, e.first, e.last, e.oda]) for e in entries)
    assert decode_afl(raw) == entries
