"""ATR / ATS parsing against real answers published in public lists.

Sources (each vector names its own):
- [list] pcsc-tools smartcard_list.txt (Ludovic Rousseau), the Debian pcsc-tools package
  (/usr/share/pcsc/smartcard_list.txt); quoted descriptions are from its entries.
- [acs] ACS ACR1281U-C1 / ACM1281U-C7 API manuals, "ATR format for ISO 14443 Part 4 PICCs":
  DESFire ATS 06 75 77 81 02 80 -> ATR 3B 81 80 01 80 80; EZ-Link ATR split into ATQB parts.
- [libnfc] libnfc's ISO 14443 tag table (quoted in lsnfc.c): ATS values printed without TL.
- [nfcpy] nfcpy 1.0.4 clf/pn53x.py: the default RATS response of its type 4 tag emulation.
- [iso] ISO/IEC 14443-3 annex B CRC_A examples: 00 00 -> A0 1E, 12 34 -> 26 CF.
"""

from __future__ import annotations

import csv
import importlib.resources
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contactless.atr import (
    FSC_TABLE,
    PCSC_RID,
    Atr,
    InterfaceBytes,
    atr_from_ats,
    card_name,
    contactless_atr,
    crc_a,
    parse_atr,
    parse_ats,
    standard_name,
)
from contactless.errors import AtrError, LocalProtocolError


@dataclass(frozen=True)
class RealAtr:
    source: str
    hex: str
    protocols: tuple[int, ...]
    historical: str
    tck: int | None
    kind: str | None = None  # "storage" / "iso14443-4" / None (not a PC/SC contactless ATR)
    card_code: int | None = None
    card_name: str | None = None
    standard: int | None = None


REAL_ATRS = [
    # Storage cards as a PC/SC reader (e.g. ACR122U) reports them.
    RealAtr(
        "[list] NXP/Philips MIFARE Classic 1K (as per PCSC std part3)",
        "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A",
        (0, 1), "804F0CA00000030603000100000000", 0x6A,
        "storage", 0x0001, "MIFARE Classic 1K", 0x03,
    ),
    RealAtr(
        "[list] RFID - ISO 14443 Type A - NXP Mifare card with 4k EEPROM",
        "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 02 00 00 00 00 69",
        (0, 1), "804F0CA00000030603000200000000", 0x69,
        "storage", 0x0002, "MIFARE Classic 4K", 0x03,
    ),
    RealAtr(
        "[list] RFID - ISO 14443 Type A - NXP Mifare Ultralight or UltralightC",
        "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 03 00 00 00 00 68",
        (0, 1), "804F0CA00000030603000300000000", 0x68,
        "storage", 0x0003, "MIFARE Ultralight", 0x03,
    ),
    RealAtr(
        "[list] Suica public transit card (Japan IC system), FeliCa",
        "3B 8F 80 01 80 4F 0C A0 00 00 03 06 11 00 3B 00 00 00 00 42",
        (0, 1), "804F0CA0000003061100 3B00000000", 0x42,
        "storage", 0x003B, "FeliCa", 0x11,
    ),
    RealAtr(
        "[list] Philips ICode, RFID - ISO 15693 - Philips Semiconductors",
        "3B 8F 80 01 80 4F 0C A0 00 00 03 06 0B 00 14 00 00 00 00 77",
        (0, 1), "804F0CA0000003060B001400000000", 0x77,
        "storage", 0x0014, "ICODESLI", 0x0B,
    ),
    RealAtr(
        "[list] NFC FORUM TYPE 1 TAG (Topaz; F0 04 is an ACS reader code)",
        "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 F0 04 00 00 00 00 9F",
        (0, 1), "804F0CA00000030603F00400000000", 0x9F,
        "storage", 0xF004, "Topaz/Jewel (NFC Forum Type 1)", 0x03,
    ),
    RealAtr(
        "[list] Infineon Mifare SLE 66R35 (FF 88: unidentified tag, SAK 88)",
        "3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 FF 88 00 00 00 00 1C",
        (0, 1), "804F0CA00000030603FF8800000000", 0x1C,
        "storage", 0xFF88, "Unidentified tag (reader code FF, SAK 88)", 0x03,
    ),
    # ISO 14443-4 cards: the historical bytes of the ATS (type A) or ATQB (type B).
    RealAtr(
        "[list] RFID - ISO 14443 Type A - NXP DESFire or DESFire EV1 or EV2",
        "3B 81 80 01 80 80",
        (0, 1), "80", 0x80, "iso14443-4",
    ),
    RealAtr(
        "[list] Visa contactless from Banque Populaire des Alpes (France) (Bank)",
        "3B 85 80 01 20 63 CB A5 A0 89",
        (0, 1), "2063CBA5A0", 0x89, "iso14443-4",
    ),
    RealAtr(
        "[list] JCOP BIO 31 Contactless Card",
        "3B 86 80 01 4A 43 4F 50 33 31 13",
        (0, 1), "4A434F503331", 0x13, "iso14443-4",
    ),
    RealAtr(
        "[list] RFID - ISO 14443 Type A - NXP Mifare Plus",
        "3B 87 80 01 C1 05 2F 2F 01 BC D6 A9",
        (0, 1), "C1052F2F01BCD6", 0xA9, "iso14443-4",
    ),
    RealAtr(
        "[list] CEPAS Card (EZ-Link), type B; [acs] same ATR split into ATQB fields",
        "3B 88 80 01 1C 2D 94 11 F7 71 85 00 BE",
        (0, 1), "1C2D9411F7718500", 0xBE, "iso14443-4",
    ),
    RealAtr(
        "[list] ISO 14443 Type B without historical bytes",
        "3B 80 80 01 01",
        (0, 1), "", 0x01, "iso14443-4",
    ),
    # Contact cards.
    RealAtr(
        "[list] CB Visa La Banque Postale (Gemalto): EMV contact, T=0 only, no TCK",
        "3B 65 00 00 20 63 CB 6A 00",
        (0,), "2063CB6A00", None,
    ),
    RealAtr(
        "[list] Visa (Sampo Estonia, 2010): T=1 only",
        "3B EF 00 00 81 31 FE 45 43 4D 42 5F 43 6F 6D 53 44 41 30 30 35 31 00 E4",
        (1,), "434D425F436F6D5344413030353100", 0xE4,
    ),
    RealAtr(
        "[list] Estonian Identity Card (EstEID 3.0 \"JavaCard\" cold): T=0 and T=1",
        "3B FE 18 00 00 80 31 FE 45 45 73 74 45 49 44 20 76 65 72 20 31 2E 30 A8",
        (0, 1), "457374454944207665722031 2E30", 0xA8,
    ),
    RealAtr(
        "[list] sim card RUS Beeline Krasnodar: T=0 and T=15 global bytes",
        "3B 9F 94 80 1F C7 80 31 E0 73 FE 21 11 63 07 52 51 83 07 90 00 CC",
        (0, 15), "8031E073FE21116307525183079000", 0xCC,
    ),
    RealAtr(
        "[list] Nokia SIM Ph2 16K Ver2.0: inverse convention",
        "3F 2F 00 80 69 AF 03 07 01 59 00 00 0A 0E 83 3E 9F 16",
        (0,), "8069AF030701590000 0A0E833E9F16", None,
    ),
    RealAtr(
        "[list] Sberbank of Russia MIR debit card (Bank): TA2 present, T=0 only",
        "3B FE 13 00 00 10 80 80 31 80 66 B0 84 0C 01 6E 01 83 00 90 00",
        (0,), "80318066B0840C016E0183009000", None,
    ),
]  # fmt: skip


@pytest.mark.parametrize("vector", REAL_ATRS, ids=lambda v: v.hex.replace(" ", ""))
def test_real_atr(vector: RealAtr) -> None:
    atr = parse_atr(vector.hex)
    assert atr.hex() == vector.hex.replace(" ", "")
    assert bytes(atr) == bytes.fromhex(vector.hex)
    assert atr.protocols == vector.protocols
    assert atr.historical_bytes == bytes.fromhex(vector.historical)
    assert len(atr.historical_bytes) == atr.t0 & 0x0F
    assert atr.tck == vector.tck
    assert atr.tck_ok is (None if vector.tck is None else True)
    if vector.kind is None:
        assert atr.contactless is None
        return
    info = atr.contactless
    assert info is not None
    assert info.kind == vector.kind
    assert info.historical_bytes == atr.historical_bytes
    if vector.kind == "storage":
        assert info.rid == PCSC_RID
        assert info.card_code == vector.card_code
        assert info.card_name == vector.card_name == info.name
        assert info.standard == vector.standard
        assert info.standard_name == standard_name(vector.standard or 0)
    else:
        assert info.card_code is None and info.card_name is None and info.rid is None
        assert info.name == "ISO 14443-4 card"


def test_interface_bytes_of_a_t1_card() -> None:
    # EstEID: TA1 18 (Fi 372, Di 12), TB1 00, TC1 00, TD1 80 -> TD2 31 -> TA3 FE (IFSC), TB3 45.
    atr = parse_atr("3BFE1800008031FE45457374454944207665722031 2E30A8")
    assert atr.interface_bytes == (
        InterfaceBytes(ta=0x18, tb=0x00, tc=0x00, td=0x80),
        InterfaceBytes(td=0x31),
        InterfaceBytes(ta=0xFE, tb=0x45),
    )
    assert (atr.fi, atr.di, atr.f_max_mhz) == (372, 12, 5.0)
    assert atr.get("TA3") == 0xFE and atr.get("tb3") == 0x45 and atr.get("TC3") is None
    assert atr.get("TA4") is None
    assert atr.interface_bytes[1].protocol == 1 and atr.interface_bytes[2].protocol is None
    assert atr.extra_guard_time == 0 and not atr.specific_mode
    assert atr.convention == "direct"


def test_ta1_and_global_bytes_of_a_sim() -> None:
    atr = parse_atr("3B9F94801FC78031E073FE21116307525183079000CC")
    assert atr.get("TA1") == 0x94
    assert (atr.fi, atr.di, atr.f_max_mhz) == (512, 8, 5.0)
    assert atr.get("TD2") == 0x1F and atr.get("TA3") == 0xC7  # T=15: class / clock stop


def test_inverse_convention_and_defaults_without_ta1() -> None:
    atr = parse_atr("3F2F008069AF030701590000 0A0E833E9F16")
    assert atr.ts == 0x3F and atr.convention == "inverse"
    assert atr.interface_bytes == (InterfaceBytes(tb=0x00),)
    assert (atr.fi, atr.di, atr.f_max_mhz) == (372, 1, 5.0)


def test_specific_mode_and_guard_time() -> None:
    atr = parse_atr("3BFE130000108080318066B0840C016E0183009000")  # Sberbank MIR
    assert atr.specific_mode and atr.get("TA2") == 0x80
    assert (atr.fi, atr.di) == (372, 4)
    assert parse_atr("3B 40 FF").extra_guard_time == 0xFF  # TC1 only, no historical bytes


def test_rfu_ta1_gives_none() -> None:
    atr = parse_atr("3B 10 70")  # TA1 70: FI 7 and DI 0 are both RFU
    assert atr.fi is None and atr.f_max_mhz is None and atr.di is None


def test_no_interface_bytes_at_all() -> None:
    atr = parse_atr("3B 02 14 50")  # [list] Schlumberger Multiflex 3k
    assert atr.interface_bytes == () and atr.protocols == (0,)
    assert atr.historical_bytes == bytes.fromhex("1450") and atr.tck is None


def test_type_b_reading_of_ez_link() -> None:
    # [acs] EZ-Link: application data 1C 2D 94 11, protocol info F7 71 85, MBLI 0.
    info = parse_atr("3B 88 80 01 1C 2D 94 11 F7 71 85 00 BE").contactless
    assert info is not None and info.type_b is not None
    atqb = info.type_b
    assert atqb.application_data == bytes.fromhex("1C2D9411")
    assert atqb.same_bitrate
    assert atqb.picc_to_pcd_kbps == atqb.pcd_to_picc_kbps == (106, 212, 424, 848)
    assert (atqb.fsci, atqb.fsc) == (7, 128)
    assert atqb.protocol_type == 1 and atqb.iso14443_4
    assert atqb.fwi == 8 and atqb.fwt == pytest.approx(4096 / 13.56e6 * 256)
    assert atqb.adc == 1 and atqb.cid_supported and not atqb.nad_supported
    assert atqb.mbli == 0


def test_type_b_reading_only_for_the_right_shape() -> None:
    # JCOP v2.4.1 has 8 historical bytes ("JCOPv241"), but the last has a non-zero low nibble.
    info = parse_atr("3B 88 80 01 4A 43 4F 50 76 32 34 31 5E").contactless
    assert info is not None and info.kind == "iso14443-4" and info.type_b is None
    info = parse_atr("3B 81 80 01 80 80").contactless
    assert info is not None and info.type_b is None


def test_describe() -> None:
    text = parse_atr("3B8F8001804F0CA000000306030001000000006A").describe()
    assert text.splitlines()[0] == "ATR 3B8F8001804F0CA000000306030001000000006A"
    assert "TD1 80" in text and "TD2 01" in text
    assert "protocols: T=0, T=1" in text
    assert "MIFARE Classic 1K (ISO 14443 A, part 3)" in text
    assert "TCK 6A (correct)" in text
    sim = parse_atr("3F2F008069AF030701590000 0A0E833E9F16").describe()
    assert "inverse convention" in sim and "TCK" not in sim


@pytest.mark.parametrize(
    "text",
    [
        "3B 81 80 01 80 80",
        "3b:81:80:01:80:80",
        "3b8180018080",
        " 3B81 8001\t8080\n",
    ],
)
def test_hex_text_forms(text: str) -> None:
    assert parse_atr(text).raw == bytes.fromhex("3B8180018080")


def test_bytes_like_inputs() -> None:
    raw = bytes.fromhex("3B8180018080")
    assert parse_atr(bytearray(raw)) == parse_atr(memoryview(raw)) == parse_atr(raw)


def test_wrong_type_is_the_callers_fault() -> None:
    with pytest.raises(LocalProtocolError):
        parse_atr(12345)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        parse_ats(None)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        parse_atr("3B8180018080").get("XY1")


# --- errors, each with the offset of the bad byte --------------------------------------------

ATR_ERRORS = [
    ("", 0, "at least TS and T0"),
    ("3B", 1, "at least TS and T0"),
    ("3C 00", 0, "TS is 3C"),
    ("03 00", 0, "TS is 03"),
    ("3B 81 80", 3, "TD2 (announced by TD1)"),
    ("3B F0 11", 3, "TB1 (announced by T0)"),
    # [list] "GSM SIM MobilCom (Gemplus)": 15 historical bytes announced, 13 present.
    ("3B 2F 00 80 69 AF 03 07 06 68 00 00 0A 0E 83 06", 16, "15 historical bytes"),
    # [list] "Desfire (eID)": a real card with a wrong TCK (00 where 0F is due).
    ("3B 86 80 01 06 75 77 81 02 8F 00", 10, "TCK is 00, expected 0F"),
    # [list] "Calypso (Transport)": TCK missing although T=1 is indicated.
    ("3B 8C 80 01 50 27 52 31 81 00 00 00 00 00 71 81", 16, "TCK is missing"),
    # [list] "VISA Société Générale": a stray byte after a T=0-only ATR.
    ("3B 65 00 00 20 63 CB 68 00 26", 9, "unexpected byte 26"),
    # [list] "TMES Total Mobility": two bytes after the TCK.
    ("3B 84 80 01 01 11 20 03 36 90 00", 9, "2 unexpected byte(s) after TCK"),
    ("3B 8F 80 01" + " 00" * 30, 33, "at most 33 bytes"),
    ("3B 8G", 4, "'G'"),
    ("3B 81 80 01 80 80 x", 18, "'x'"),
    ("3B8", 2, "odd number"),
]


@pytest.mark.parametrize(("text", "offset", "reason"), ATR_ERRORS)
def test_atr_errors(text: str, offset: int, reason: str) -> None:
    with pytest.raises(AtrError) as caught:
        parse_atr(text)
    assert caught.value.offset == offset
    assert reason in caught.value.reason
    assert f"offset {offset}" in str(caught.value)


def test_lenient_tck() -> None:
    wrong = parse_atr("3B 86 80 01 06 75 77 81 02 8F 00", strict=False)
    assert wrong.tck == 0x00 and wrong.tck_ok is False
    assert wrong.historical_bytes == bytes.fromhex("067577810 28F".replace(" ", ""))
    missing = parse_atr("3B 8C 80 01 50 27 52 31 81 00 00 00 00 00 71 81", strict=False)
    assert missing.tck is None and missing.tck_ok is False
    stray = parse_atr("3B 65 00 00 20 63 CB 68 00 26", strict=False)
    assert stray.tck == 0x26 and stray.tck_ok is False
    # Structural faults stay errors when lenient.
    with pytest.raises(AtrError):
        parse_atr("3B 84 80 01 01 11 20 03 36 90 00", strict=False)


# --- ATS ----------------------------------------------------------------------------------


def test_ats_desfire() -> None:
    # [acs]/[libnfc] MIFARE DESFire (EV1) ATS.
    ats = parse_ats("06 75 77 81 02 80")
    assert (ats.tl, ats.t0, ats.ta, ats.tb, ats.tc) == (6, 0x75, 0x77, 0x81, 0x02)
    assert (ats.fsci, ats.fsc) == (5, 64)
    assert not ats.same_bitrate
    assert ats.picc_to_pcd_kbps == ats.pcd_to_picc_kbps == (106, 212, 424, 848)
    assert (ats.fwi, ats.sfgi) == (8, 1)
    assert ats.fwt == pytest.approx(77.33e-3, rel=1e-3)
    assert ats.sfgt == pytest.approx(604.1e-6, rel=1e-3)
    assert ats.cid_supported and not ats.nad_supported
    assert ats.historical_bytes == b"\x80"
    assert ats.crc is None
    assert ats.hex() == "067577810280" and bytes(ats) == bytes.fromhex("067577810280")


def test_ats_with_crc() -> None:
    # A DESFire EV3 ATS as received with its CRC_A (02 F0), from a public MFRC522 driver note.
    ats = parse_ats("06 75 77 81 02 80 02 F0")
    assert ats.raw == bytes.fromhex("067577810280") and ats.crc == bytes.fromhex("02F0")
    assert ats.historical_bytes == b"\x80"


def test_ats_nfcpy_default() -> None:
    # [nfcpy] the RATS response nfcpy's PN53x type 4 emulation sends by default.
    ats = parse_ats("05 78 80 70 02")
    assert ats.fsc == 256 and ats.same_bitrate
    assert ats.picc_to_pcd_kbps == ats.pcd_to_picc_kbps == (106,)
    assert (ats.fwi, ats.sfgi, ats.sfgt) == (7, 0, 0.0)
    assert ats.cid_supported and not ats.nad_supported
    assert ats.historical_bytes == b""


@pytest.mark.parametrize(
    ("ats_without_tl", "historical", "ta", "tb", "tc"),
    [
        # [libnfc] JCOP31, JCOP31 v2.4.1, JCOP41 v2.2 (printed without TL).
        ("38 77 B1 4A 43 4F 50 33 31", b"JCOP31", 0x77, 0xB1, None),
        ("78 77 B1 02 4A 43 4F 50 76 32 34 31", b"JCOPv241", 0x77, 0xB1, 0x02),
        ("38 33 B1 4A 43 4F 50 34 31 56 32 32", b"JCOP41V22", 0x33, 0xB1, None),
    ],
)
def test_ats_jcop(ats_without_tl: str, historical: bytes, ta: int, tb: int, tc: int | None) -> None:
    body = bytes.fromhex(ats_without_tl)
    ats = parse_ats(bytes((len(body) + 1,)) + body)
    assert (ats.ta, ats.tb, ats.tc) == (ta, tb, tc)
    assert ats.fsc == 256 and ats.fwi == 11 and ats.sfgi == 1
    assert ats.historical_bytes == historical
    assert ats.cid_supported and not ats.nad_supported  # TC(1) 02 or its default


def test_ats_defaults_with_tl_only() -> None:
    ats = parse_ats("01")
    assert ats.t0 is None and ats.ta is None and ats.tb is None and ats.tc is None
    assert (ats.fsci, ats.fsc, ats.fwi, ats.sfgi) == (2, 32, 4, 0)
    assert ats.fwt == pytest.approx(4.833e-3, rel=1e-3)
    assert ats.picc_to_pcd_kbps == (106,) and ats.cid_supported and not ats.nad_supported


@pytest.mark.parametrize("fsci", range(16))
def test_fsc_table(fsci: int) -> None:
    expected = (16, 24, 32, 40, 48, 64, 96, 128, 256)[fsci] if fsci <= 8 else 256
    assert parse_ats(bytes((2, fsci))).fsc == expected
    assert FSC_TABLE[min(fsci, 8)] == expected


def test_fwt_bounds() -> None:
    # ISO 14443-4 7.2: FWT ranges from about 302 us (FWI 0) to about 4949 ms (FWI 14).
    assert parse_ats("03 20 00").fwt == pytest.approx(302.06e-6, rel=1e-4)
    assert parse_ats("03 20 E0").fwt == pytest.approx(4.949, rel=1e-3)
    assert parse_ats("03 20 F0").fwt == parse_ats("03 20 40").fwt  # FWI 15 (RFU) reads as 4
    assert parse_ats("03 20 0F").sfgt == 0.0  # SFGI 15 (RFU) reads as 0


def test_ats_nad_and_bitrates() -> None:
    ats = parse_ats("04 50 A2 03")  # TA: same D, DS=4, DR=4; TC: NAD and CID
    assert ats.same_bitrate
    assert ats.picc_to_pcd_kbps == (106, 424) and ats.pcd_to_picc_kbps == (106, 424)
    assert ats.nad_supported and ats.cid_supported


ATS_ERRORS = [
    ("", 0, "at least TL"),
    ("00", 0, "TL is 00"),
    ("07 75 77 81 02 80", 0, "TL says the ATS is 7 bytes but 6"),
    ("05 75 77 81 02 80", 0, "TL says the ATS is 5 bytes but 6"),
    ("06 75 77 81 02 80 02 F1", 0, "not its CRC_A"),
    ("03 70 80", 3, "TB(1)"),
    ("02 70", 2, "TA(1)"),
    ("FF" + "00" * 254, 0, "at most 254"),
    ("06 75 77 81 02 8Z", 16, "'Z'"),
]


@pytest.mark.parametrize(("text", "offset", "reason"), ATS_ERRORS)
def test_ats_errors(text: str, offset: int, reason: str) -> None:
    with pytest.raises(AtrError) as caught:
        parse_ats(text)
    assert caught.value.offset == offset
    assert reason in caught.value.reason


# --- CRC_A and building the PC/SC ATR ---------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "crc"),
    [("0000", "A01E"), ("1234", "26CF"), ("067577810280", "02F0")],
)
def test_crc_a(data: str, crc: str) -> None:
    assert crc_a(bytes.fromhex(data)) == bytes.fromhex(crc)


@pytest.mark.parametrize(
    ("ats", "atr"),
    [
        ("06 75 77 81 02 80", "3B 81 80 01 80 80"),  # [acs] DESFire
        ("0A 38 77 B1 4A 43 4F 50 33 31", "3B 86 80 01 4A 43 4F 50 33 31 13"),  # [list] JCOP31
        (  # [libnfc] JCOP31 v2.4.1 -> [list] "RFID - ISO 14443 Type A - NXP JCOP"
            "0D 78 77 B1 02 4A 43 4F 50 76 32 34 31",
            "3B 88 80 01 4A 43 4F 50 76 32 34 31 5E",
        ),
        (  # [libnfc] JCOP41 v2.2 -> [list] "JCOP41 Cards"
            "0D 38 33 B1 4A 43 4F 50 34 31 56 32 32",
            "3B 89 80 01 4A 43 4F 50 34 31 56 32 32 4D",
        ),
        ("05 78 80 70 02", "3B 80 80 01 01"),  # [nfcpy] no historical bytes
    ],
)
def test_atr_from_ats_matches_real_readers(ats: str, atr: str) -> None:
    assert atr_from_ats(ats) == bytes.fromhex(atr)
    assert atr_from_ats(bytes.fromhex(ats)) == bytes.fromhex(atr)


def test_atr_from_ats_keeps_15_historical_bytes() -> None:
    historical = bytes(range(1, 21))
    ats = bytes((2 + len(historical), 0x00)) + historical
    atr = parse_atr(atr_from_ats(ats))
    assert atr.historical_bytes == historical[:15]


def test_contactless_atr_type_b() -> None:
    # [acs] EZ-Link: ATQB application data + protocol info + MBLI byte.
    built = contactless_atr(bytes.fromhex("1C2D9411F7718500"))
    assert built == bytes.fromhex("3B888001 1C2D9411F7718500 BE")
    with pytest.raises(LocalProtocolError):
        contactless_atr(bytes(16))


@given(st.binary(max_size=15))
def test_contactless_atr_round_trip(historical: bytes) -> None:
    atr = parse_atr(contactless_atr(historical))
    assert atr.historical_bytes == historical
    assert atr.protocols == (0, 1) and atr.tck_ok is True
    assert atr.contactless is not None


# --- tables ---------------------------------------------------------------------------------


def test_card_and_standard_names() -> None:
    assert card_name(0x0001) == "MIFARE Classic 1K"
    assert card_name(0x0026) == "MIFARE Mini"
    assert card_name(0x0036) == "MIFARE Plus SL1 2K"
    assert card_name(0x003A) == "MIFARE Ultralight C"
    assert card_name(0x0005) == "Unknown card name 0005"
    assert card_name(0xFF08) == "Unidentified tag (reader code FF, SAK 08)"
    assert standard_name(0x03) == "ISO 14443 A, part 3"
    assert standard_name(0x07) == "ISO 14443 B, part 3"
    assert standard_name(0x40).startswith("Low frequency")
    assert standard_name(0x04) == "RFU standard 04"


def test_card_table_has_no_duplicates() -> None:
    text = importlib.resources.files("contactless").joinpath("atr_cards.csv").read_text()
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    keys = [(row["table"], int(row["code"], 16)) for row in rows]
    assert len(keys) == len(set(keys)) > 60
    assert {row["source"] for row in rows} == {"pcsc3", "acs"}


# --- robustness -----------------------------------------------------------------------------


@settings(max_examples=500)
@given(st.binary(max_size=40))
def test_random_atr_bytes_raise_only_atr_error(raw: bytes) -> None:
    for strict in (True, False):
        try:
            atr = parse_atr(raw, strict=strict)
        except AtrError as error:
            assert 0 <= error.offset <= len(raw)
        else:
            assert isinstance(atr, Atr) and atr.raw == raw


@settings(max_examples=300)
@given(st.binary(min_size=2, max_size=33).map(lambda b: b"\x3b" + b[1:]))
def test_random_atr_after_ts_raise_only_atr_error(raw: bytes) -> None:
    try:
        parse_atr(raw).describe()
    except AtrError as error:
        assert 1 <= error.offset <= len(raw)


@settings(max_examples=500)
@given(st.binary(max_size=40))
def test_random_ats_bytes_raise_only_atr_error(raw: bytes) -> None:
    try:
        ats = parse_ats(raw)
    except AtrError as error:
        assert 0 <= error.offset <= len(raw)
    else:
        assert ats.raw == raw[: raw[0]] and len(ats.historical_bytes) <= len(raw)


@settings(max_examples=300)
@given(st.text(alphabet="0123456789abcdefABCDEF :xG\t", max_size=60))
def test_random_text_raises_only_atr_error(text: str) -> None:
    for parse in (parse_atr, parse_ats):
        try:
            parse(text)
        except AtrError as error:
            assert 0 <= error.offset <= max(len(text), 33)
