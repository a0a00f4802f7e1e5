"""The terminal's side of an EMV read: its settings, and the data it gives the card.

:class:`TerminalConfig` holds what a payment terminal would be configured with (country,
currency, capabilities, the applications it accepts, merchant data) plus two injectable
sources of variation, a clock and a random number generator. With a fixed clock and a
seeded RNG, a read sends the same APDUs byte for byte every time::

    config = TerminalConfig(clock=lambda: datetime(2024, 5, 17, 12, 0), rng=random.Random(7))

Settings load from a TOML file (documented, with defaults, in docs/terminal-config.md)::

    config = TerminalConfig.load("terminal.toml", amount=250)
"""

from __future__ import annotations

import dataclasses
import os
import random
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, ClassVar

from ..errors import ConfigError, ContactlessError
from ..hexutil import parse_hex, to_hex
from ..tlv import parse_tag

__all__ = ["CRYPTOGRAM_P1", "DEFAULT_AIDS", "SupportedAid", "TerminalConfig"]


@dataclass(frozen=True, slots=True)
class SupportedAid:
    """An application the terminal accepts. With ``partial`` (the EMV Application Selection
    Indicator allowing partial selection), ``aid`` also matches a longer card AID that
    starts with it, e.g. ``A0000000031010`` matches ``A000000003101001``."""

    aid: bytes
    partial: bool = True
    label: str = ""

    def matches(self, card_aid: bytes) -> bool:
        """Whether the card's AID (ADF name) matches this terminal AID (EMV Book 1 12.3.1)."""
        if card_aid == self.aid:
            return True
        return self.partial and len(card_aid) > len(self.aid) and card_aid.startswith(self.aid)

    def __repr__(self) -> str:
        return f"SupportedAid({to_hex(self.aid)}, partial={self.partial}, label={self.label!r})"


def _aid(hex_aid: str, label: str) -> SupportedAid:
    return SupportedAid(bytes.fromhex(hex_aid), True, label)


#: Applications a terminal built with the defaults accepts, most specific first. Partial
#: matching lets e.g. ``A00000002501`` select American Express' ``A000000025010801``.
DEFAULT_AIDS: tuple[SupportedAid, ...] = (
    _aid("A0000000031010", "Visa"),
    _aid("A0000000032010", "Visa Electron"),
    _aid("A0000000032020", "V PAY"),
    _aid("A0000000041010", "Mastercard"),
    _aid("A0000000043060", "Maestro"),
    _aid("A00000002501", "American Express"),
    _aid("A0000000651010", "JCB"),
    _aid("A0000001523010", "Discover"),
    _aid("A0000001524010", "Discover Debit"),
    _aid("A0000003330101", "UnionPay"),
    _aid("A0000002771010", "Interac"),
    _aid("A0000006581010", "Mir"),
    _aid("A0000005241010", "RuPay"),
)

#: GENERATE AC reference control parameter (P1 bits 8-7) for each cryptogram type the
#: terminal may ask for (EMV Book 3 table 12).
CRYPTOGRAM_P1: dict[str, int] = {"aac": 0x00, "tc": 0x40, "arqc": 0x80}

Clock = Callable[[], datetime]
Rng = Callable[[int], bytes] | random.Random


def _bcd(number: int, length: int) -> bytes:
    """``number`` as ``length`` bytes of packed BCD (EMV format n), right-justified."""
    return bytes.fromhex(str(number).zfill(length * 2))


class _SettingError(ConfigError):
    """A bad setting value; ``load`` re-words it to name the file and the TOML key."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"terminal setting {key!r}: {reason}")


def _check(key: str, ok: bool, reason: str) -> None:
    # Keys are named as in the TOML file ("aid", "data"), so messages match what users wrote.
    if not ok:
        raise _SettingError(key, reason)


@dataclass(frozen=True)
class TerminalConfig:
    """Terminal settings for an EMV read, with defaults fit for a test terminal.

    Amounts are integers in the currency's minor units (``150`` = 1.50 EUR); codes are the
    ISO numeric ones (country 3166-1, currency 4217); byte fields are ``bytes``. ``clock``
    returns the transaction date and time; ``rng`` gives the unpredictable number, either a
    callable ``rng(n) -> bytes`` or a (seeded) :class:`random.Random`.
    """

    #: Terminal Country Code (9F1A), ISO 3166-1 numeric (840 = United States).
    country: int = 840
    #: Transaction Currency Code (5F2A), ISO 4217 numeric (840 = US dollar).
    currency: int = 840
    #: Transaction Currency Exponent (5F36).
    currency_exponent: int = 2
    #: Amount, Authorised (9F02), minor units.
    amount: int = 100
    #: Amount, Other (9F03), minor units (cashback).
    other_amount: int = 0
    #: Transaction Type (9C), two digits: 0 purchase, 1 cash, 9 cashback, 20 refund.
    transaction_type: int = 0
    #: Terminal Transaction Qualifiers (9F66): qVSDC, EMV contact, online PIN, signature,
    #: consumer device CVM.
    ttq: bytes = bytes.fromhex("36004000")
    #: Terminal Type (9F35), two digits: 22 = attended, merchant, online with offline.
    terminal_type: int = 22
    #: Terminal Capabilities (9F33).
    capabilities: bytes = bytes.fromhex("E0F8C8")
    #: Additional Terminal Capabilities (9F40).
    additional_capabilities: bytes = bytes.fromhex("F000F0A001")
    #: Terminal Verification Results (95) sent to the card.
    tvr: bytes = bytes(5)
    #: CVM Results (9F34): 3F0000 = no CVM performed.
    cvm_results: bytes = bytes.fromhex("3F0000")
    #: Cryptogram GENERATE AC asks for: "arqc" (go online), "tc" (approve offline), "aac".
    cryptogram: str = "arqc"
    #: Merchant Name and Location (9F4E).
    merchant_name: str = "CONTACTLESS TEST TERMINAL"
    #: Merchant Category Code (9F15), four digits.
    merchant_category_code: int = 5999
    #: Merchant Identifier (9F16), up to 15 characters.
    merchant_id: str = "CONTACTLESS0001"
    #: Terminal Identification (9F1C), up to 8 characters.
    terminal_id: str = "CLTEST01"
    #: Interface Device Serial Number (9F1E), up to 8 characters.
    ifd_serial: str = "00000001"
    #: Acquirer Identifier (9F01), 6-11 digits.
    acquirer_id: str = "000000"
    #: Applications accepted, in the terminal's order of preference.
    supported_aids: tuple[SupportedAid, ...] = DEFAULT_AIDS
    #: More terminal data objects, tag -> value, e.g. ``{b"\\x9f\\x09": b"\\x00\\x02"}``;
    #: they override the values built from the settings above.
    extra_data: Mapping[bytes, bytes] = field(default_factory=dict)
    clock: Clock = field(default=datetime.now, repr=False, compare=False)
    rng: Rng = field(default=os.urandom, repr=False, compare=False)
    #: The file the settings came from (for messages), or None.
    source: str | None = field(default=None, compare=False)

    #: TOML keys that are not fields: they set ``clock`` and ``rng`` (see ``load``).
    _SPECIAL_KEYS: ClassVar[tuple[str, ...]] = ("aid", "data", "seed", "fixed_time")

    def __post_init__(self) -> None:
        for key, digits in (
            ("country", 3),
            ("currency", 3),
            ("currency_exponent", 1),
            ("amount", 12),
            ("other_amount", 12),
            ("transaction_type", 2),
            ("terminal_type", 2),
            ("merchant_category_code", 4),
        ):
            value = getattr(self, key)
            _check(
                key,
                isinstance(value, int) and not isinstance(value, bool),
                f"must be an integer, got {value!r}",
            )
            _check(key, 0 <= value < 10**digits, f"must be 0-{10**digits - 1}, got {value}")
        for key, size in (
            ("ttq", 4),
            ("capabilities", 3),
            ("additional_capabilities", 5),
            ("tvr", 5),
            ("cvm_results", 3),
        ):
            value = getattr(self, key)
            _check(key, isinstance(value, bytes), f"must be bytes, got {type(value).__name__}")
            _check(key, len(value) == size, f"must be {size} bytes, got {len(value)}")
        _check(
            "cryptogram",
            self.cryptogram in CRYPTOGRAM_P1,
            f"must be one of {', '.join(CRYPTOGRAM_P1)}, got {self.cryptogram!r}",
        )
        for key, limit in (
            ("merchant_name", 255),
            ("merchant_id", 15),
            ("terminal_id", 8),
            ("ifd_serial", 8),
        ):
            value = getattr(self, key)
            _check(key, isinstance(value, str), f"must be text, got {value!r}")
            _check(key, value.isascii(), "must be ASCII")
            _check(key, len(value) <= limit, f"must be at most {limit} characters")
        _check(
            "acquirer_id",
            isinstance(self.acquirer_id, str)
            and self.acquirer_id.isascii()
            and self.acquirer_id.isdigit()
            and 6 <= len(self.acquirer_id) <= 11,
            f"must be 6-11 digits, got {self.acquirer_id!r}",
        )
        _check("supported_aids", bool(self.supported_aids), "needs at least one application")
        for entry in self.supported_aids:
            _check(
                "aid",
                isinstance(entry, SupportedAid) and 5 <= len(entry.aid) <= 16,
                f"{entry!r} is not an AID of 5-16 bytes",
            )
        for tag, value in self.extra_data.items():
            _check("data", isinstance(value, bytes), f"value for {tag!r} must be bytes")
            try:
                parse_tag(tag)
            except ContactlessError as error:
                raise _SettingError("data", error.message) from None
        _check("clock", callable(self.clock), "must be callable")
        _check("rng", callable(self.rng) or isinstance(self.rng, random.Random), "bad RNG")

    # --- sources of variation --------------------------------------------------------------

    def now(self) -> datetime:
        """The transaction date and time, from :attr:`clock`."""
        when = self.clock()
        if not isinstance(when, datetime):
            raise ConfigError(f"terminal clock returned {type(when).__name__}, not a datetime")
        return when

    def random_bytes(self, size: int) -> bytes:
        """``size`` random bytes from :attr:`rng` (used for the Unpredictable Number)."""
        if isinstance(self.rng, random.Random):
            return self.rng.randbytes(size)
        data = self.rng(size)
        if not isinstance(data, bytes) or len(data) != size:
            raise ConfigError(f"terminal RNG returned {data!r:.40} instead of {size} bytes")
        return data

    # --- terminal data objects -------------------------------------------------------------

    def terminal_data(self, when: datetime, unpredictable_number: bytes) -> dict[bytes, bytes]:
        """The data objects this terminal can put in a DOL (tag bytes -> value), for a
        transaction at ``when`` with ``unpredictable_number`` (9F37)."""
        data = {
            b"\x9f\x66": self.ttq,
            b"\x9f\x02": _bcd(self.amount, 6),
            b"\x9f\x03": _bcd(self.other_amount, 6),
            b"\x9f\x1a": _bcd(self.country, 2),
            b"\x5f\x2a": _bcd(self.currency, 2),
            b"\x5f\x36": _bcd(self.currency_exponent, 1),
            b"\x9a": bytes.fromhex(when.strftime("%y%m%d")),
            b"\x9f\x21": bytes.fromhex(when.strftime("%H%M%S")),
            b"\x9c": _bcd(self.transaction_type, 1),
            b"\x9f\x37": unpredictable_number,
            b"\x95": self.tvr,
            b"\x9f\x35": _bcd(self.terminal_type, 1),
            b"\x9f\x33": self.capabilities,
            b"\x9f\x40": self.additional_capabilities,
            b"\x9f\x34": self.cvm_results,
            b"\x9f\x4e": self.merchant_name.encode("ascii"),
            b"\x9f\x15": _bcd(self.merchant_category_code, 2),
            b"\x9f\x16": self.merchant_id.encode("ascii"),
            b"\x9f\x1c": self.terminal_id.encode("ascii"),
            b"\x9f\x1e": self.ifd_serial.encode("ascii"),
            # n 6-11: right-justified in 6 bytes (12 digits), as the DOL rules pad n.
            b"\x9f\x01": _bcd(int(self.acquirer_id), 6),
        }
        data.update({parse_tag(tag): value for tag, value in self.extra_data.items()})
        return data

    # --- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, **overrides: Any) -> TerminalConfig:
        """Settings from the TOML file at ``path`` (defaults for every key it leaves out),
        then ``overrides`` (field names, e.g. ``amount=250``). ``path=None`` means defaults.

        Besides the field names, the file may hold ``seed`` (an integer: a seeded RNG),
        ``fixed_time`` (a TOML date-time: a clock that always returns it), ``[[aid]]``
        tables (``aid``, ``partial``, ``label``; they replace the default list) and a
        ``[data]`` table of tag = hex value. A missing, unreadable or invalid file, an
        unknown key or a bad value raises :class:`~contactless.errors.ConfigError` naming
        the file and the key.
        """
        if path is None:
            return dataclasses.replace(cls(), **overrides) if overrides else cls()
        name = os.fspath(path)
        try:
            with Path(name).open("rb") as handle:
                document = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"terminal config {name}: file not found") from None
        except OSError as error:
            raise ConfigError(f"terminal config {name}: cannot read: {error.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"terminal config {name}: not valid TOML: {error}") from None
        return cls.from_mapping(document, source=name, **overrides)

    @classmethod
    def from_mapping(
        cls, document: Mapping[str, Any], *, source: str | None = None, **overrides: Any
    ) -> TerminalConfig:
        """Settings from an already parsed TOML document (the same keys :meth:`load` reads),
        then ``overrides``. A ``[selftest]`` table is skipped: it belongs to
        ``contactless selftest`` (docs/selftest.md), which shares the terminal's file.
        Errors are :class:`~contactless.errors.ConfigError` naming ``source`` and the key.
        """
        where = f"terminal config {source}: " if source else ""
        try:
            settings = _settings_from_toml({k: v for k, v in document.items() if k != "selftest"})
            settings.update(overrides)
            return cls(**settings, source=source)
        except _SettingError as error:
            raise ConfigError(f"{where}key {error.key!r}: {error.reason}") from None
        except ConfigError as error:
            raise ConfigError(f"{where}{error.message}") from None


# --- TOML values -> field values (each converter names the key in its errors) ---------------


def _as_int(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"key {key!r}: expected an integer, got {_shown(value)}")
    return value


def _as_str(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"key {key!r}: expected a string, got {_shown(value)}")
    return value


def _as_hex(key: str, value: object) -> bytes:
    try:
        return parse_hex(_as_str(key, value), what=f"key {key!r}")
    except ConfigError:
        raise
    except ContactlessError as error:
        raise ConfigError(error.message) from None


def _as_digits(key: str, value: object) -> str:
    # Identifiers written as numbers lose leading zeros; accept both, keep text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).zfill(6)
    return _as_str(key, value)


#: How each plain TOML key turns into its field's value.
_CONVERTERS: dict[str, Callable[[str, object], object]] = {
    "country": _as_int,
    "currency": _as_int,
    "currency_exponent": _as_int,
    "amount": _as_int,
    "other_amount": _as_int,
    "transaction_type": _as_int,
    "ttq": _as_hex,
    "terminal_type": _as_int,
    "capabilities": _as_hex,
    "additional_capabilities": _as_hex,
    "tvr": _as_hex,
    "cvm_results": _as_hex,
    "cryptogram": lambda key, value: _as_str(key, value).lower(),
    "merchant_name": _as_str,
    "merchant_category_code": _as_int,
    "merchant_id": _as_str,
    "terminal_id": _as_str,
    "ifd_serial": _as_str,
    "acquirer_id": _as_digits,
}
_AID_KEYS = ("aid", "partial", "label")


def _settings_from_toml(document: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key, value in document.items():
        if key in _CONVERTERS:
            settings[key] = _CONVERTERS[key](key, value)
        elif key == "aid":
            settings["supported_aids"] = _aids_from_toml(value)
        elif key == "data":
            settings["extra_data"] = _data_from_toml(value)
        elif key == "seed":
            settings["rng"] = random.Random(_as_int(key, value))
        elif key == "fixed_time":
            settings["clock"] = _fixed_clock(key, value)
        else:
            valid = ", ".join(sorted([*_CONVERTERS, *TerminalConfig._SPECIAL_KEYS]))
            raise ConfigError(f"unknown key {key!r} (valid keys: {valid})")
    return settings


def _aids_from_toml(value: object) -> tuple[SupportedAid, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError("key 'aid': expected one or more [[aid]] tables")
    entries = []
    for index, table in enumerate(value, 1):
        where = f"aid #{index}"
        if not isinstance(table, dict):
            raise ConfigError(f"key {where!r}: expected a table with aid, partial, label")
        unknown = sorted(set(table) - set(_AID_KEYS))
        if unknown:
            raise ConfigError(
                f"key {where}.{unknown[0]!r}: unknown (valid keys: {', '.join(_AID_KEYS)})"
            )
        if "aid" not in table:
            raise ConfigError(f"key {where}.'aid': missing")
        aid = _as_hex(f"{where}.aid", table["aid"])
        if not 5 <= len(aid) <= 16:
            raise ConfigError(f"key '{where}.aid': an AID is 5-16 bytes, got {len(aid)}")
        partial = table.get("partial", True)
        if not isinstance(partial, bool):
            raise ConfigError(
                f"key '{where}.partial': expected true or false, got {_shown(partial)}"
            )
        label = _as_str(f"{where}.label", table.get("label", ""))
        entries.append(SupportedAid(aid, partial, label))
    return tuple(entries)


def _data_from_toml(value: object) -> dict[bytes, bytes]:
    if not isinstance(value, dict):
        raise ConfigError("key 'data': expected a table of tag = \"hex value\"")
    data = {}
    for tag, hex_value in value.items():
        try:
            tag_bytes = parse_tag(tag)
        except ContactlessError:
            raise ConfigError(f"key 'data.{tag}': {tag!r} is not a well-formed tag") from None
        data[tag_bytes] = _as_hex(f"data.{tag}", hex_value)
    return data


def _fixed_clock(key: str, value: object) -> Clock:
    if isinstance(value, datetime):
        return lambda: value
    if isinstance(value, date):
        raise ConfigError(
            f"key {key!r}: {value.isoformat()} is a date without a time; "
            f"write {value.isoformat()}T00:00:00"
        )
    if isinstance(value, time):
        raise ConfigError(
            f"key {key!r}: {value.isoformat()} is a time without a date; "
            f"write e.g. 2025-01-02T{value.isoformat()}"
        )
    raise ConfigError(
        f"key {key!r}: expected a TOML date-time such as 2025-01-02T12:00:00, got {_shown(value)}"
    )


def _shown(value: object) -> str:
    """A TOML value as the file spells it, for messages: dates and times in ISO form
    (not ``datetime.date(2025, 1, 2)``), anything else as its repr, cut short."""
    if isinstance(value, date | time):
        return value.isoformat()
    return f"{value!r:.60}"
