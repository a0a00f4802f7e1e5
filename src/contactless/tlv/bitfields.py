"""Decoders for EMV bit fields and small binary structures.

Every bit is named from its specification table, kept here as data (one ordered row per
bit, byte 1 bit 8 first) from which a construct ``BitStruct`` is built:

- AIP (82), AUC (9F07), TVR (95), TSI (9B): EMV 4.4 Book 3 Annex C1, C2, C5, C6; AIP byte 2
  from EMV Contactless Book C-2 / C-3;
- TTQ (9F66): EMV Contactless Book A table 5-4 and Book C-3 (byte 3 bit 4: Book C-6; byte 4
  bit 8: Book C-7); CTQ (9F6C): Book C-3 Annex A.2 and Visa VCPS;
- CID (9F27): Book 3 section 6.5.5.4; CVM List (8E): Book 3 Annex C3 tables 43 and 44;
- AFL (94): Book 3 section 10.2; Track 2 Equivalent Data (57): Book 3 Annex A.

Values of the wrong length, or that break the structure's rules, raise
:class:`~contactless.errors.RemoteProtocolError` naming the tag, the expected length or the
entry at fault; messages never quote card data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from construct import (
    BitsInteger,
    BitStruct,
    Flag,
    GreedyRange,
    Int32ub,
    Struct,
)

from ..errors import LocalProtocolError, RemoteProtocolError
from ..masking import mask_pan

__all__ = [
    "AIP",
    "AUC",
    "CTQ",
    "TSI",
    "TTQ",
    "TVR",
    "AflEntry",
    "Bit",
    "BitField",
    "CvmList",
    "CvmRule",
    "Track2",
    "cid_summary",
    "cvm_condition_name",
    "cvm_method_name",
    "decode_afl",
    "decode_aip",
    "decode_auc",
    "decode_cid",
    "decode_ctq",
    "decode_cvm_list",
    "decode_tsi",
    "decode_ttq",
    "decode_tvr",
    "parse_track2",
]


def _require_bytes(data: object, what: str) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise LocalProtocolError(f"{what} needs bytes, not {type(data).__name__}")


# --- named bit fields -----------------------------------------------------------------------


class Bit(NamedTuple):
    """One named bit: ``key`` for programs (``"cda_supported"``), ``label`` for people."""

    key: str
    label: str


#: A table row for an RFU bit (reserved for future use: no name, decoded as an unnamed flag).
RFU = None


class BitField:
    """A fixed-length bit field described by an ordered table of :class:`Bit` rows.

    Rows run byte 1 bit 8 first, then byte 1 bit 7 ... byte N bit 1; ``None`` marks an RFU
    bit. ``decode`` checks the length and returns ``{key: bool}`` for the named bits.
    """

    def __init__(self, tag: str, name: str, bits: Sequence[Bit | None]) -> None:
        if len(bits) % 8:
            raise ValueError(f"{name}: the bit table must cover whole bytes")
        self.tag = tag
        self.name = name
        self.bits: tuple[Bit | None, ...] = tuple(bits)
        self.length = len(bits) // 8
        self._fields = [
            bit.key if bit is not None else f"rfu_byte{i // 8 + 1}_bit{8 - i % 8}"
            for i, bit in enumerate(self.bits)
        ]
        self._labels = [
            bit.label if bit is not None else f"RFU byte {i // 8 + 1} bit {8 - i % 8}"
            for i, bit in enumerate(self.bits)
        ]
        self._struct = BitStruct(*(field / Flag for field in self._fields))

    def _parse(self, data: object) -> dict[str, bool]:
        raw = _require_bytes(data, f"decoding {self.name}")
        if len(raw) != self.length:
            raise RemoteProtocolError(
                f"{self.name} (tag {self.tag}) must be {self.length} bytes, got {len(raw)}"
            )
        parsed = self._struct.parse(raw)
        return {field: bool(parsed[field]) for field in self._fields}

    def decode(self, data: bytes) -> dict[str, bool]:
        """``{key: is_set}`` for every named bit, in table order."""
        parsed = self._parse(data)
        return {bit.key: parsed[bit.key] for bit in self.bits if bit is not None}

    def labels(self, data: bytes) -> list[str]:
        """Labels of the bits that are set, in table order; a set RFU bit is reported as
        ``"RFU byte N bit M"`` (a card or terminal using it is worth noticing)."""
        parsed = self._parse(data)
        return [
            label for field, label in zip(self._fields, self._labels, strict=True) if parsed[field]
        ]


def _bits(*rows: tuple[str, str] | None) -> list[Bit | None]:
    return [Bit(*row) if row is not None else RFU for row in rows]


AIP = BitField(
    "82",
    "Application Interchange Profile",
    _bits(
        # byte 1 (Book 3 Annex C1)
        ("xda_supported", "XDA supported"),
        ("sda_supported", "SDA supported"),
        ("dda_supported", "DDA supported"),
        ("cardholder_verification_supported", "Cardholder verification supported"),
        ("terminal_risk_management", "Terminal risk management to be performed"),
        ("issuer_authentication_supported", "Issuer authentication supported"),
        ("on_device_cvm_supported", "On-device cardholder verification supported"),
        ("cda_supported", "CDA supported"),
        # byte 2 (contactless: Book C-2 A.1.16, Book C-3 A.2)
        ("emv_mode_supported", "Contactless EMV mode supported"),
        ("mobile_phone", "Mobile phone"),
        ("contactless_transaction", "Contactless transaction"),
        RFU,
        RFU,
        RFU,
        RFU,
        ("relay_resistance_supported", "Relay resistance protocol supported"),
    ),
)

AUC = BitField(
    "9F07",
    "Application Usage Control",
    _bits(
        ("domestic_cash", "Valid for domestic cash transactions"),
        ("international_cash", "Valid for international cash transactions"),
        ("domestic_goods", "Valid for domestic goods"),
        ("international_goods", "Valid for international goods"),
        ("domestic_services", "Valid for domestic services"),
        ("international_services", "Valid for international services"),
        ("atm", "Valid at ATMs"),
        ("non_atm", "Valid at terminals other than ATMs"),
        ("domestic_cashback", "Domestic cashback allowed"),
        ("international_cashback", "International cashback allowed"),
        RFU,
        RFU,
        RFU,
        RFU,
        RFU,
        RFU,
    ),
)

TVR = BitField(
    "95",
    "Terminal Verification Results",
    _bits(
        # byte 1
        ("oda_not_performed", "Offline data authentication was not performed"),
        ("sda_failed", "SDA failed"),
        ("icc_data_missing", "ICC data missing"),
        ("card_on_exception_file", "Card appears on terminal exception file"),
        ("dda_failed", "DDA failed"),
        ("cda_failed", "CDA failed"),
        ("sda_selected", "SDA selected"),
        ("xda_selected", "XDA selected"),
        # byte 2
        ("different_versions", "ICC and terminal have different application versions"),
        ("expired_application", "Expired application"),
        ("not_yet_effective", "Application not yet effective"),
        ("service_not_allowed", "Requested service not allowed for card product"),
        ("new_card", "New card"),
        RFU,
        ("biometric_successful", "Biometric performed and successful"),
        ("biometric_template_not_supported", "Biometric template format not supported"),
        # byte 3
        ("cvm_not_successful", "Cardholder verification was not successful"),
        ("unrecognised_cvm", "Unrecognised CVM"),
        ("pin_try_limit_exceeded", "PIN Try Limit exceeded"),
        ("pin_pad_missing", "PIN entry required and PIN pad not present or not working"),
        ("pin_not_entered", "PIN entry required, PIN pad present, but PIN was not entered"),
        ("online_cvm_captured", "Online CVM captured"),
        ("biometric_device_failed", "Biometric required but capture device not working"),
        (
            "biometric_subtype_bypassed",
            "Biometric required, device present, but subtype entry bypassed",
        ),
        # byte 4
        ("floor_limit_exceeded", "Transaction exceeds floor limit"),
        ("lower_offline_limit_exceeded", "Lower consecutive offline limit exceeded"),
        ("upper_offline_limit_exceeded", "Upper consecutive offline limit exceeded"),
        ("random_online", "Transaction selected randomly for online processing"),
        ("merchant_forced_online", "Merchant forced transaction online"),
        ("biometric_try_limit_exceeded", "Biometric Try Limit exceeded"),
        ("biometric_type_not_supported", "A selected Biometric Type not supported"),
        ("xda_failed", "XDA signature verification failed"),
        # byte 5
        ("default_tdol_used", "Default TDOL used"),
        ("issuer_authentication_failed", "Issuer authentication failed"),
        ("script_failed_before_final_gac", "Script processing failed before final GENERATE AC"),
        ("script_failed_after_final_gac", "Script processing failed after final GENERATE AC"),
        RFU,  # reserved for use by the EMV Contactless Specifications
        ("ca_ecc_key_missing", "CA ECC key missing"),
        ("ecc_key_recovery_failed", "ECC key recovery failed"),
        RFU,  # reserved for use by the EMV Contactless Specifications
    ),
)

TSI = BitField(
    "9B",
    "Transaction Status Information",
    _bits(
        ("oda_performed", "Offline data authentication was performed"),
        ("cvm_performed", "Cardholder verification was performed"),
        ("card_risk_management_performed", "Card risk management was performed"),
        ("issuer_authentication_performed", "Issuer authentication was performed"),
        ("terminal_risk_management_performed", "Terminal risk management was performed"),
        ("script_processing_performed", "Script processing was performed"),
        RFU,
        RFU,
        *([RFU] * 8),
    ),
)

TTQ = BitField(
    "9F66",
    "Terminal Transaction Qualifiers",
    _bits(
        # byte 1
        ("magstripe_mode_supported", "Mag-stripe mode supported"),
        RFU,
        ("emv_mode_supported", "EMV mode supported"),
        ("contact_chip_supported", "EMV contact chip supported"),
        ("offline_only_reader", "Offline-only reader"),
        ("online_pin_supported", "Online PIN supported"),
        ("signature_supported", "Signature supported"),
        (
            "oda_for_online_supported",
            "Offline data authentication for online authorizations supported",
        ),
        # byte 2
        ("online_cryptogram_required", "Online cryptogram required"),
        ("cvm_required", "CVM required"),
        ("offline_pin_supported", "(Contact chip) Offline PIN supported"),
        RFU,
        RFU,
        RFU,
        RFU,
        RFU,
        # byte 3
        ("issuer_update_supported", "Issuer Update Processing supported"),
        ("cdcvm_supported", "Consumer Device CVM supported"),
        RFU,
        RFU,
        ("cdcvm_required", "Consumer Device CVM required"),
        RFU,
        RFU,
        RFU,
        # byte 4
        ("fdda_v1_supported", "fDDA v1.0 supported"),
        *([RFU] * 7),
    ),
)

CTQ = BitField(
    "9F6C",
    "Card Transaction Qualifiers",
    _bits(
        # byte 1
        ("online_pin_required", "Online PIN required"),
        ("signature_required", "Signature required"),
        (
            "online_if_oda_fails",
            "Go online if offline data authentication fails and reader is online capable",
        ),
        (
            "switch_interface_if_oda_fails",
            "Switch interface if offline data authentication fails and reader supports contact "
            "chip",
        ),
        ("online_if_expired", "Go online if application expired"),
        ("switch_interface_for_cash", "Switch interface for cash transactions"),
        ("switch_interface_for_cashback", "Switch interface for cashback transactions"),
        ("not_valid_for_atm", "Not valid for contactless ATM transactions"),
        # byte 2
        ("cdcvm_performed", "Consumer Device CVM performed"),
        ("issuer_update_supported", "Card supports Issuer Update Processing at the POS"),
        *([RFU] * 6),
    ),
)


def decode_aip(data: bytes) -> dict[str, bool]:
    """Application Interchange Profile (82, 2 bytes): named bits -> set?

    >>> bits = decode_aip(bytes.fromhex("1980"))
    >>> bits["cda_supported"], bits["sda_supported"], bits["emv_mode_supported"]
    (True, False, True)
    """
    return AIP.decode(data)


def decode_auc(data: bytes) -> dict[str, bool]:
    """Application Usage Control (9F07, 2 bytes): named bits -> set?"""
    return AUC.decode(data)


def decode_tvr(data: bytes) -> dict[str, bool]:
    """Terminal Verification Results (95, 5 bytes): named bits -> set?"""
    return TVR.decode(data)


def decode_tsi(data: bytes) -> dict[str, bool]:
    """Transaction Status Information (9B, 2 bytes): named bits -> set?"""
    return TSI.decode(data)


def decode_ttq(data: bytes) -> dict[str, bool]:
    """Terminal Transaction Qualifiers (9F66, 4 bytes): named bits -> set?"""
    return TTQ.decode(data)


def decode_ctq(data: bytes) -> dict[str, bool]:
    """Card Transaction Qualifiers (9F6C, 2 bytes): named bits -> set?"""
    return CTQ.decode(data)


# --- Cryptogram Information Data (9F27) -------------------------------------------------------

_CID_STRUCT = BitStruct(
    "cryptogram" / BitsInteger(2),
    "payment_system" / BitsInteger(2),
    "advice_required" / Flag,
    "reason" / BitsInteger(3),
)

#: Book 3 table 15, bits 8-7.
CRYPTOGRAM_TYPES: tuple[str, ...] = ("AAC", "TC", "ARQC", "RFU")
#: Book 3 table 15, bits 3-1 (values 4-7 are RFU).
CID_REASONS: tuple[str, ...] = (
    "No information given",
    "Service not allowed",
    "PIN Try Limit exceeded",
    "Issuer authentication failed",
)


def decode_cid(data: bytes) -> dict[str, Any]:
    """Cryptogram Information Data (9F27, 1 byte).

    Returns ``{"cryptogram": "AAC"|"TC"|"ARQC"|"RFU", "payment_system": int (bits 6-5),
    "advice_required": bool, "reason_code": int, "reason": str}``.

    >>> decode_cid(b"\\x80")["cryptogram"]
    'ARQC'
    """
    raw = _require_bytes(data, "decoding Cryptogram Information Data")
    if len(raw) != 1:
        raise RemoteProtocolError(
            f"Cryptogram Information Data (tag 9F27) must be 1 byte, got {len(raw)}"
        )
    parsed = _CID_STRUCT.parse(raw)
    reason = int(parsed.reason)
    return {
        "cryptogram": CRYPTOGRAM_TYPES[parsed.cryptogram],
        "payment_system": int(parsed.payment_system),
        "advice_required": bool(parsed.advice_required),
        "reason_code": reason,
        "reason": CID_REASONS[reason] if reason < len(CID_REASONS) else "RFU",
    }


def cid_summary(data: bytes) -> str:
    """One line for people: ``"ARQC"``, ``"AAC, advice required, PIN Try Limit exceeded"``."""
    cid = decode_cid(data)
    parts = [cid["cryptogram"]]
    if cid["payment_system"]:
        parts.append(f"payment system bits {cid['payment_system']:02b}")
    if cid["advice_required"]:
        parts.append("advice required")
    if cid["reason_code"]:
        parts.append(
            cid["reason"] if cid["reason"] != "RFU" else f"RFU reason {cid['reason_code']}"
        )
    return ", ".join(parts)


# --- Application File Locator (94) ----------------------------------------------------------

_AFL_ENTRY = BitStruct(
    "sfi" / BitsInteger(5),
    "sfi_low_bits" / BitsInteger(3),
    "first" / BitsInteger(8),
    "last" / BitsInteger(8),
    "oda" / BitsInteger(8),
)


@dataclass(frozen=True, slots=True)
class AflEntry:
    """One AFL entry: read records ``first``..``last`` of file ``sfi``; the first ``oda`` of
    them take part in offline data authentication."""

    sfi: int
    first: int
    last: int
    oda: int

    @property
    def records(self) -> range:
        """The record numbers to read."""
        return range(self.first, self.last + 1)


def decode_afl(data: bytes) -> list[AflEntry]:
    """Application File Locator (94): 4-byte entries ``SFI<<3, first, last, ODA count``.

    Checks each entry (Book 3 section 10.2): SFI 1-30 with the three low bits zero, first
    record >= 1, last >= first, ODA count <= number of records.

    >>> decode_afl(bytes.fromhex("08010100"))
    [AflEntry(sfi=1, first=1, last=1, oda=0)]
    """
    raw = _require_bytes(data, "decoding an AFL")
    if len(raw) % 4:
        raise RemoteProtocolError(
            f"Application File Locator (tag 94) length must be a multiple of 4 bytes, "
            f"got {len(raw)}"
        )
    entries: list[AflEntry] = []
    for index in range(len(raw) // 4):
        offset = index * 4
        parsed = _AFL_ENTRY.parse(raw[offset : offset + 4])
        entry = AflEntry(int(parsed.sfi), int(parsed.first), int(parsed.last), int(parsed.oda))
        problem = _afl_problem(entry, int(parsed.sfi_low_bits))
        if problem:
            raise RemoteProtocolError(
                f"Application File Locator (tag 94) entry {index + 1} (offset {offset}, "
                f"{raw[offset : offset + 4].hex().upper()}): {problem}"
            )
        entries.append(entry)
    return entries


def _afl_problem(entry: AflEntry, sfi_low_bits: int) -> str | None:
    if sfi_low_bits:
        return "the three low bits of the SFI byte must be zero"
    if not 1 <= entry.sfi <= 30:
        return f"SFI {entry.sfi} is outside 1-30"
    if entry.first < 1:
        return "first record number is 0"
    if entry.last < entry.first:
        return f"last record {entry.last} is before first record {entry.first}"
    if entry.oda > entry.last - entry.first + 1:
        return (
            f"{entry.oda} records for offline data authentication, but only "
            f"{entry.last - entry.first + 1} records in the entry"
        )
    return None


# --- Cardholder Verification Method list (8E) -----------------------------------------------

_CV_RULE = BitStruct(
    "rfu" / Flag,
    "apply_next" / Flag,
    "method" / BitsInteger(6),
    "condition" / BitsInteger(8),
)
_CVM_LIST = Struct("x" / Int32ub, "y" / Int32ub, "rules" / GreedyRange(_CV_RULE))

#: CVM codes (Book 3 Annex C3 table 43, EMV 4.4) -> method.
CVM_METHODS: dict[int, str] = {
    0x00: "Fail CVM processing",
    0x01: "Plaintext PIN verified by ICC",
    0x02: "Enciphered PIN verified online",
    0x03: "Plaintext PIN verified by ICC and signature",
    0x04: "Enciphered PIN verified by ICC",
    0x05: "Enciphered PIN verified by ICC and signature",
    0x06: "Facial biometric verified offline",
    0x07: "Facial biometric verified online",
    0x08: "Finger biometric verified offline",
    0x09: "Finger biometric verified online",
    0x0A: "Palm biometric verified offline",
    0x0B: "Palm biometric verified online",
    0x0C: "Iris biometric verified offline",
    0x0D: "Iris biometric verified online",
    0x0E: "Voice biometric verified offline",
    0x0F: "Voice biometric verified online",
    0x1E: "Signature (paper)",
    0x1F: "No CVM required",
    0x3F: "Not available for use",
}

#: CVM condition codes (Book 3 Annex C3 table 44) -> condition.
CVM_CONDITIONS: dict[int, str] = {
    0x00: "Always",
    0x01: "If unattended cash",
    0x02: "If not unattended cash and not manual cash and not purchase with cashback",
    0x03: "If terminal supports the CVM",
    0x04: "If manual cash",
    0x05: "If purchase with cashback",
    0x06: "If transaction is in the application currency and is under X value",
    0x07: "If transaction is in the application currency and is over X value",
    0x08: "If transaction is in the application currency and is under Y value",
    0x09: "If transaction is in the application currency and is over Y value",
}


def cvm_method_name(code: int) -> str:
    """Name of CVM code ``code`` (the 6 low bits of a CV Rule's first byte)."""
    code &= 0x3F
    if code in CVM_METHODS:
        return CVM_METHODS[code]
    if 0x20 <= code <= 0x2F:
        return f"Payment system specific CVM {code:02X}"
    if 0x30 <= code <= 0x3E:
        return f"Issuer specific CVM {code:02X}"
    return f"RFU CVM {code:02X}"


def cvm_condition_name(code: int) -> str:
    """Name of CVM condition code ``code`` (a CV Rule's second byte)."""
    if code in CVM_CONDITIONS:
        return CVM_CONDITIONS[code]
    if code >= 0x80:
        return f"Payment system specific condition {code:02X}"
    return f"RFU condition {code:02X}"


@dataclass(frozen=True, slots=True)
class CvmRule:
    """One CV Rule: the method, when it applies, and whether a failure moves on to the
    next rule (``apply_next``); the raw codes are kept too."""

    method: str
    condition: str
    apply_next: bool
    method_code: int = 0
    condition_code: int = 0

    def __str__(self) -> str:
        condition = self.condition[:1].lower() + self.condition[1:]
        text = f"{self.method} ({condition})"
        return text + (", else next rule" if self.apply_next else "")


@dataclass(frozen=True, slots=True)
class CvmList:
    """CVM List: amounts X and Y (binary, in the application currency's minor units) and the
    rules in card order."""

    x: int
    y: int
    rules: tuple[CvmRule, ...]


def decode_cvm_list(data: bytes) -> CvmList:
    """CVM List (8E): ``X`` (4 bytes), ``Y`` (4 bytes), then 2-byte CV Rules.

    >>> str(decode_cvm_list(bytes.fromhex("000000000000000042031E031F00")).rules[0])
    'Enciphered PIN verified online (if terminal supports the CVM), else next rule'
    """
    raw = _require_bytes(data, "decoding a CVM List")
    if len(raw) < 8 or len(raw) % 2:
        raise RemoteProtocolError(
            "CVM List (tag 8E) must be 8 bytes of amounts X and Y followed by 2-byte rules, "
            f"got {len(raw)} bytes"
        )
    parsed = _CVM_LIST.parse(raw)
    rules = tuple(
        CvmRule(
            method=cvm_method_name(rule.method),
            condition=cvm_condition_name(rule.condition),
            apply_next=bool(rule.apply_next),
            method_code=int(rule.method),
            condition_code=int(rule.condition),
        )
        for rule in parsed.rules
    )
    return CvmList(x=int(parsed.x), y=int(parsed.y), rules=rules)


# --- Track 2 Equivalent Data (57) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Track2:
    """Track 2 Equivalent Data: PAN, expiry ``"YYMM"``, service code, discretionary data.

    ``repr`` and ``str`` mask the PAN and the discretionary data, so a Track2 that ends up
    in a log does not leak them; read the fields for the full values.
    """

    pan: str
    expiry: str
    service_code: str
    discretionary: str

    def text(self, *, show_sensitive: bool = False) -> str:
        """As Track 2 text ``PAN D YYMM SSS discretionary``, masked unless asked."""
        if show_sensitive:
            return f"{self.pan}D{self.expiry}{self.service_code}{self.discretionary}"
        return (
            f"{mask_pan(self.pan)}D{self.expiry}{self.service_code}{'*' * len(self.discretionary)}"
        )

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return (
            f"Track2(pan={mask_pan(self.pan)!r}, expiry={self.expiry!r}, "
            f"service_code={self.service_code!r}, discretionary={'*' * len(self.discretionary)!r})"
        )


_TRACK2_MAX_PAN = 19


def parse_track2(data: bytes) -> Track2:
    """Track 2 Equivalent Data (57): ``PAN``, separator ``D``, expiry ``YYMM``, service code
    (3 digits), discretionary digits, and one ``F`` pad nibble when the count is odd.

    Errors name the nibble position, never the digits.

    >>> parse_track2(bytes.fromhex("4761739001010010D22122011143804400000F")).expiry
    '2212'
    """
    raw = _require_bytes(data, "parsing Track 2 data")
    if not raw:
        raise RemoteProtocolError("Track 2 Equivalent Data (tag 57) is empty")
    nibbles = raw.hex().upper()
    if nibbles.endswith("F"):
        nibbles = nibbles[:-1]
    separator = nibbles.find("D")
    if separator < 0:
        raise RemoteProtocolError("Track 2 Equivalent Data (tag 57) has no field separator 'D'")
    for position, nibble in enumerate(nibbles):
        if position != separator and not nibble.isdigit():
            raise RemoteProtocolError(
                f"Track 2 Equivalent Data (tag 57): nibble {position} (byte {position // 2}) "
                f"is {nibble!r}, not a digit"
            )
    pan, rest = nibbles[:separator], nibbles[separator + 1 :]
    if not 1 <= len(pan) <= _TRACK2_MAX_PAN:
        raise RemoteProtocolError(
            f"Track 2 Equivalent Data (tag 57): PAN has {len(pan)} digits, expected 1-19"
        )
    if len(rest) < 7:
        raise RemoteProtocolError(
            "Track 2 Equivalent Data (tag 57): fewer than 7 digits after the separator "
            f"(expiry YYMM and service code), got {len(rest)}"
        )
    return Track2(pan=pan, expiry=rest[:4], service_code=rest[4:7], discretionary=rest[7:])
