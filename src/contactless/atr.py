"""ATR (ISO/IEC 7816-3) and ATS (ISO/IEC 14443-4) parsing, and the PC/SC contactless ATR.

A contact card answers reset with an ATR; a contactless ISO 14443-4 type A card answers RATS
with an ATS. PC/SC readers have no ATR to report for a contactless card, so they make one up
(PC/SC Part 3, section 3.1.3.2.3)::

    3B 8n 80 01 <n historical bytes> TCK

For an ISO 14443-4 card the historical bytes are the ATS historical bytes (type A) or the ATQB
application data, protocol info and MBLI (type B); for a storage card (MIFARE Classic,
Ultralight, ISO 15693 tags...) they name the card::

    80 4F 0C A0 00 00 03 06 SS NN NN 00 00 00 00
             RID (PC/SC)    |  card name (atr_cards.csv)
                            standard (ISO 14443 A part 3, ISO 15693...)

>>> atr = parse_atr("3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A")
>>> atr.protocols, atr.contactless.card_name
((0, 1), 'MIFARE Classic 1K')
>>> atr_from_ats(bytes.fromhex("0675778102 80")).hex().upper()
'3B8180018080'

Malformed input raises :class:`~contactless.errors.AtrError` whose ``offset`` is the bad byte
(or, for hex text, the bad character).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import importlib.resources
from collections.abc import Iterator
from typing import Any, Literal, cast

from construct import (
    BitsInteger,
    BitStruct,
    Bytes,
    Checksum,
    ConstructError,
    Flag,
    Int8ub,
    Int16ub,
    Nibble,
    Struct,
    this,
)

from .errors import AtrError, LocalProtocolError

__all__ = [
    "FSC_TABLE",
    "PCSC_RID",
    "Atqb",
    "Atr",
    "Ats",
    "ContactlessInfo",
    "InterfaceBytes",
    "atr_from_ats",
    "card_name",
    "contactless_atr",
    "crc_a",
    "parse_atr",
    "parse_ats",
    "standard_name",
]

#: ISO 7816-3: an ATR is at most 32 characters after TS.
MAX_ATR_LENGTH = 33
#: The RID PC/SC registered for its storage-card ATRs.
PCSC_RID = bytes.fromhex("A000000306")
#: Carrier frequency of ISO 14443, in Hz (FWT and SFGT are multiples of 4096/fc).
FC_HZ = 13.56e6

# ISO 7816-3 table 7: Fi and f(max) in MHz by the high nibble of TA1 (None: RFU).
_FI: tuple[tuple[int, float] | None, ...] = (
    (372, 4.0), (372, 5.0), (558, 6.0), (744, 8.0), (1116, 12.0), (1488, 16.0), (1860, 20.0),
    None, None,
    (512, 5.0), (768, 7.5), (1024, 10.0), (1536, 15.0), (2048, 20.0),
    None, None,
)  # fmt: skip
# ISO 7816-3 table 8: Di by the low nibble of TA1 (None: RFU).
_DI: tuple[int | None, ...] = (
    None, 1, 2, 4, 8, 16, 32, 64, 12, 20, None, None, None, None, None, None,
)  # fmt: skip

#: ISO 14443-4 table 1: FSC (bytes) by FSCI. FSCI 9-F are RFU; a PCD reads them as 8 (256),
#: as ISO 14443-4:2016 asks and nfcpy does.
FSC_TABLE: tuple[int, ...] = (16, 24, 32, 40, 48, 64, 96, 128, 256)

# --- byte layouts (construct) -------------------------------------------------------------

# T0 and every TDi: which of TA/TB/TC/TD(i+1) follow, plus K (T0) or the protocol T (TDi).
_FORMAT_BYTE = BitStruct("td" / Flag, "tc" / Flag, "tb" / Flag, "ta" / Flag, "low" / Nibble)

# ATS T0: b8 is 0, then which of TA(1), TB(1), TC(1) follow, and FSCI.
_ATS_FORMAT = BitStruct("rfu" / Flag, "tc" / Flag, "tb" / Flag, "ta" / Flag, "fsci" / Nibble)

# ATS TA(1) and the first protocol-info byte of ATQB: supported divisors D per direction.
# DS: PICC to PCD, DR: PCD to PICC; D=1 (106 kbit/s) is always supported.
_BIT_RATES = BitStruct(
    "same" / Flag,
    "ds8" / Flag, "ds4" / Flag, "ds2" / Flag,
    "rfu" / Flag,
    "dr8" / Flag, "dr4" / Flag, "dr2" / Flag,
)  # fmt: skip

# ATS TB(1): frame waiting time and start-up frame guard time integers.
_ATS_TIMING = BitStruct("fwi" / Nibble, "sfgi" / Nibble)

# ATS TC(1): which optional block fields the card supports.
_ATS_PROTOCOL = BitStruct("rfu" / BitsInteger(6), "cid" / Flag, "nad" / Flag)

# PC/SC Part 3 storage-card historical bytes (15 of them).
_PCSC_STORAGE = Struct(
    "header" / Bytes(3),  # 80 (category: compact TLV) 4F (application identifier) 0C (length)
    "rid" / Bytes(5),
    "standard" / Int8ub,
    "card_name" / Int16ub,
    "rfu" / Bytes(4),
)
_PCSC_STORAGE_HEADER = bytes.fromhex("804F0C")

# Type B historical bytes of a PC/SC contactless ATR: ATQB application data and protocol
# info (ISO 14443-3 7.9.3), then the MBLI of the ATTRIB response in the high nibble.
_PCSC_TYPE_B = Struct(
    "application_data" / Bytes(4),
    "bit_rates" / _BIT_RATES,
    "protocol" / BitStruct("fsci" / Nibble, "protocol_type" / Nibble),
    "timing" / BitStruct("fwi" / Nibble, "adc" / BitsInteger(2), "nad" / Flag, "cid" / Flag),
    "attrib" / BitStruct("mbli" / Nibble, "rfu" / Nibble),
)


def _xor(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


# The ATR a PC/SC reader reports for an ISO 14443-4 card: TS T0 TD1 TD2 historical TCK.
_PCSC_CONTACTLESS_ATR = Struct(
    "ts" / Int8ub,
    "t0" / Int8ub,
    "td1" / Int8ub,
    "td2" / Int8ub,
    "historical" / Bytes(this.t0 & 0x0F),
    "tck" / Checksum(Int8ub, _xor, lambda ctx: bytes((ctx.t0, ctx.td1, ctx.td2)) + ctx.historical),
)


# --- reference data -----------------------------------------------------------------------


@functools.cache
def _card_tables() -> dict[str, dict[int, str]]:
    tables: dict[str, dict[int, str]] = {"standard": {}, "card": {}}
    text = importlib.resources.files(__package__).joinpath("atr_cards.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    for row in rows:
        tables[row["table"]][int(row["code"], 16)] = row["name"]
    return tables


def standard_name(code: int) -> str:
    """The name of a PC/SC Part 3 standard byte, e.g. ``3`` -> ``"ISO 14443 A, part 3"``."""
    return _card_tables()["standard"].get(code, f"RFU standard {code:02X}")


def card_name(code: int) -> str:
    """The name of a PC/SC Part 3 card name code, e.g. ``0x0001`` -> ``"MIFARE Classic 1K"``.

    ACS readers also report ``F0xx`` codes of their own, and ``FFxx`` (xx: the SAK) for a tag
    they could not identify.
    """
    name = _card_tables()["card"].get(code)
    if name is not None:
        return name
    if code >> 8 == 0xFF:
        return f"Unidentified tag (reader code FF, SAK {code & 0xFF:02X})"
    return f"Unknown card name {code:04X}"


# --- input --------------------------------------------------------------------------------

_SEPARATORS = frozenset(" \t\r\n:")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _to_bytes(raw: bytes | bytearray | memoryview | str, what: str) -> bytes:
    """Bytes as given, or hex text with spaces/colons in any case; a bad character raises
    :class:`AtrError` at its position in the text."""
    if isinstance(raw, bytes | bytearray | memoryview):
        return bytes(raw)
    if not isinstance(raw, str):
        raise LocalProtocolError(f"an {what} must be bytes or hex text, not {type(raw).__name__}")
    digits: list[str] = []
    last = 0
    for position, char in enumerate(raw):
        if char in _SEPARATORS:
            continue
        if char not in _HEX_DIGITS:
            raise AtrError(
                f"character {char!r} in the {what} text is not a hex digit", offset=position
            )
        digits.append(char)
        last = position
    if len(digits) % 2:
        raise AtrError(f"the {what} text has an odd number of hex digits", offset=last)
    return bytes.fromhex("".join(digits))


# --- ATR ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class InterfaceBytes:
    """One group i of interface bytes: TAi, TBi, TCi, TDi (``None`` when absent).

    Group 1 is announced by T0, group i+1 by TDi.
    """

    ta: int | None = None
    tb: int | None = None
    tc: int | None = None
    td: int | None = None

    @property
    def protocol(self) -> int | None:
        """The protocol T this group's TD indicates (low nibble), ``None`` without TD."""
        return None if self.td is None else self.td & 0x0F


@dataclasses.dataclass(frozen=True, slots=True)
class Atqb:
    """Type B reading of the 8 historical bytes of a PC/SC contactless ATR.

    ``application_data`` comes from ATQB, then its protocol info (bit rates, FSCI, protocol
    type, FWI, ADC, NAD/CID support), and the MBLI of the ATTRIB response.
    """

    application_data: bytes
    same_bitrate: bool
    picc_to_pcd_kbps: tuple[int, ...]
    pcd_to_picc_kbps: tuple[int, ...]
    fsci: int
    fsc: int
    protocol_type: int
    fwi: int
    fwt: float
    adc: int
    nad_supported: bool
    cid_supported: bool
    mbli: int

    @property
    def iso14443_4(self) -> bool:
        """True when the protocol type says the card speaks ISO 14443-4."""
        return bool(self.protocol_type & 0x01)


@dataclasses.dataclass(frozen=True, slots=True)
class ContactlessInfo:
    """What a PC/SC contactless ATR (``3B 8n 80 01 ...``) says about the card.

    ``kind`` is ``"storage"`` for a memory card named by PC/SC Part 3 (``rid``, ``standard``,
    ``card_code`` and their names are set) or ``"iso14443-4"`` for a card speaking ISO 14443-4
    (the historical bytes are those of its ATS, or its ATQB data for type B).

    ``type_b`` reads 8 historical bytes as ATQB data when they have that shape (the low
    nibble of the last byte is 0). The ATR alone cannot tell type A from type B: a type A card
    with 8 historical bytes may match too; the reader's GET DATA (``FF CA 01 00 00``) settles it.
    """

    kind: Literal["storage", "iso14443-4"]
    historical_bytes: bytes
    rid: bytes | None = None
    standard: int | None = None
    standard_name: str | None = None
    card_code: int | None = None
    card_name: str | None = None
    type_b: Atqb | None = None

    @property
    def name(self) -> str:
        """A short label: the card name of a storage card, else ``"ISO 14443-4 card"``."""
        if self.card_name is not None:
            return self.card_name
        return "ISO 14443-4 card"


@dataclasses.dataclass(frozen=True, slots=True)
class Atr:
    """A parsed Answer To Reset (ISO 7816-3 section 8).

    ``interface_bytes[0]`` is group 1 (TA1 TB1 TC1 TD1). ``protocols`` lists the protocols T
    indicated by the TDi bytes in order, without repeats (``(0,)`` when there is no TD1); T=15
    is not a transmission protocol but announces global interface bytes. ``tck_ok`` is ``None``
    when no TCK is present (only T=0 indicated), else whether T0..TCK XOR to 00 (always True
    unless parsed with ``strict=False``).
    """

    raw: bytes
    ts: int
    convention: Literal["direct", "inverse"]
    t0: int
    interface_bytes: tuple[InterfaceBytes, ...]
    protocols: tuple[int, ...]
    historical_bytes: bytes
    tck: int | None
    tck_ok: bool | None
    contactless: ContactlessInfo | None

    def hex(self) -> str:
        """The ATR in upper-case hex without spaces."""
        return self.raw.hex().upper()

    def __bytes__(self) -> bytes:
        return self.raw

    def get(self, name: str) -> int | None:
        """An interface byte by its ISO name, e.g. ``atr.get("TA1")``; ``None`` when absent.

        >>> hex(parse_atr("3B9F94801FC7 8031E073FE21 1163075251830790 00CC").get("TA1"))
        '0x94'
        """
        kind, index = name[:2].upper(), name[2:]
        if kind not in ("TA", "TB", "TC", "TD") or not index.isdigit() or int(index) < 1:
            raise LocalProtocolError(f"{name!r} is not an interface byte name like 'TA1'")
        i = int(index)
        if i > len(self.interface_bytes):
            return None
        return cast("int | None", getattr(self.interface_bytes[i - 1], kind.lower()))

    @property
    def fi(self) -> int | None:
        """Clock rate conversion integer Fi from TA1 (372 without TA1; ``None`` if RFU)."""
        entry = _FI[self._ta1 >> 4]
        return None if entry is None else entry[0]

    @property
    def f_max_mhz(self) -> float | None:
        """Maximum clock frequency f(max) in MHz from TA1 (5 without TA1; ``None`` if RFU)."""
        entry = _FI[self._ta1 >> 4]
        return None if entry is None else entry[1]

    @property
    def di(self) -> int | None:
        """Baud rate adjustment integer Di from TA1 (1 without TA1; ``None`` if RFU)."""
        return _DI[self._ta1 & 0x0F]

    @property
    def _ta1(self) -> int:
        # Without TA1 the defaults Fd=372, fmax 5 MHz, Dd=1 apply: the code 0x11.
        ta1 = self.interface_bytes[0].ta if self.interface_bytes else None
        return 0x11 if ta1 is None else ta1

    @property
    def extra_guard_time(self) -> int:
        """N from TC1 (0 without TC1): extra guard time in etu, 255 meaning minimum."""
        tc1 = self.interface_bytes[0].tc if self.interface_bytes else None
        return tc1 or 0

    @property
    def specific_mode(self) -> bool:
        """True when TA2 is present: the card works in specific mode (no PPS)."""
        return len(self.interface_bytes) >= 2 and self.interface_bytes[1].ta is not None

    def describe(self) -> str:
        """A few lines of human text (for ``contactless atr`` and self-test reports)."""
        return "\n".join(_describe_atr(self))


def _describe_atr(atr: Atr) -> Iterator[str]:
    yield f"ATR {atr.hex()}"
    yield f"  TS {atr.ts:02X}: {atr.convention} convention"
    yield f"  T0 {atr.t0:02X}: {len(atr.historical_bytes)} historical byte(s)"
    for i, group in enumerate(atr.interface_bytes, start=1):
        for kind in ("ta", "tb", "tc", "td"):
            value = getattr(group, kind)
            if value is not None:
                yield f"  {kind.upper()}{i} {value:02X}"
    yield f"  protocols: {', '.join(f'T={t}' for t in atr.protocols)}"
    if atr.fi is not None and atr.di is not None:
        yield f"  Fi={atr.fi} Di={atr.di} f(max)={atr.f_max_mhz} MHz"
    if atr.historical_bytes:
        yield f"  historical bytes: {atr.historical_bytes.hex().upper()}"
    if atr.tck is not None:
        yield f"  TCK {atr.tck:02X} ({'correct' if atr.tck_ok else 'WRONG'})"
    info = atr.contactless
    if info is not None and info.kind == "storage":
        yield f"  contactless storage card: {info.card_name} ({info.standard_name})"
    elif info is not None:
        yield "  contactless ISO 14443-4 card (historical bytes from its ATS or ATQB)"


def parse_atr(raw: bytes | bytearray | memoryview | str, *, strict: bool = True) -> Atr:
    """Parse an ATR given as bytes or hex text (``"3B 8F 80 01"``, ``"3b:8f"``...).

    Raises :class:`~contactless.errors.AtrError` (with the offset of the bad byte) when the
    ATR is shorter than 2 bytes or longer than 33, TS is not 3B/3F, interface or historical
    bytes are missing, TCK is missing or wrong, or bytes follow the ATR. With
    ``strict=False`` a missing or wrong TCK, and a TCK sent when only T=0 is indicated, are
    recorded in ``tck_ok`` instead of raised.
    """
    data = _to_bytes(raw, "ATR")
    if len(data) < 2:
        raise AtrError(
            f"an ATR needs at least TS and T0, got {len(data)} byte(s)", offset=len(data)
        )
    if len(data) > MAX_ATR_LENGTH:
        raise AtrError(
            f"an ATR is at most {MAX_ATR_LENGTH} bytes, got {len(data)}", offset=MAX_ATR_LENGTH
        )
    ts = data[0]
    if ts not in (0x3B, 0x3F):
        raise AtrError(
            f"TS is {ts:02X}, not 3B (direct convention) or 3F (inverse convention)", offset=0
        )

    groups: list[InterfaceBytes] = []
    protocols: list[int] = []
    position = 1
    announcer = "T0"
    fmt = _FORMAT_BYTE.parse(data[1:2])
    historical_count = fmt.low
    # Each format byte (T0, then TDi) announces group i+1; a group nobody announces is absent.
    while fmt.ta or fmt.tb or fmt.tc or fmt.td:
        index = len(groups) + 1
        values: dict[str, int] = {}
        for kind in ("ta", "tb", "tc", "td"):
            if not fmt[kind]:
                continue
            if position + 1 >= len(data):
                name = f"{kind.upper()}{index}"
                raise AtrError(
                    f"the ATR ends where {name} (announced by {announcer}) should be",
                    offset=position + 1,
                )
            position += 1
            values[kind] = data[position]
        groups.append(InterfaceBytes(**values))
        if "td" not in values:
            break
        fmt = _FORMAT_BYTE.parse(bytes((values["td"],)))
        if fmt.low not in protocols:
            protocols.append(fmt.low)
        announcer = f"TD{index}"

    historical_start = position + 1
    historical_end = historical_start + historical_count
    if historical_end > len(data):
        raise AtrError(
            f"T0 announces {historical_count} historical bytes but only "
            f"{len(data) - historical_start} follow",
            offset=len(data),
        )
    historical = data[historical_start:historical_end]

    tck_expected = any(t != 0 for t in protocols)
    tck: int | None = None
    tck_ok: bool | None = None
    if historical_end < len(data):
        tck = data[historical_end]
        if not tck_expected and strict:
            raise AtrError(
                f"unexpected byte {tck:02X} after the historical bytes "
                "(no TCK: only T=0 is indicated)",
                offset=historical_end,
            )
        if historical_end + 1 < len(data):
            raise AtrError(
                f"{len(data) - historical_end - 1} unexpected byte(s) after TCK",
                offset=historical_end + 1,
            )
        tck_ok = _xor(data[1:]) == 0
        if not tck_ok and strict:
            good = _xor(data[1:historical_end])
            raise AtrError(
                f"TCK is {tck:02X}, expected {good:02X} (T0 to TCK must XOR to 00)",
                offset=historical_end,
            )
    elif tck_expected:
        if strict:
            raise AtrError(
                "TCK is missing (required when a protocol other than T=0 is indicated)",
                offset=len(data),
            )
        tck_ok = False

    if not protocols:
        protocols.append(0)  # ISO 7816-3 8.2.3: no TD1 means T=0
    atr = Atr(
        raw=data,
        ts=ts,
        convention="direct" if ts == 0x3B else "inverse",
        t0=data[1],
        interface_bytes=tuple(groups),
        protocols=tuple(protocols),
        historical_bytes=historical,
        tck=tck,
        tck_ok=tck_ok,
        contactless=None,
    )
    info = _contactless_info(atr)
    return atr if info is None else dataclasses.replace(atr, contactless=info)


def _is_pcsc_contactless(atr: Atr) -> bool:
    # 3B 8n 80 01 ... TCK: only TD1 (T=0, TD2 follows) and TD2 (T=1, nothing follows).
    return (
        atr.ts == 0x3B
        and atr.t0 >> 4 == 0x8
        and atr.interface_bytes == (InterfaceBytes(td=0x80), InterfaceBytes(td=0x01))
        and atr.tck is not None
    )


def _contactless_info(atr: Atr) -> ContactlessInfo | None:
    if not _is_pcsc_contactless(atr):
        return None
    historical = atr.historical_bytes
    if len(historical) == _PCSC_STORAGE.sizeof() and historical.startswith(_PCSC_STORAGE_HEADER):
        storage = _PCSC_STORAGE.parse(historical)
        if storage.rid == PCSC_RID:
            return ContactlessInfo(
                kind="storage",
                historical_bytes=historical,
                rid=PCSC_RID,
                standard=storage.standard,
                standard_name=standard_name(storage.standard),
                card_code=storage.card_name,
                card_name=card_name(storage.card_name),
            )
    type_b = None
    if len(historical) == _PCSC_TYPE_B.sizeof() and historical[7] & 0x0F == 0:
        type_b = _parse_type_b(historical)
    return ContactlessInfo(kind="iso14443-4", historical_bytes=historical, type_b=type_b)


def _kbps(rates: Any, direction: str) -> tuple[int, ...]:
    divisors = [1] + [d for d in (2, 4, 8) if rates[f"{direction}{d}"]]
    return tuple(106 * d for d in divisors)


def _fsc(fsci: int) -> int:
    return FSC_TABLE[min(fsci, 8)]


def _fwt(fwi: int) -> float:
    # FWI 15 is RFU; a PCD reads it as the default 4 (nfcpy does the same).
    return (256 * 16 / FC_HZ) * (1 << (4 if fwi == 15 else fwi))


def _parse_type_b(historical: bytes) -> Atqb:
    parsed = _PCSC_TYPE_B.parse(historical)
    return Atqb(
        application_data=parsed.application_data,
        same_bitrate=parsed.bit_rates.same,
        picc_to_pcd_kbps=_kbps(parsed.bit_rates, "ds"),
        pcd_to_picc_kbps=_kbps(parsed.bit_rates, "dr"),
        fsci=parsed.protocol.fsci,
        fsc=_fsc(parsed.protocol.fsci),
        protocol_type=parsed.protocol.protocol_type,
        fwi=parsed.timing.fwi,
        fwt=_fwt(parsed.timing.fwi),
        adc=parsed.timing.adc,
        nad_supported=parsed.timing.nad,
        cid_supported=parsed.timing.cid,
        mbli=parsed.attrib.mbli,
    )


# --- ATS ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Ats:
    """A parsed Answer To Select (ISO 14443-4 section 5.2), without its CRC.

    Absent bytes take the ISO defaults: FSCI 2 (32 bytes) without T0; only 106 kbit/s without
    TA; FWI 4 and SFGI 0 without TB; CID supported and NAD not without TC. ``fwt`` and
    ``sfgt`` are in seconds (``sfgt`` is 0 when SFGI is 0: no guard time needed).
    ``crc`` holds the CRC_A when the input carried one (it is checked, then removed).
    """

    raw: bytes
    tl: int
    t0: int | None
    ta: int | None
    tb: int | None
    tc: int | None
    fsci: int
    fsc: int
    same_bitrate: bool
    picc_to_pcd_kbps: tuple[int, ...]
    pcd_to_picc_kbps: tuple[int, ...]
    fwi: int
    fwt: float
    sfgi: int
    sfgt: float
    nad_supported: bool
    cid_supported: bool
    historical_bytes: bytes
    crc: bytes | None = None

    def hex(self) -> str:
        """The ATS (without CRC) in upper-case hex without spaces."""
        return self.raw.hex().upper()

    def __bytes__(self) -> bytes:
        return self.raw


#: ISO 14443-4 5.2.1: the ATS is at most FSD - 2 = 254 bytes, its CRC excluded.
MAX_ATS_LENGTH = 254


def crc_a(data: bytes) -> bytes:
    """ISO 14443-3 CRC_A of ``data``, in transmission order (low byte first)."""
    crc = 0x6363
    for byte in data:
        byte ^= crc & 0xFF
        byte = (byte ^ (byte << 4)) & 0xFF
        crc = ((crc >> 8) ^ (byte << 8) ^ (byte << 3) ^ (byte >> 4)) & 0xFFFF
    return crc.to_bytes(2, "little")


def parse_ats(raw: bytes | bytearray | memoryview | str) -> Ats:
    """Parse an ATS given as bytes or hex text, with or without its 2-byte CRC_A.

    Raises :class:`~contactless.errors.AtrError` when it is empty, TL disagrees with the
    length (a trailing CRC_A is accepted only when it checks), or TL leaves no room for the
    interface bytes T0 announces.

    >>> ats = parse_ats("06 75 77 81 02 80")
    >>> ats.fsc, ats.fwi, ats.historical_bytes.hex()
    (64, 8, '80')
    """
    data = _to_bytes(raw, "ATS")
    if not data:
        raise AtrError("an ATS needs at least TL, got 0 bytes", offset=0)
    tl = data[0]
    if tl == 0:
        raise AtrError("TL is 00; it counts itself, so it is at least 01", offset=0)
    crc: bytes | None = None
    if len(data) == tl + 2 and crc_a(data[:tl]) == data[tl:]:
        data, crc = data[:tl], data[tl:]
    if len(data) != tl:
        raise AtrError(
            f"TL says the ATS is {tl} bytes but {len(data)} were given"
            + (" (the 2 extra bytes are not its CRC_A)" if len(data) == tl + 2 else ""),
            offset=0,
        )
    if tl > MAX_ATS_LENGTH:
        raise AtrError(
            f"an ATS is at most {MAX_ATS_LENGTH} bytes (FSD 256 minus CRC), got {tl}", offset=0
        )

    t0 = ta = tb = tc = None
    fsci = 2
    position = 1
    if tl > 1:
        t0 = data[1]
        fmt = _ATS_FORMAT.parse(data[1:2])
        fsci = fmt.fsci
        position = 2
        found: dict[str, int] = {}
        for kind in ("ta", "tb", "tc"):
            if not fmt[kind]:
                continue
            if position >= len(data):
                raise AtrError(
                    f"the ATS ends where {kind.upper()}(1) (announced by T0) should be",
                    offset=position,
                )
            found[kind] = data[position]
            position += 1
        ta, tb, tc = found.get("ta"), found.get("tb"), found.get("tc")

    rates = _BIT_RATES.parse(bytes((ta or 0,)))
    timing = _ATS_TIMING.parse(bytes((0x40 if tb is None else tb,)))
    options = _ATS_PROTOCOL.parse(bytes((0x02 if tc is None else tc,)))
    sfgi = 0 if timing.sfgi == 15 else timing.sfgi  # SFGI 15 is RFU, read as 0
    return Ats(
        raw=data,
        tl=tl,
        t0=t0,
        ta=ta,
        tb=tb,
        tc=tc,
        fsci=fsci,
        fsc=_fsc(fsci),
        same_bitrate=rates.same,
        picc_to_pcd_kbps=_kbps(rates, "ds"),
        pcd_to_picc_kbps=_kbps(rates, "dr"),
        fwi=timing.fwi,
        fwt=_fwt(timing.fwi),
        sfgi=timing.sfgi,
        sfgt=0.0 if sfgi == 0 else (256 * 16 / FC_HZ) * (1 << sfgi),
        nad_supported=options.nad,
        cid_supported=options.cid,
        historical_bytes=data[position:],
        crc=crc,
    )


# --- building the PC/SC contactless ATR ---------------------------------------------------

#: The ATR carries at most 15 historical bytes (K is a nibble of T0).
MAX_HISTORICAL = 15


def contactless_atr(historical: bytes) -> bytes:
    """The ATR a PC/SC reader reports for an ISO 14443-4 card with these historical bytes:
    ``3B 8n 80 01 <historical> TCK`` (PC/SC Part 3 3.1.3.2.3).

    For type B pass the ATQB application data (4), protocol info (3) and MBLI byte (1).
    More than 15 historical bytes is a :class:`~contactless.errors.LocalProtocolError`.
    """
    historical = bytes(historical)
    if len(historical) > MAX_HISTORICAL:
        raise LocalProtocolError(
            f"an ATR carries at most {MAX_HISTORICAL} historical bytes, got {len(historical)}"
        )
    try:
        built = _PCSC_CONTACTLESS_ATR.build(
            {
                "ts": 0x3B,
                "t0": 0x80 | len(historical),
                "td1": 0x80,
                "td2": 0x01,
                "historical": historical,
            }
        )
    except ConstructError as error:  # pragma: no cover - the inputs above are always valid
        raise LocalProtocolError(f"cannot build the contactless ATR: {error}") from None
    return cast(bytes, built)


def atr_from_ats(ats: bytes | bytearray | memoryview | str) -> bytes:
    """The PC/SC contactless ATR for a type A card with this ATS: its historical bytes in
    ``3B 8n 80 01 ... TCK``. Historical bytes beyond the 15 an ATR can carry are dropped.

    >>> atr_from_ats("06 75 77 81 02 80").hex().upper()
    '3B8180018080'
    """
    return contactless_atr(parse_ats(ats).historical_bytes[:MAX_HISTORICAL])
