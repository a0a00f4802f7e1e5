"""Card profiles: what a virtual card holds, loaded from ``profiles/<name>.toml``.

A profile file describes one card: its contactless identity (ATS, UID), PIN, counters,
and one ``[[application]]`` table per payment application. Top-level keys that belong to an
application (``pan``, ``pdol``, ``[data]``...) are defaults that every application inherits
and may override. The application's data objects come from two places:

- fields with a meaning (``pan``, ``expiry``, ``service_code``, ``label``...), from which the
  card derives the tags that carry them (5A, 57, 5F24, 9F6B, 56, 50, 87...), so the PAN
  and dates stay consistent everywhere they appear;
- ``[application.data]``: any other tag, as hex (CVM list, IACs, certificates...).

``records`` say which tags each record (SFI, number) holds; the card builds the ``70``
templates. Every file is checked on load (PAN passes Luhn, AFL names existing records,
DOLs parse, records fit a short APDU answer...); a broken file is a
:class:`~contactless.errors.ConfigError` naming the file and the field.

Card keys (top level only): ``description``, ``ats`` (hex, TL T0 TA TB TC + historical
bytes; the ATR is derived from it), ``uid`` (4/7/10 bytes), ``ppse`` (default true),
``pin`` (digits, offline PIN), ``pin_try_limit`` (default 3), ``atc`` (initial ATC),
``last_online_atc`` (9F13, for GET DATA).

Application keys (in ``[[application]]``, or at the top level as defaults):

=========================  ===================================================================
``aid``, ``label``         4F/84 and 50 (required); ``preferred_name`` 9F12, ``priority`` 87,
                           ``language`` 5F2D (``"enfr"``), ``issuer_code_table`` 9F11
``pan``                    digits, Luhn-checked -> 5A, 57, 9F6B, 56; ``pan_sequence`` -> 5F34
``expiry``/``effective``   ``"YYYY-MM"`` -> 5F24 (last day of the month), 5F25, Track 2 YYMM
``service_code``           three digits -> 5F30 and the tracks
``cardholder_name``        -> 5F20 and Track 1
``issuer_country``         ISO 3166 numeric -> 5F28; ``currency`` ISO 4217 numeric -> 9F42
``track2_discretionary``   digits after the service code (``track1_discretionary`` likewise)
``aip``, ``afl``           82 and 94, hex
``pdol``/``cdol1``/...     9F38, 8C, 8D as hex DOLs
``gpo_format``             1 (80: AIP + AFL) or 2 (77: 82, 94 + ``gpo_tags``)
``gpo_cryptogram``         true: qVSDC, the GPO answer carries 9F26/9F27/9F36/9F10
``generate_ac_format``     1 (80) or 2 (77), default 2
``offline_approval``       true: a TC request gets a TC (default: ARQC, online-only card)
``fci_tags``/``ppse_tags`` extra tags in the FCI's BF0C / in the PPSE directory entry
``[cryptogram]``           ``method`` (see :data:`.crypto.METHODS`), ``issuer_master_key``
                           (test key), ``iad``, ``cvr_offset``/``cvr_length``, ``ac_type_offset``
``[data]``                 other tags as hex; 9F4D + 9F4F make a transaction log
``[[records]]``            ``sfi``, ``record``, ``tags`` (a list of tags in hex)
=========================  ===================================================================

>>> profile = load_profile("visa")
>>> profile.applications[0].label
'VISA CREDIT'
"""

from __future__ import annotations

import calendar
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError, LocalProtocolError, TlvError
from ..hexutil import parse_hex
from ..tlv.dol import parse_dol
from .crypto import METHODS, TERMINAL_DATA_TAGS, CryptogramMethod

__all__ = [
    "Application",
    "CryptogramConfig",
    "Profile",
    "Record",
    "list_profiles",
    "load_profile",
    "load_profile_file",
    "luhn_valid",
    "parse_profile",
]

PPSE_NAME = b"2PAY.SYS.DDF01"

#: Tags whose value the card computes per transaction; allowed in ``gpo_tags`` only.
DYNAMIC_TAGS = frozenset({b"\x9f\x10", b"\x9f\x26", b"\x9f\x27", b"\x9f\x36"})

_REMEDY = "fix the profile file; contactless/emulator/profiles/visa.toml is a model"
_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]*")


# --- small helpers shared with the card --------------------------------------------------


def luhn_valid(number: str) -> bool:
    """True when a digit string passes the Luhn (mod 10) check, as every PAN must."""
    if not number.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _bcd(digits: str) -> bytes:
    return bytes.fromhex(digits if len(digits) % 2 == 0 else "0" + digits)


def _cn(digits: str) -> bytes:
    return bytes.fromhex(digits + "F" * (len(digits) % 2))


# --- the data model ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One record of an application's files: which tags the ``70`` template holds."""

    sfi: int
    number: int
    tags: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class CryptogramConfig:
    """How an application computes its cryptograms (see :mod:`.crypto`)."""

    method_name: str
    method: CryptogramMethod
    #: Test issuer master key (never a live key); the card derives its ICC master key.
    issuer_master_key: bytes
    #: Issuer Application Data template (9F10); the AC-type bits are filled per answer.
    iad: bytes
    cvr_offset: int
    cvr_length: int
    #: Index in the IAD of the CVR byte whose bits 8-5 give the AC types returned, or None.
    ac_type_offset: int | None


@dataclass(frozen=True, slots=True)
class Application:
    """One payment application as the profile describes it."""

    aid: bytes
    label: str
    preferred_name: str | None
    priority: int | None
    language: str | None
    issuer_code_table: int | None
    pan: str
    pan_sequence: str
    #: (year, month) of the expiry and effective dates.
    expiry: tuple[int, int]
    effective: tuple[int, int] | None
    service_code: str
    cardholder_name: str | None
    issuer_country: int
    currency: int
    track2_discretionary: str
    track1_discretionary: str
    aip: bytes
    afl: bytes
    pdol: bytes | None
    cdol1: bytes | None
    cdol2: bytes | None
    gpo_format: int
    gpo_tags: tuple[bytes, ...]
    #: qVSDC-style: the GPO itself answers with a cryptogram (ATC, 9F26, 9F27, 9F10).
    gpo_cryptogram: bool
    generate_ac_format: int
    #: The card approves offline (answers TC to a TC request); else it goes online (ARQC).
    offline_approval: bool
    cryptogram: CryptogramConfig | None
    fci_tags: tuple[bytes, ...]
    ppse_tags: tuple[bytes, ...]
    records: tuple[Record, ...]
    data: Mapping[bytes, bytes]

    def data_objects(self, *, expired: bool = False) -> dict[bytes, bytes]:
        """Every static data object of the application, tag -> value.

        With ``expired``, the dates move ten years back so that the card is out of date
        (the expiry stays after the effective date).
        """
        objects = dict(self.data)
        for tag, derive in _DERIVED.items():
            value = derive(self, expired)
            if value is not None:
                objects[tag] = value
        return objects

    def dates(self, *, expired: bool = False) -> tuple[tuple[int, int], tuple[int, int] | None]:
        """(expiry, effective) as (year, month), moved back ten years when ``expired``."""
        shift = 10 if expired else 0
        expiry = (self.expiry[0] - shift, self.expiry[1])
        effective = (
            None if self.effective is None else (self.effective[0] - shift, self.effective[1])
        )
        return expiry, effective


@dataclass(frozen=True, slots=True)
class Profile:
    """A whole card: identity, card-wide state and its applications."""

    name: str
    description: str
    source: str
    ats: bytes
    uid: bytes
    ppse: bool
    pin: str | None
    pin_try_limit: int
    atc: int
    last_online_atc: int | None
    applications: tuple[Application, ...] = field(default_factory=tuple)

    @property
    def historical_bytes(self) -> bytes:
        """The ATS historical bytes (after TL, T0 and the interface bytes it announces)."""
        t0 = self.ats[1]
        interface = bin(t0 & 0x70).count("1")
        return self.ats[2 + interface :]

    @property
    def atr(self) -> bytes:
        """The ATR a PC/SC reader builds for this ISO 14443-4 type A card (PC/SC part 3):
        ``3B 8n 80 01`` + the ATS historical bytes + TCK (XOR of T0 to the last byte)."""
        body = bytes((0x80 | len(self.historical_bytes), 0x80, 0x01)) + self.historical_bytes
        tck = 0
        for byte in body:
            tck ^= byte
        return b"\x3b" + body + bytes((tck,))


# --- derived data objects: tag -> how the value follows from the profile's fields --------


def _yymm(date: tuple[int, int]) -> str:
    return f"{date[0] % 100:02d}{date[1]:02d}"


def _track2(app: Application, expired: bool, discretionary: str) -> bytes:
    expiry, _ = app.dates(expired=expired)
    text = f"{app.pan}D{_yymm(expiry)}{app.service_code}{discretionary}"
    return _cn(text)


def _track1(app: Application, expired: bool) -> bytes:
    expiry, _ = app.dates(expired=expired)
    name = app.cardholder_name or " /"
    text = f"B{app.pan}^{name}^{_yymm(expiry)}{app.service_code}{app.track1_discretionary}"
    return text.encode("ascii")


def _expiry_date(app: Application, expired: bool) -> bytes:
    (year, month), _ = app.dates(expired=expired)
    last_day = calendar.monthrange(year, month)[1]
    return bytes.fromhex(f"{year % 100:02d}{month:02d}{last_day:02d}")


def _effective_date(app: Application, expired: bool) -> bytes | None:
    _, effective = app.dates(expired=expired)
    if effective is None:
        return None
    return bytes.fromhex(f"{effective[0] % 100:02d}{effective[1]:02d}01")


def _text(value: str | None) -> bytes | None:
    return None if value is None else value.encode("ascii")


_DERIVED: Mapping[bytes, Callable[[Application, bool], bytes | None]] = MappingProxyType(
    {
        b"\x4f": lambda app, _: app.aid,
        b"\x50": lambda app, _: app.label.encode("ascii"),
        b"\x9f\x12": lambda app, _: _text(app.preferred_name),
        b"\x87": lambda app, _: None if app.priority is None else bytes((app.priority,)),
        b"\x5f\x2d": lambda app, _: _text(app.language),
        b"\x9f\x11": lambda app, _: (
            None if app.issuer_code_table is None else _bcd(f"{app.issuer_code_table:02d}")
        ),
        b"\x9f\x38": lambda app, _: app.pdol,
        b"\x8c": lambda app, _: app.cdol1,
        b"\x8d": lambda app, _: app.cdol2,
        b"\x82": lambda app, _: app.aip,
        b"\x94": lambda app, _: app.afl,
        b"\x5a": lambda app, _: _cn(app.pan),
        b"\x5f\x34": lambda app, _: _bcd(app.pan_sequence),
        b"\x5f\x24": _expiry_date,
        b"\x5f\x25": _effective_date,
        b"\x5f\x30": lambda app, _: _bcd(app.service_code.rjust(4, "0")),
        b"\x5f\x20": lambda app, _: _text(app.cardholder_name),
        b"\x5f\x28": lambda app, _: _bcd(f"{app.issuer_country:04d}"),
        b"\x9f\x42": lambda app, _: _bcd(f"{app.currency:04d}"),
        b"\x57": lambda app, expired: _track2(app, expired, app.track2_discretionary),
        # Mastercard mag-stripe Track 2 (9F6B): discretionary digits left for the CVC3.
        b"\x9f\x6b": lambda app, expired: _track2(
            app, expired, "0" * len(app.track2_discretionary)
        ),
        b"\x56": _track1,
    }
)


# --- loading -----------------------------------------------------------------------------

#: Keys only the top level may hold.
CARD_KEYS = frozenset(
    {"description", "ats", "uid", "ppse", "pin", "pin_try_limit", "atc", "last_online_atc"}
)
#: Keys of an application (also allowed at the top level, as defaults).
APPLICATION_KEYS = frozenset(
    {
        "aid",
        "label",
        "preferred_name",
        "priority",
        "language",
        "issuer_code_table",
        "pan",
        "pan_sequence",
        "expiry",
        "effective",
        "service_code",
        "cardholder_name",
        "issuer_country",
        "currency",
        "track2_discretionary",
        "track1_discretionary",
        "aip",
        "afl",
        "pdol",
        "cdol1",
        "cdol2",
        "gpo_format",
        "gpo_tags",
        "gpo_cryptogram",
        "generate_ac_format",
        "offline_approval",
        "cryptogram",
        "fci_tags",
        "ppse_tags",
        "records",
        "data",
    }
)
CRYPTOGRAM_KEYS = frozenset(
    {"method", "issuer_master_key", "iad", "cvr_offset", "cvr_length", "ac_type_offset"}
)
RECORD_KEYS = frozenset({"sfi", "record", "tags"})


class _Fields:
    """Typed access to one TOML table; every problem names the file and the field."""

    def __init__(self, table: Mapping[str, Any], *, source: str, where: str) -> None:
        self.table = table
        self.source = source
        self.where = where

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(
            f"profile {self.source}: {self.where}field {key!r}: {problem}", remedy=_REMEDY
        )

    def check_keys(self, allowed: frozenset[str]) -> None:
        unknown = sorted(set(self.table) - allowed)
        if unknown:
            raise self.error(unknown[0], "unknown key; valid keys: " + ", ".join(sorted(allowed)))

    def _get(self, key: str, kind: type | tuple[type, ...], kind_name: str, required: bool) -> Any:
        if key not in self.table:
            if required:
                raise self.error(key, "is missing")
            return None
        value = self.table[key]
        if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
            raise self.error(key, f"must be {kind_name}, not {value!r:.40}")
        return value

    def text(self, key: str, *, required: bool = True, pattern: str | None = None) -> Any:
        value = self._get(key, str, "a string", required)
        if value is not None and pattern is not None and not re.fullmatch(pattern, value):
            raise self.error(key, f"{value!r} does not match {pattern}")
        return value

    def integer(self, key: str, low: int, high: int, *, required: bool = True) -> Any:
        value = self._get(key, int, "an integer", required)
        if value is not None and not low <= value <= high:
            raise self.error(key, f"{value} is outside {low}..{high}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, bool, "true or false", False)
        return default if value is None else bool(value)

    def hex(self, key: str, *, required: bool = True, sizes: range | None = None) -> Any:
        text = self._get(key, str, "a hex string", required)
        if text is None:
            return None
        try:
            value = parse_hex(text, what=key)
        except LocalProtocolError as error:
            raise self.error(key, error.message) from None
        if sizes is not None and len(value) not in sizes:
            raise self.error(
                key, f"is {len(value)} bytes; expected {sizes.start}..{sizes.stop - 1}"
            )
        return value

    def tags(self, key: str) -> tuple[bytes, ...]:
        items = self._get(key, list, "a list of tags", False) or []
        tags = []
        for item in items:
            if not isinstance(item, str):
                raise self.error(key, f"{item!r} is not a tag in hex")
            tags.append(_tag(item, self, key))
        return tuple(tags)

    def month(self, key: str, *, required: bool = True) -> tuple[int, int] | None:
        text = self.text(key, required=required, pattern=r"(19|20)\d\d-(0[1-9]|1[0-2])")
        if text is None:
            return None
        year, month = text.split("-")
        return int(year), int(month)

    def required_month(self, key: str) -> tuple[int, int]:
        value = self.month(key)
        if value is None:  # month() already raised for a missing required key
            raise self.error(key, "is missing")
        return value

    def dol(self, key: str) -> bytes | None:
        value: bytes | None = self.hex(key, required=False, sizes=range(0, 253))
        if value is not None:
            try:
                parse_dol(value)
            except TlvError as error:
                raise self.error(key, f"is not a valid data object list: {error}") from None
        return value


def _tag(text: str, fields: _Fields, key: str) -> bytes:
    try:
        tag = parse_hex(text, what="tag")
    except LocalProtocolError as error:
        raise fields.error(key, error.message) from None
    if not tag or len(tag) > 4 or (tag[0] & 0x1F == 0x1F) != (len(tag) > 1):
        raise fields.error(key, f"{text!r} is not a well-formed BER tag")
    return tag


def _profiles_dir() -> Any:
    return resources.files(__package__ or "contactless.emulator") / "profiles"


def list_profiles() -> list[str]:
    """Names of the built-in profiles (``visa``, ``mastercard``...), sorted."""
    return sorted(
        entry.name[: -len(".toml")]
        for entry in _profiles_dir().iterdir()
        if entry.name.endswith(".toml")
    )


def load_profile(name: str) -> Profile:
    """Load a built-in profile by name, or a profile file when ``name`` is a path
    (contains a slash or ends in ``.toml``).

    An unknown name is a :class:`ConfigError` listing the valid ones.
    """
    if "/" in name or "\\" in name or name.endswith(".toml"):
        return load_profile_file(name)
    valid = list_profiles()
    if not _NAME_PATTERN.fullmatch(name) or name not in valid:
        raise ConfigError(
            f"no card profile named {name!r}; valid profiles: {', '.join(valid)}",
            remedy="pick one of the listed profiles, or give the path of a .toml profile",
        )
    resource = _profiles_dir() / f"{name}.toml"
    return _parse_text(resource.read_text(encoding="utf-8"), name=name, source=f"{name}.toml")


def load_profile_file(path: str | Path) -> Profile:
    """Load a profile from a TOML file anywhere on disk."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"cannot read profile {path}: {error.strerror or error}", remedy=_REMEDY
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"profile {path} is not UTF-8 text", remedy=_REMEDY) from None
    return _parse_text(text, name=path.stem, source=str(path))


def _parse_text(text: str, *, name: str, source: str) -> Profile:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"profile {source} is not valid TOML: {error}", remedy=_REMEDY) from None
    return parse_profile(table, name=name, source=source)


def parse_profile(table: Mapping[str, Any], *, name: str, source: str) -> Profile:
    """Build and check a :class:`Profile` from a parsed TOML table."""
    top = _Fields(table, source=source, where="")
    top.check_keys(CARD_KEYS | APPLICATION_KEYS | {"application"})
    ats = top.hex("ats", sizes=range(2, 21))
    _check_ats(ats, top)
    uid = top.hex("uid")
    if len(uid) not in (4, 7, 10):
        raise top.error("uid", f"is {len(uid)} bytes; an ISO 14443 UID is 4, 7 or 10 bytes")
    pin = top.text("pin", required=False, pattern=r"\d{4,12}")
    pin_try_limit = top.integer("pin_try_limit", 1, 15, required=False) or 3
    applications_table = top._get("application", list, "an array of [[application]]", True)
    if not applications_table:
        raise top.error("application", "needs at least one [[application]]")
    defaults = {key: value for key, value in table.items() if key in APPLICATION_KEYS}
    applications = []
    for index, entry in enumerate(applications_table, start=1):
        if not isinstance(entry, Mapping):
            raise top.error("application", f"entry {index} is not a table")
        merged = {**defaults, **entry}
        if isinstance(defaults.get("data"), Mapping) and isinstance(entry.get("data"), Mapping):
            merged["data"] = {**defaults["data"], **entry["data"]}
        label = entry.get("aid", f"#{index}")
        fields = _Fields(merged, source=source, where=f"application {index} ({label}) ")
        applications.append(_parse_application(fields))
    aids = [app.aid for app in applications]
    if len(set(aids)) != len(aids):
        raise top.error("application", "two applications have the same AID")
    return Profile(
        name=name,
        description=top.text("description", required=False) or name,
        source=source,
        ats=ats,
        uid=uid,
        ppse=top.flag("ppse", True),
        pin=pin,
        pin_try_limit=pin_try_limit,
        atc=top.integer("atc", 0, 0xFFFE, required=False) or 0,
        last_online_atc=top.integer("last_online_atc", 0, 0xFFFF, required=False),
        applications=tuple(applications),
    )


def _check_ats(ats: bytes, fields: _Fields) -> None:
    if ats[0] != len(ats):
        raise fields.error("ats", f"TL is {ats[0]} but the ATS is {len(ats)} bytes")
    t0 = ats[1]
    if t0 & 0x70 != 0x70:
        raise fields.error("ats", "T0 must announce TA, TB and TC (bits 5-7 set)")
    if t0 & 0x80:
        raise fields.error("ats", "T0 bit 8 is reserved and must be 0")
    if len(ats) < 5:
        raise fields.error("ats", "is too short for TL, T0, TA, TB and TC")
    if len(ats) - 5 > 15:
        raise fields.error("ats", "has more than 15 historical bytes (no room in the ATR)")


def _parse_application(fields: _Fields) -> Application:
    fields.check_keys(APPLICATION_KEYS)
    aid = fields.hex("aid", sizes=range(5, 17))
    pan = fields.text("pan", pattern=r"\d{12,19}")
    if not luhn_valid(pan):
        raise fields.error("pan", f"{pan[:6]}...{pan[-4:]} fails the Luhn check")
    expiry = fields.required_month("expiry")
    effective = fields.month("effective", required=False)
    if effective is not None and effective > expiry:
        raise fields.error("effective", "is after the expiry date")
    gpo_format = fields.integer("gpo_format", 1, 2)
    app = Application(
        aid=aid,
        label=fields.text("label", pattern=r"[\x20-\x7e]{1,16}"),
        preferred_name=fields.text("preferred_name", required=False, pattern=r"[\x20-\x7e]{1,16}"),
        priority=fields.integer("priority", 0, 255, required=False),
        language=fields.text("language", required=False, pattern=r"([a-z]{2}){1,4}"),
        issuer_code_table=fields.integer("issuer_code_table", 1, 10, required=False),
        pan=pan,
        pan_sequence=fields.text("pan_sequence", required=False, pattern=r"\d\d") or "00",
        expiry=expiry,
        effective=effective,
        service_code=fields.text("service_code", pattern=r"\d{3}"),
        cardholder_name=fields.text(
            "cardholder_name", required=False, pattern=r"[\x20-\x5d\x5f-\x7e]{2,26}"
        ),
        issuer_country=fields.integer("issuer_country", 1, 999),
        currency=fields.integer("currency", 1, 999),
        track2_discretionary=fields.text(
            "track2_discretionary", required=False, pattern=r"\d{0,20}"
        )
        or "",
        track1_discretionary=fields.text(
            "track1_discretionary", required=False, pattern=r"\d{0,40}"
        )
        or "",
        aip=fields.hex("aip", sizes=range(2, 3)),
        afl=fields.hex("afl", sizes=range(4, 253)),
        pdol=fields.dol("pdol"),
        cdol1=fields.dol("cdol1"),
        cdol2=fields.dol("cdol2"),
        gpo_format=gpo_format,
        gpo_tags=fields.tags("gpo_tags"),
        gpo_cryptogram=fields.flag("gpo_cryptogram", False),
        generate_ac_format=fields.integer("generate_ac_format", 1, 2, required=False) or 2,
        offline_approval=fields.flag("offline_approval", False),
        cryptogram=_parse_cryptogram(fields),
        fci_tags=fields.tags("fci_tags"),
        ppse_tags=fields.tags("ppse_tags"),
        records=_parse_records(fields),
        data=MappingProxyType(_parse_data(fields)),
    )
    _check_application(app, fields)
    return app


def _parse_cryptogram(fields: _Fields) -> CryptogramConfig | None:
    table = fields._get("cryptogram", Mapping, "a [cryptogram] table", False)
    if table is None:
        return None
    crypto = _Fields(table, source=fields.source, where=fields.where + "[cryptogram] ")
    crypto.check_keys(CRYPTOGRAM_KEYS)
    method_name = crypto.text("method")
    if method_name not in METHODS:
        raise crypto.error("method", f"unknown {method_name!r}; valid: {', '.join(METHODS)}")
    method = METHODS[method_name]
    iad = crypto.hex("iad", sizes=range(1, 33))
    needs_cvr = method.card_data == "cvr"
    cvr_offset = crypto.integer("cvr_offset", 0, len(iad) - 1, required=needs_cvr) or 0
    cvr_length = crypto.integer("cvr_length", 1, len(iad) - cvr_offset, required=needs_cvr) or 0
    return CryptogramConfig(
        method_name=method_name,
        method=method,
        issuer_master_key=crypto.hex("issuer_master_key", sizes=range(16, 17)),
        iad=iad,
        cvr_offset=cvr_offset,
        cvr_length=cvr_length,
        ac_type_offset=crypto.integer("ac_type_offset", 0, len(iad) - 1, required=False),
    )


def _parse_records(fields: _Fields) -> tuple[Record, ...]:
    entries = fields._get("records", list, "an array of [[application.records]]", True)
    records: dict[tuple[int, int], Record] = {}
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, Mapping):
            raise fields.error("records", f"entry {index} is not a table")
        record = _Fields(entry, source=fields.source, where=fields.where + f"record {index} ")
        record.check_keys(RECORD_KEYS)
        sfi = record.integer("sfi", 1, 30)
        number = record.integer("record", 1, 255)
        tags = record.tags("tags")
        if not tags:
            raise record.error("tags", "is missing or empty")
        if (sfi, number) in records:
            raise record.error("record", f"SFI {sfi} record {number} is defined twice")
        records[sfi, number] = Record(sfi, number, tags)
    return tuple(records.values())


def _parse_data(fields: _Fields) -> dict[bytes, bytes]:
    table = fields._get("data", Mapping, "a [data] table of tag = hex", False) or {}
    data_fields = _Fields(table, source=fields.source, where=fields.where + "[data] ")
    data = {}
    for key in table:
        tag = _tag(key, data_fields, key)
        if tag in _DERIVED or tag in DYNAMIC_TAGS:
            raise data_fields.error(
                key, "is derived from the profile's fields or computed by the card; remove it"
            )
        data[tag] = data_fields.hex(key, sizes=range(0, 250))
    return data


def _check_application(app: Application, fields: _Fields) -> None:
    objects = app.data_objects()
    # Every AFL entry: SFI 1-30, first <= last, ODA count within the range, records exist.
    known = {(record.sfi, record.number): record for record in app.records}
    if len(app.afl) % 4:
        raise fields.error("afl", "must be a multiple of 4 bytes")
    for start in range(0, len(app.afl), 4):
        sfi_byte, first, last, oda = app.afl[start : start + 4]
        sfi = sfi_byte >> 3
        where = f"entry {app.afl[start : start + 4].hex().upper()}"
        if sfi_byte & 0x07 or not 1 <= sfi <= 30:
            raise fields.error("afl", f"{where}: bad SFI byte {sfi_byte:02X}")
        if first == 0 or last < first or oda > last - first + 1:
            raise fields.error("afl", f"{where}: bad record range or ODA count")
        for number in range(first, last + 1):
            if (sfi, number) not in known:
                raise fields.error("afl", f"{where}: SFI {sfi} record {number} is not defined")
    for record in app.records:
        size = 0
        for tag in record.tags:
            if tag not in objects:
                raise fields.error(
                    "records",
                    f"SFI {record.sfi} record {record.number} holds tag {tag.hex().upper()}, "
                    "which the profile does not define",
                )
            size += len(tag) + _length_size(len(objects[tag])) + len(objects[tag])
        if 1 + _length_size(size) + size > 256:
            raise fields.error(
                "records",
                f"SFI {record.sfi} record {record.number} is {size} bytes: too long for "
                "one short READ RECORD answer (256 bytes)",
            )
    for key, tags in (("gpo_tags", app.gpo_tags), ("fci_tags", app.fci_tags)):
        for tag in tags:
            dynamic = key == "gpo_tags" and tag in DYNAMIC_TAGS
            if tag not in objects and not dynamic:
                raise fields.error(key, f"tag {tag.hex().upper()} is not defined")
    for tag in app.ppse_tags:
        if tag not in objects:
            raise fields.error("ppse_tags", f"tag {tag.hex().upper()} is not defined")
    _check_log(app, objects, fields)
    _check_cryptogram(app, fields)


def _check_log(app: Application, objects: Mapping[bytes, bytes], fields: _Fields) -> None:
    """The transaction log: 9F4D (SFI, size) needs 9F4F (its format) and a free SFI."""
    entry, log_format = objects.get(b"\x9f\x4d"), objects.get(b"\x9f\x4f")
    if entry is None:
        return
    if len(entry) != 2 or not 1 <= entry[0] <= 30 or entry[1] == 0:
        raise fields.error("data", "9F4D (log entry) must be SFI (1-30) and a record count")
    if entry[0] in {record.sfi for record in app.records}:
        raise fields.error("data", f"9F4D names SFI {entry[0]}, which holds records")
    if log_format is None:
        raise fields.error("data", "9F4D (log entry) needs 9F4F (log format)")
    try:
        parse_dol(log_format)
    except TlvError as error:
        raise fields.error("data", f"9F4F is not a valid data object list: {error}") from None


def _check_cryptogram(app: Application, fields: _Fields) -> None:
    users = []
    if app.gpo_cryptogram:
        users.append(("pdol", app.pdol))
    if app.cdol1 is not None:
        users.append(("cdol1", app.cdol1))
    if users and app.cryptogram is None:
        raise fields.error("cryptogram", "is missing: the card computes cryptograms")
    for key, dol in users:
        tags = {tag for tag, _ in parse_dol(dol or b"")}
        missing = [tag.hex().upper() for tag in TERMINAL_DATA_TAGS if tag not in tags]
        if missing:
            raise fields.error(key, f"lacks {', '.join(missing)}, which the cryptogram needs")
    if app.gpo_cryptogram and app.gpo_format != 2:
        raise fields.error("gpo_format", "must be 2 when the GPO answer carries a cryptogram")
    if app.gpo_tags and app.gpo_format != 2:
        raise fields.error("gpo_tags", "only a format 2 (tag 77) GPO answer can carry tags")
    dynamic = DYNAMIC_TAGS & set(app.gpo_tags)
    if app.gpo_cryptogram and dynamic != DYNAMIC_TAGS:
        missing = sorted(tag.hex().upper() for tag in DYNAMIC_TAGS - dynamic)
        raise fields.error("gpo_tags", f"lacks {', '.join(missing)} for the GPO cryptogram")
    if dynamic and not app.gpo_cryptogram:
        raise fields.error("gpo_tags", "holds cryptogram tags but gpo_cryptogram is false")


def _length_size(length: int) -> int:
    return 1 if length < 0x80 else 2 if length < 0x100 else 3
