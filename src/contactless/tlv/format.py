"""EMV value formats (EMV 4.4 Book 3 section 4.3) and human-readable descriptions.

- ``n``: BCD, right-justified, leading zeros (:func:`decode_n`);
- ``cn``: BCD, left-justified, padded with ``F`` nibbles (:func:`decode_cn`);
- ``a``/``an``/``ans``: text, usually ASCII; cards met in the field also carry other
  charsets (a GBK-encoded Chinese cardholder name, say), so :func:`decode_text` never fails;
- dates ``YYMMDD`` (:func:`decode_date`), amounts ``n12`` in minor units (:func:`amount`);
- ISO 3166 country and ISO 4217 currency codes, from ``iso3166.csv`` / ``iso4217.csv``.

:func:`describe` turns a tag and its value into the one line the CLI tree shows; it masks
card data unless asked not to.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Final

from ..errors import LocalProtocolError, RemoteProtocolError
from ..masking import MASK, NAME_MASK, SENSITIVE_TAGS, mask_track1, mask_value
from . import bitfields
from ._pytlv import parse_tag
from .tags import sensitive_tags

if TYPE_CHECKING:
    from .node import Tlv

__all__ = [
    "NAME_TAGS",
    "Country",
    "Currency",
    "amount",
    "country",
    "country_alpha",
    "country_alpha2",
    "currency",
    "currency_alpha",
    "currency_exponent",
    "decode_cn",
    "decode_date",
    "decode_n",
    "decode_text",
    "decode_time",
    "describe",
    "is_sensitive",
    "masked_text",
]

#: Tags whose value holds a cardholder's name (Cardholder Name, Name Extended, Name of an
#: Individual, and Track 1 of the card or of an identification card, with its NAME field).
#: Masked, their length is hidden too.
NAME_TAGS: Final = frozenset({"5F20", "9F0B", "5B", "56", "5F21"})
#: The name tags that hold a whole Track 1 (``B<PAN>^<NAME>^<YYMM><SVC>...``).
_TRACK1_TAGS: Final = frozenset({"56", "5F21"})


def is_sensitive(node: Tlv) -> bool:
    """Whether ``node``'s value is card data, masked unless asked (any scheme's row says so)."""
    return node.tag_hex in sensitive_tags()


def masked_text(node: Tlv) -> str:
    """The value of a sensitive primitive node as masked text (names as :data:`NAME_MASK`)."""
    if node.tag_hex in NAME_TAGS:
        if node.tag_hex in _TRACK1_TAGS:
            # Masked Track 1 (PAN 6 + 4, NAME_MASK, expiry, stars) counts no character of
            # the name; but a track without its shape comes back as one star per character.
            masked = mask_track1(node.value)
            if f"^{NAME_MASK}^" in masked:
                return masked
        return NAME_MASK
    if node.tag_hex in SENSITIVE_TAGS:
        return mask_value(node.tag_hex, node.value)  # PAN 6 + 4 digits, Track 2 expiry...
    # Sensitive per the dictionary only (9F61, Track 3, PIN data): no known shape, hide all.
    return MASK * (2 * len(node.value))


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise LocalProtocolError(f"{what} needs bytes, not {type(data).__name__}")


# --- numbers ----------------------------------------------------------------------------------


def decode_n(data: bytes, *, what: str | None = None) -> str:
    """Format ``n``: BCD digits, two per byte (``b"\\x00\\x09\\x78"`` -> ``"000978"``).

    A nibble above 9 raises :class:`RemoteProtocolError` naming its byte offset; ``what``
    (e.g. ``"Amount, Authorised (tag 9F02)"``) names the value in that message.
    """
    digits = _as_bytes(data, "decode_n").hex()
    for index, nibble in enumerate(digits):
        if not nibble.isdigit():
            raise RemoteProtocolError(
                f"{what or 'numeric value'}: byte {index // 2} has a non-BCD nibble "
                f"({nibble.upper()})"
            )
    return digits


def decode_cn(data: bytes, *, what: str | None = None) -> str:
    """Format ``cn``: BCD digits left-justified, padded on the right with ``F`` nibbles
    (``47617390 01010010 FF`` -> ``"4761739001010010"``).

    Any other non-digit nibble, or a digit after the padding started, raises
    :class:`RemoteProtocolError` naming its byte offset (never the digits).
    """
    digits = _as_bytes(data, "decode_cn").hex().upper().rstrip("F")
    for index, nibble in enumerate(digits):
        if not nibble.isdigit():
            reason = "padding F before the end" if nibble == "F" else f"non-BCD nibble ({nibble})"
            raise RemoteProtocolError(
                f"{what or 'compressed numeric value'}: byte {index // 2} has a {reason}"
            )
    return digits


# --- text -------------------------------------------------------------------------------------

# Characters that must never reach a terminal or log from card data: controls (an ESC from a
# card could drive the user's terminal), format characters, surrogates, unassigned code points.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _is_safe_text(text: str) -> bool:
    return all(unicodedata.category(char) not in _UNSAFE_CATEGORIES for char in text)


def _escape(raw: bytes) -> str:
    return "".join(
        chr(byte) if 0x20 <= byte < 0x7F and byte != 0x5C else f"\\x{byte:02X}" for byte in raw
    )


def decode_text(data: bytes, *, encoding: str | None = None) -> str:
    """Formats ``a``/``an``/``ans`` as text, safely.

    Printable ASCII is returned as is. Otherwise the declared ``encoding`` (e.g.
    ``"iso8859-1"`` from the Issuer Code Table Index) is tried, then GBK (Chinese issuers
    write cardholder names in it); the first that decodes cleanly to printable text wins.
    Anything else comes back with each non-printable byte escaped as ``\\xNN``, so the
    result is always one safe line.

    >>> decode_text("张三".encode("gbk"))
    '张三'
    >>> decode_text(b"AB\\x1b[2J")
    'AB\\\\x1B[2J'
    """
    raw = _as_bytes(data, "decode_text")
    if all(0x20 <= byte < 0x7F for byte in raw):
        return raw.decode("ascii")
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise LocalProtocolError(f"unknown text encoding {encoding!r}") from None
    for candidate in (encoding, "gbk"):
        if candidate is None:
            continue
        try:
            text = raw.decode(candidate)
        except UnicodeDecodeError:
            continue
        if _is_safe_text(text):
            return text
    return _escape(raw)


# --- dates and times --------------------------------------------------------------------------


def _two_digit_year(yy: int) -> int:
    # EMV Book 4, date management: YY 00-49 is 20YY, 50-99 is 19YY.
    return 2000 + yy if yy < 50 else 1900 + yy


def decode_date(data: bytes, *, what: str | None = None) -> datetime.date:
    """Format ``n6`` date ``YYMMDD`` (``25 12 31`` -> ``date(2025, 12, 31)``); years 00-49 are
    20YY, 50-99 are 19YY. A wrong length, non-BCD byte or impossible date raises
    :class:`RemoteProtocolError`."""
    raw = _as_bytes(data, "decode_date")
    name = what or "date"
    if len(raw) != 3:
        raise RemoteProtocolError(f"{name} must be 3 bytes (YYMMDD), got {len(raw)}")
    digits = decode_n(raw, what=name)
    year, month, day = _two_digit_year(int(digits[:2])), int(digits[2:4]), int(digits[4:])
    try:
        return datetime.date(year, month, day)
    except ValueError as error:
        raise RemoteProtocolError(
            f"{name} {digits} (YYMMDD) is not a valid date: {error}"
        ) from None


def decode_time(data: bytes, *, what: str | None = None) -> datetime.time:
    """Format ``n6`` time ``HHMMSS`` (tag 9F21)."""
    raw = _as_bytes(data, "decode_time")
    name = what or "time"
    if len(raw) != 3:
        raise RemoteProtocolError(f"{name} must be 3 bytes (HHMMSS), got {len(raw)}")
    digits = decode_n(raw, what=name)
    try:
        return datetime.time(int(digits[:2]), int(digits[2:4]), int(digits[4:]))
    except ValueError as error:
        raise RemoteProtocolError(
            f"{name} {digits} (HHMMSS) is not a valid time: {error}"
        ) from None


# --- ISO 3166 and ISO 4217 --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency. ``exponent`` is its minor units (``None`` where ISO says N.A.,
    e.g. gold); ``withdrawn`` is the month a withdrawn code stopped being current."""

    numeric: int
    alpha: str
    exponent: int | None
    name: str
    withdrawn: str | None = None


@dataclass(frozen=True, slots=True)
class Country:
    """An ISO 3166-1 country: numeric, alpha-2 and alpha-3 codes, English short name."""

    numeric: int
    alpha2: str
    alpha3: str
    name: str


def _read_csv(name: str) -> Iterator[dict[str, str]]:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    lines = (line for line in text.splitlines() if line and not line.startswith("#"))
    yield from csv.DictReader(lines)


@cache
def _currency_table() -> tuple[dict[int, Currency], dict[str, Currency]]:
    by_number: dict[int, Currency] = {}
    by_alpha: dict[str, Currency] = {}
    for row in _read_csv("iso4217.csv"):
        entry = Currency(
            numeric=int(row["numeric"]),
            alpha=row["alpha"],
            exponent=int(row["minor_units"]) if row["minor_units"] else None,
            name=row["name"],
            withdrawn=row["withdrawn"] or None,
        )
        by_number[entry.numeric] = entry
        by_alpha[entry.alpha] = entry
    return by_number, by_alpha


@cache
def _country_table() -> tuple[dict[int, Country], dict[str, Country]]:
    by_number: dict[int, Country] = {}
    by_alpha: dict[str, Country] = {}
    for row in _read_csv("iso3166.csv"):
        entry = Country(int(row["numeric"]), row["alpha2"], row["alpha3"], row["name"])
        by_number[entry.numeric] = entry
        by_alpha[entry.alpha2] = by_alpha[entry.alpha3] = entry
    return by_number, by_alpha


def _code_key(code: int | str | bytes) -> int | str | None:
    """A code as given (``978``, ``"0978"``, ``b"\\x09\\x78"``, ``"EUR"``) -> number or
    upper-case letters; ``None`` when it is neither."""
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, bytes | bytearray | memoryview):
        return int(decode_n(bytes(code), what="ISO code")) if code else None
    if isinstance(code, str):
        text = code.strip()
        if text.isascii() and text.isdigit():
            return int(text)
        if text.isascii() and text.isalpha():
            return text.upper()
    return None


def currency(code: int | str | bytes) -> Currency | None:
    """The ISO 4217 currency for a numeric code (``978``, ``"0978"``, the n3 bytes of tag
    5F2A) or an alphabetic one (``"EUR"``); ``None`` when unknown."""
    key = _code_key(code)
    by_number, by_alpha = _currency_table()
    if isinstance(key, int):
        return by_number.get(key)
    return by_alpha.get(key) if key is not None else None


def country(code: int | str | bytes) -> Country | None:
    """The ISO 3166-1 country for a numeric code (``56``, ``"0056"``, the n3 bytes of tag
    9F1A) or an alpha-2/alpha-3 one; ``None`` when unknown."""
    key = _code_key(code)
    by_number, by_alpha = _country_table()
    if isinstance(key, int):
        return by_number.get(key)
    return by_alpha.get(key) if key is not None else None


def country_alpha(code: int | str | bytes) -> str | None:
    """ISO 3166-1 alpha-3 code for a country code (``56`` -> ``"BEL"``), or ``None``."""
    found = country(code)
    return found.alpha3 if found else None


def country_alpha2(code: int | str | bytes) -> str | None:
    """ISO 3166-1 alpha-2 code for a country code (``56`` -> ``"BE"``), or ``None``."""
    found = country(code)
    return found.alpha2 if found else None


def currency_alpha(code: int | str | bytes) -> str | None:
    """ISO 4217 alphabetic code for a currency code (``978`` -> ``"EUR"``), or ``None``."""
    found = currency(code)
    return found.alpha if found else None


def currency_exponent(code: int | str | bytes) -> int:
    """Minor units of a currency (``978`` -> 2, ``392`` -> 0, ``48`` -> 3); 0 for codes
    without minor units (gold, XXX). An unknown code raises :class:`LocalProtocolError`."""
    found = currency(code)
    if found is None:
        raise LocalProtocolError(f"unknown ISO 4217 currency code {code!r}")
    return found.exponent or 0


#: Exponent used for an amount whose currency is not given.
DEFAULT_EXPONENT = 2


def amount(
    data: bytes, currency_code: int | str | bytes | None = None, *, what: str | None = None
) -> Decimal:
    """An ``n12`` amount (tags 9F02, 9F03) in major units: ``000000000100`` -> ``Decimal("1.00")``.

    The exponent comes from ``currency_code`` (``392``/JPY -> 0 decimals); without one it is
    2. Non-BCD data raises :class:`RemoteProtocolError` (``what`` names the value in it).
    """
    raw = _as_bytes(data, "amount")
    name = what or "amount"
    if not raw:
        raise RemoteProtocolError(f"{name} is empty")
    digits = decode_n(raw, what=name)
    exponent = DEFAULT_EXPONENT if currency_code is None else currency_exponent(currency_code)
    return Decimal(int(digits)).scaleb(-exponent)


# --- describe: one line per tag for the CLI ----------------------------------------------------


def _bits_text(field: bitfields.BitField) -> Callable[[bytes], str]:
    def text(value: bytes) -> str:
        labels = field.labels(value)
        return ", ".join(labels) if labels else "no bits set"

    return text


def _numeric_code_text(
    length: int, what: str, alpha: Callable[[int | str | bytes], str | None]
) -> Callable[[bytes], str]:
    def text(value: bytes) -> str:
        if len(value) != length:
            raise RemoteProtocolError(f"{what} must be {length} bytes, got {len(value)}")
        digits = decode_n(value, what=what)
        return f"{digits} ({alpha(int(digits)) or 'unknown'})"

    return text


def _fixed(length: int, what: str, decode: Callable[[bytes], str]) -> Callable[[bytes], str]:
    def text(value: bytes) -> str:
        if len(value) != length:
            raise RemoteProtocolError(f"{what} must be {length} bytes, got {len(value)}")
        return decode(value)

    return text


def _afl_text(value: bytes) -> str:
    return (
        "; ".join(
            f"SFI {e.sfi} records {e.first}-{e.last}" + (f" ({e.oda} for ODA)" if e.oda else "")
            for e in bitfields.decode_afl(value)
        )
        or "no records"
    )


def _cvm_list_text(value: bytes) -> str:
    cvm = bitfields.decode_cvm_list(value)
    rules = "; ".join(str(rule) for rule in cvm.rules) or "no rules"
    return f"X={cvm.x} Y={cvm.y}: {rules}"


def _unsigned(value: bytes) -> str:
    return str(int.from_bytes(value, "big"))


#: Tag 9C (ISO 8583 processing code, first two digits) -> transaction type.
TRANSACTION_TYPES: dict[str, str] = {
    "00": "goods and services",
    "01": "cash",
    "09": "purchase with cashback",
    "20": "refund",
    "30": "balance inquiry",
}


def _transaction_type_text(value: bytes) -> str:
    digits = decode_n(value, what="Transaction Type (tag 9C)")
    meaning = TRANSACTION_TYPES.get(digits)
    return f"{digits} ({meaning})" if meaning else digits


@dataclass(frozen=True, slots=True)
class _Describer:
    """How to show a tag's generic (EMV) meaning. When the tag dictionary has a
    scheme-specific row for the card's AID, that row's meaning differs and its format is
    used instead, unless the scheme is listed in ``also_for`` (same meaning, own row)."""

    text: Callable[[bytes], str]
    also_for: frozenset[str] = frozenset()


_TEXT: Callable[[bytes], str] = decode_text
_AMOUNT_AUTHORISED = "Amount, Authorised (tag 9F02)"
_AMOUNT_OTHER = "Amount, Other (tag 9F03)"

#: Tag -> how to describe its value, beyond what its format alone gives.
_DESCRIBERS: dict[str, _Describer] = {
    "82": _Describer(_bits_text(bitfields.AIP)),
    "9F07": _Describer(_bits_text(bitfields.AUC)),
    "95": _Describer(_bits_text(bitfields.TVR)),
    "9B": _Describer(_bits_text(bitfields.TSI)),
    "9F66": _Describer(_bits_text(bitfields.TTQ)),
    "9F6C": _Describer(_bits_text(bitfields.CTQ)),
    "9F27": _Describer(bitfields.cid_summary),
    "94": _Describer(_afl_text),
    "8E": _Describer(_cvm_list_text),
    "9F02": _Describer(
        _fixed(6, _AMOUNT_AUTHORISED, lambda v: str(amount(v, what=_AMOUNT_AUTHORISED)))
    ),
    "9F03": _Describer(_fixed(6, _AMOUNT_OTHER, lambda v: str(amount(v, what=_AMOUNT_OTHER)))),
    "5F2A": _Describer(
        _numeric_code_text(2, "Transaction Currency Code (tag 5F2A)", currency_alpha)
    ),
    "9F42": _Describer(
        _numeric_code_text(2, "Application Currency Code (tag 9F42)", currency_alpha)
    ),
    "9F3C": _Describer(
        _numeric_code_text(2, "Transaction Reference Currency Code (tag 9F3C)", currency_alpha)
    ),
    "9F1A": _Describer(_numeric_code_text(2, "Terminal Country Code (tag 9F1A)", country_alpha)),
    "5F28": _Describer(_numeric_code_text(2, "Issuer Country Code (tag 5F28)", country_alpha)),
    "5F24": _Describer(
        lambda v: decode_date(v, what="Application Expiration Date (tag 5F24)").isoformat()
    ),
    "5F25": _Describer(
        lambda v: decode_date(v, what="Application Effective Date (tag 5F25)").isoformat()
    ),
    "9A": _Describer(lambda v: decode_date(v, what="Transaction Date (tag 9A)").isoformat()),
    "9F21": _Describer(lambda v: decode_time(v, what="Transaction Time (tag 9F21)").isoformat()),
    "9C": _Describer(_fixed(1, "Transaction Type (tag 9C)", _transaction_type_text)),
    "5F30": _Describer(
        _fixed(
            2, "Service Code (tag 5F30)", lambda v: decode_n(v, what="Service Code (tag 5F30)")[1:]
        )
    ),
    "9F36": _Describer(_fixed(2, "Application Transaction Counter (tag 9F36)", _unsigned)),
    "9F13": _Describer(_fixed(2, "Last Online ATC Register (tag 9F13)", _unsigned)),
    "9F17": _Describer(_fixed(1, "PIN Try Counter (tag 9F17)", _unsigned)),
    # Card data, shown in full only with show_sensitive (otherwise masking.mask_value).
    "5A": _Describer(lambda v: decode_cn(v, what="Application PAN (tag 5A)")),
    "57": _Describer(lambda v: bitfields.parse_track2(v).text(show_sensitive=True)),
    "9F6B": _Describer(
        lambda v: bitfields.parse_track2(v).text(show_sensitive=True), frozenset({"mastercard"})
    ),
    "56": _Describer(_TEXT),
    "9F1F": _Describer(_TEXT),
    "9F20": _Describer(lambda v: decode_cn(v, what="Track 2 Discretionary Data (tag 9F20)")),
    "5F20": _Describer(_TEXT),
    "9F0B": _Describer(_TEXT),
}

#: Tag format (tags.TagInfo.format) -> generic describer, for tags without one above.
_BY_FORMAT: dict[str, Callable[[bytes], str]] = {
    "n": decode_n,
    "cn": decode_cn,
    "a": decode_text,
    "an": decode_text,
    "ans": decode_text,
}


def describe(
    tag: int | str | bytes,
    value: bytes,
    *,
    aid: bytes | str | None = None,
    show_sensitive: bool = False,
) -> str | None:
    """Human text for a tag's value, for the CLI tree; ``None`` when hex says it best
    (binary data, constructed tags, unknown tags).

    Card data (PAN, track data, cardholder name) is masked unless ``show_sensitive``.
    ``aid`` selects scheme-specific meanings of a tag. Values that break their format come
    back as ``"invalid: <reason>"`` rather than an exception, so one bad tag does not stop
    a listing.

    >>> describe("9F02", bytes.fromhex("000000000100"))
    '1.00'
    >>> describe("5F2A", bytes.fromhex("0978"))
    '0978 (EUR)'
    """
    # Imported here, not at the top: the value decoders above need no tag dictionary, and
    # tags.py may use them to build its own table without an import cycle.
    from . import tags

    tag_bytes = parse_tag(tag)
    tag_hex = tag_bytes.hex().upper()
    raw = _as_bytes(value, "describe")
    info = tags.lookup(tag_hex, aid)
    if not show_sensitive:
        if tag_hex in SENSITIVE_TAGS:
            return mask_value(tag_hex, raw)
        if info is not None and info.sensitive:
            return "*" * (2 * len(raw))  # sensitive per the dictionary, shape unknown: hide all
    if tag_bytes[0] & 0x20:
        return None  # constructed: its children are described one by one
    describer = _DESCRIBERS.get(tag_hex)
    text: Callable[[bytes], str] | None
    if describer is not None and (
        info is None or info.scheme is None or info.scheme in describer.also_for
    ):
        text = describer.text
    elif info is not None:
        text = _BY_FORMAT.get(info.format)
    else:
        text = None
    if text is None:
        return None
    try:
        return text(raw)
    except RemoteProtocolError as error:
        return f"invalid: {error.message}"
