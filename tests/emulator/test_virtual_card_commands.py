"""Command-level behaviour of the virtual card: SELECT matching, GPO/PDOL checks, READ
RECORD and GET DATA addressing, VERIFY, and the ISO 7816-4 errors for everything else."""

from __future__ import annotations

from pathlib import Path

import pytest
from virtual_terminal import Terminal, dol_data

import contactless.emulator
from contactless.emulator import VirtualCard, load_profile, load_profile_file

PROFILES = Path(contactless.emulator.__file__).parent / "profiles"

VISA_CREDIT = bytes.fromhex("A0000000031010")
VISA_ELECTRON = bytes.fromhex("A0000000032010")


@pytest.fixture
def visa() -> Terminal:
    return Terminal(VirtualCard(load_profile("visa")))


@pytest.fixture
def mastercard() -> Terminal:
    return Terminal(VirtualCard(load_profile("mastercard")))


# --- SELECT ------------------------------------------------------------------------------


def test_partial_name_selects_first_then_next_occurrence(visa: Terminal) -> None:
    prefix = bytes.fromhex("A000000003")
    first = visa.select(prefix)
    assert first.sw == 0x9000 and first.find("6F/84") == VISA_CREDIT
    second = visa.select(prefix, p2=0x02)
    assert second.sw == 0x9000 and second.find("6F/84") == VISA_ELECTRON
    assert visa.select(prefix, p2=0x02).sw == 0x6A82  # no third occurrence
    # After the failed SELECT the Electron application is still the current one.
    assert visa.select(prefix, p2=0x02).sw == 0x6A82
    assert visa.select(prefix).find("6F/84") == VISA_CREDIT  # P2=00 starts over


def test_next_occurrence_without_a_current_match_selects_the_first(visa: Terminal) -> None:
    assert visa.select(b"2PAY.SYS.DDF01").sw == 0x9000
    answer = visa.select(bytes.fromhex("A000000003"), p2=0x02)
    assert answer.find("6F/84") == VISA_CREDIT


def test_rid_plus_pix_prefix_selects_the_longer_aid() -> None:
    amex = Terminal(VirtualCard(load_profile("amex")))
    answer = amex.select(bytes.fromhex("A00000002501"))
    assert answer.sw == 0x9000 and answer.find("6F/84") == bytes.fromhex("A000000025010801")


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("00A4040007A000000009999900", 0x6A82),  # unknown AID
        ("00A404000E315041592E5359532E444446303100", 0x6A82),  # contact PSE: not on this card
        ("00A40000023F0000", 0x6A86),  # select by file ID
        ("00A404040007A000000003101000", 0x6700),  # Lc says 0 bytes... malformed
        ("00A4040C07A000000003101000", 0x6A86),  # P2=0C (no FCI) is not supported
        ("00A4040000", 0x6700),  # no name
        ("00A4040011" + "A0" * 17 + "00", 0x6700),  # longer than any DF name
    ],
)
def test_select_errors(visa: Terminal, apdu: str, sw: int) -> None:
    assert visa.send(apdu).sw == sw


def test_select_without_le_still_answers_the_fci(visa: Terminal) -> None:
    answer = visa.send("00A4040007A0000000031010")  # case 3
    assert answer.sw == 0x9000 and answer.find("6F/84") == VISA_CREDIT


# --- GET PROCESSING OPTIONS ---------------------------------------------------------------


def test_gpo_checks_the_pdol_data(visa: Terminal) -> None:
    app = visa.card.profile.applications[0]
    pdol_data = dol_data(app.pdol or b"")
    assert visa.gpo(app.pdol).sw == 0x6985  # nothing selected
    visa.select(VISA_CREDIT)

    def gpo(data: bytes) -> int:
        return visa.send(bytes((0x80, 0xA8, 0x00, 0x00, len(data))) + data + b"\x00").sw

    assert gpo(b"\x83" + bytes((len(pdol_data) - 1,)) + pdol_data[:-1]) == 0x6700  # too short
    assert gpo(b"\x83" + bytes((len(pdol_data) + 1,)) + pdol_data + b"\x01") == 0x6700  # too long
    assert gpo(b"\x83\x00") == 0x6700  # empty template for a card with a PDOL
    assert gpo(b"\x83\x30" + pdol_data) == 0x6700  # 83 length disagrees with Lc
    assert gpo(pdol_data) == 0x6985  # no 83 template
    assert gpo(b"\x83" + bytes((len(pdol_data),)) + pdol_data + b"\x9f\x02\x00") == 0x6700
    assert visa.send("80A8000000").sw == 0x6700  # no data at all (case 2)
    assert visa.send("80A8010002830000").sw == 0x6A86
    assert visa.gpo(app.pdol).sw == 0x9000
    assert visa.gpo(app.pdol).sw == 0x6985  # a second GPO in the same transaction


def test_gpo_without_pdol_takes_an_empty_template() -> None:
    jcb = Terminal(VirtualCard(load_profile("jcb")))
    jcb.select(bytes.fromhex("A0000000651010"))
    assert jcb.send("80A800000483020000").sw == 0x6700
    assert jcb.send("80A80000028300").sw == 0x9000


def test_atc_exhausted_blocks_the_card() -> None:
    card = VirtualCard(load_profile("jcb"))
    card._atc = 0xFFFF  # as after 65535 transactions
    terminal = Terminal(card)
    terminal.select(bytes.fromhex("A0000000651010"))
    assert terminal.send("80A80000028300").sw == 0x6985


# --- READ RECORD / GET DATA ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("00B2010C00", 0x9000),  # SFI 1 record 1
        ("00B2090C00", 0x6A83),  # record 9 of SFI 1 does not exist
        ("00B2012C00", 0x6A82),  # SFI 5 does not exist
        ("00B2010800", 0x6A86),  # P2 low bits 000: not "record number in P1"
        ("00B2000C00", 0x6A86),  # record 0
        ("00B2010400", 0x6A86),  # SFI 0
        ("00B201FC00", 0x6A86),  # SFI 31
        ("00B2010C0100", 0x6700),  # READ RECORD carries no data
    ],
)
def test_read_record_addressing(mastercard: Terminal, apdu: str, sw: int) -> None:
    mastercard.select(bytes.fromhex("A0000000041010"))
    assert mastercard.send(apdu).sw == sw


def test_read_record_needs_an_application(mastercard: Terminal) -> None:
    assert mastercard.read_record(1, 1).sw == 0x6985
    mastercard.select(b"2PAY.SYS.DDF01")
    assert mastercard.read_record(1, 1).sw == 0x6A82  # the PPSE has no records


def test_certificate_records_use_two_byte_lengths(mastercard: Terminal) -> None:
    mastercard.select(bytes.fromhex("A0000000041010"))
    record = mastercard.read_record(3, 1)
    assert record.data[:2] == b"\x70\x81" and len(record.data) == 3 + record.data[2]
    assert len(record.find("70/90")) == 176 and record.find("70/8F") == b"\x05"
    icc = mastercard.read_record(4, 2)
    assert icc.data[:2] == b"\x70\x81" and len(icc.find("70/9F46")) == 176


def test_get_data(mastercard: Terminal) -> None:
    card = mastercard.card
    assert mastercard.get_data(0x9F36).sw == 0x6985  # nothing selected
    mastercard.select(bytes.fromhex("A0000000041010"))
    assert mastercard.get_data(0x9F36).find("9F36") == card.atc.to_bytes(2, "big")
    assert mastercard.get_data(0x9F17).find("9F17") == b"\x03"
    assert mastercard.get_data(0x9F13).find("9F13") == bytes.fromhex("0012")
    assert mastercard.get_data(0x9F4F).sw == 0x9000
    assert mastercard.get_data(0x9F99).sw == 0x6A88
    assert mastercard.get_data(0x5A00).sw == 0x6A88  # the PAN is not for GET DATA
    assert mastercard.send("00CA9F3600").sw == 0x6E00  # GET DATA is a proprietary-class command


def test_get_data_for_absent_objects() -> None:
    amex = Terminal(VirtualCard(load_profile("amex")))
    amex.select(bytes.fromhex("A000000025010801"))
    assert amex.get_data(0x9F13).sw == 0x6A88  # no last online ATC register
    assert amex.get_data(0x9F4F).sw == 0x6A88  # no transaction log


# --- VERIFY -------------------------------------------------------------------------------


def test_verify_counts_down_and_blocks(mastercard: Terminal) -> None:
    mastercard.select(bytes.fromhex("A0000000041010"))
    assert mastercard.send("0020008000").sw == 0x63C3  # no data: tries left
    assert mastercard.verify("0000").sw == 0x63C2
    assert mastercard.verify("4315").sw == 0x9000  # right PIN resets the counter
    assert mastercard.get_data(0x9F17).find("9F17") == b"\x03"
    assert [mastercard.verify("1111").sw for _ in range(3)] == [0x63C2, 0x63C1, 0x63C0]
    assert mastercard.verify("4315").sw == 0x6983  # blocked: even the right PIN fails
    assert mastercard.get_data(0x9F17).find("9F17") == b"\x00"


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("0020008008141234FFFFFFFFFF", 0x6A80),  # control nibble 1: not a format 2 block
        ("0020008008221234FFFFFFFFFF", 0x6A80),  # length 2: too short for a PIN
        ("00200080082412A4FFFFFFFFFF", 0x6A80),  # non-digit in the PIN
        ("0020008008241234FFFFFF00FF", 0x6A80),  # filler is not F
        ("0020008004241234", 0x6700),  # not 8 bytes
        ("0020008808241234FFFFFFFFFF", 0x6A86),  # enciphered PIN: not supported
        ("0020018008241234FFFFFFFFFF", 0x6A86),
    ],
)
def test_verify_errors(mastercard: Terminal, apdu: str, sw: int) -> None:
    mastercard.select(bytes.fromhex("A0000000041010"))
    assert mastercard.send(apdu).sw == sw
    assert mastercard.card.pin_tries == 3  # a malformed command costs no try


def test_verify_needs_an_application(mastercard: Terminal) -> None:
    assert mastercard.verify("4315").sw == 0x6985


# --- GENERATE AC errors ------------------------------------------------------------------


def test_generate_ac_errors(mastercard: Terminal) -> None:
    app = mastercard.card.profile.applications[0]
    cdol1 = app.cdol1 or b""
    mastercard.select(app.aid)
    assert mastercard.generate_ac(0x80, cdol1).sw == 0x6985  # before GPO
    mastercard.gpo(app.pdol)
    data = dol_data(cdol1)
    assert mastercard.send(b"\x80\xae\xc0\x00" + bytes((len(data),)) + data + b"\x00").sw == 0x6A86
    assert mastercard.send(b"\x80\xae\x81\x00" + bytes((len(data),)) + data + b"\x00").sw == 0x6A86
    assert mastercard.send(b"\x80\xae\x80\x01" + bytes((len(data),)) + data + b"\x00").sw == 0x6A86
    short = data[:-1]
    assert (
        mastercard.send(b"\x80\xae\x80\x00" + bytes((len(short),)) + short + b"\x00").sw == 0x6700
    )
    assert mastercard.send("80AE800000").sw == 0x6700  # no CDOL1 data at all
    cda = mastercard.send(b"\x80\xae\x90\x00" + bytes((len(data),)) + data + b"\x00")
    assert cda.sw == 0x9000  # CDA requested: accepted, answered without a signature


def test_generate_ac_needs_a_cdol1(tmp_path: Path) -> None:
    text = (PROFILES / "jcb.toml").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("cdol1")]
    without_cdol1 = "\n".join(lines).replace('"8C", ', "")
    path = tmp_path / "no-cdol1.toml"
    path.write_text(without_cdol1, encoding="utf-8")
    card = VirtualCard(load_profile_file(path))
    terminal = Terminal(card)
    app = card.profile.applications[0]
    assert app.cdol1 is None
    terminal.select(app.aid)
    assert terminal.gpo(app.pdol).sw == 0x9000
    assert terminal.send("80AE80000100").sw == 0x6985


# --- ISO errors for everything else ------------------------------------------------------


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("", 0x6700),
        ("00", 0x6700),
        ("00A404", 0x6700),
        ("00A4040005A0000000", 0x6700),  # Lc 5, 4 data bytes
        ("00A40400000008A0000000031010", 0x6700),  # extended Lc 8, 7 data bytes
        ("0084000008", 0x6D00),  # GET CHALLENGE: not on this card
        ("00FF000000", 0x6D00),
        ("80A4040007A000000003101000", 0x6E00),  # SELECT with the proprietary class
        ("FFCA000000", 0x6E00),  # PC/SC pseudo-APDU: the reader's job, not the card's
        ("40A4040007A000000003101000", 0x6E00),
        ("0CA4040007A000000003101000", 0x6882),  # secure messaging
        ("01A4040007A000000003101000", 0x6881),  # logical channel 1
        ("00C0000010", 0x6985),  # GET RESPONSE with nothing pending
        ("00C0010010", 0x6A86),
    ],
)
def test_iso_errors(visa: Terminal, apdu: str, sw: int) -> None:
    answer = visa.send(apdu)
    assert (answer.sw, answer.data) == (sw, b"")


def test_extended_length_select_is_understood(visa: Terminal) -> None:
    answer = visa.send("00A404000000" + "07" + "A0000000031010" + "0000")
    assert answer.sw == 0x9000 and answer.find("6F/84") == VISA_CREDIT


def test_non_bytes_input_is_a_caller_error() -> None:
    from contactless.errors import LocalProtocolError

    card = VirtualCard(load_profile("visa"))
    with pytest.raises(LocalProtocolError, match="bytes, not str"):
        card.process("00A40400")  # type: ignore[arg-type]
    assert card.process(bytearray.fromhex("0084000008")) == b"\x6d\x00"


def test_an_internal_fault_answers_6f00_and_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import contactless.emulator.card as card_module

    def broken(card: VirtualCard, command: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(card_module, "_COMMANDS", {0xB2: (0x00, broken)})
    card = VirtualCard(load_profile("visa"))
    with caplog.at_level("ERROR", logger="contactless.emulator.card"):
        assert card.process(bytes.fromhex("00B2010C00")) == b"\x6f\x00"
    assert "00B2010C (5 bytes)" in caplog.text and "simulated bug" in caplog.text
