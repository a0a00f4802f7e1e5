"""Fault injection settings, parsed from a query string such as ``latency_ms=40&sw=A8:6985``.

The same options serve every way of putting a virtual card on a wire (``sim:``, the vpcd
bridge, the nfcpy UDP emulator). The transport applies the wire faults (latency, errors,
muting, removal, hanging, firmware string); the card applies :class:`CardOptions`.

====================  ==================================================================
``latency_ms``        delay per APDU in milliseconds (number >= 0)
``error_rate``        share of APDUs that fail in transit (0 to 1)
``seed``              seed for the error draws, so a run can be repeated (integer)
``mute_after``        the card answers this many APDUs, then stays silent
``remove_after``      the card leaves the field during APDU number N + 1
``hang_after``        the reader stops responding after this many APDUs
``firmware``          firmware version the reader reports (at most 64 characters)
``sw``                ``INS:SW`` pairs answered instead, e.g. ``A8:6985,B2:6A83``
``corrupt``           INS (hex, comma separated) whose answers carry broken TLV
``t0``                yes: T=0 style answers (61xx / 6Cxx)
``pin_tries``         initial PIN try counter (0-15; 0 = PIN blocked)
``expired``           yes: the card is past its expiry date
====================  ==================================================================

Yes/no options take the spellings in :data:`BOOLEAN_SPELLINGS` (``1``/``0``, ``true``/
``false``, ``yes``/``no``, ``on``/``off``, any case); no value may exceed
:data:`MAX_VALUE_LENGTH` characters.

>>> faults = parse_faults("latency_ms=40&sw=A8:6985&t0=1")
>>> faults.latency_ms, faults.card_options.sw_override[0xA8], faults.card_options.t0
(40.0, 27013, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from ..errors import ConfigError
from .card import CardOptions

__all__ = ["BOOLEAN_SPELLINGS", "FAULT_KEYS", "Faults", "parse_faults"]


@dataclass(frozen=True)
class Faults:
    """Parsed fault options: wire faults for the transport, card options for the card."""

    card_options: CardOptions = field(default_factory=CardOptions)
    latency_ms: float = 0.0
    error_rate: float = 0.0
    seed: int | None = None
    mute_after: int | None = None
    remove_after: int | None = None
    firmware: str | None = None
    hang_after: int | None = None


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:  # also rejects nan
        raise ValueError
    return value


def _count(text: str) -> int:
    value = int(text, 10)
    if value < 0:
        raise ValueError
    return value


#: How a yes/no option may be spelled (any case), the same for every such option.
BOOLEAN_SPELLINGS: Mapping[str, bool] = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}
_BOOLEAN_EXPECTED = "one of " + ", ".join(BOOLEAN_SPELLINGS)

#: Longest firmware string a reader reports (the ACR122U's is 10 characters).
MAX_FIRMWARE_LENGTH = 64
#: Longest value of any option: room for an sw override of all 256 INS bytes, no more.
MAX_VALUE_LENGTH = 2048


def _flag(text: str) -> bool:
    return BOOLEAN_SPELLINGS[text.lower()]


def _byte(text: str) -> int:
    if len(text) != 2:
        raise ValueError
    return int(text, 16)


def _sw_pairs(text: str) -> dict[int, int]:
    pairs = {}
    for item in text.split(","):
        ins, sep, sw = item.strip().partition(":")
        if not sep or len(sw.strip()) != 4:
            raise ValueError
        pairs[_byte(ins.strip())] = int(sw.strip(), 16)
    return pairs


def _ins_list(text: str) -> frozenset[int]:
    return frozenset(_byte(item.strip()) for item in text.split(","))


def _pin_tries(text: str) -> int:
    value = int(text, 10)
    if not 0 <= value <= 15:
        raise ValueError
    return value


def _firmware(text: str) -> str:
    if not text.strip() or not text.isprintable() or len(text) > MAX_FIRMWARE_LENGTH:
        raise ValueError
    return text


#: Each option: (parser raising ValueError/KeyError on a bad value, what a good value is).
_PARSERS: Mapping[str, tuple[Callable[[str], Any], str]] = {
    "latency_ms": (_number, "a number of milliseconds >= 0"),
    "error_rate": (_rate, "a number from 0 to 1"),
    "seed": (lambda text: int(text, 10), "an integer"),
    "mute_after": (_count, "a count of APDUs >= 0"),
    "remove_after": (_count, "a count of APDUs >= 0"),
    "hang_after": (_count, "a count of APDUs >= 0"),
    "firmware": (_firmware, f"a printable version string of 1-{MAX_FIRMWARE_LENGTH} characters"),
    "sw": (_sw_pairs, "INS:SW pairs in hex, comma separated, e.g. A8:6985,B2:6A83"),
    "corrupt": (_ins_list, "INS bytes in hex, comma separated, e.g. B2 or A8,B2"),
    "t0": (_flag, _BOOLEAN_EXPECTED),
    "pin_tries": (_pin_tries, "an integer from 0 to 15"),
    "expired": (_flag, _BOOLEAN_EXPECTED),
}

#: The valid option names.
FAULT_KEYS: frozenset[str] = frozenset(_PARSERS)

#: Options that belong to the card, with the CardOptions field each one sets.
_CARD_FIELDS = {
    "t0": "t0",
    "sw": "sw_override",
    "corrupt": "corrupt_ins",
    "pin_tries": "pin_tries",
    "expired": "expired",
}


def parse_faults(query: str | Mapping[str, str]) -> Faults:
    """Parse fault options from a URI query string (``a=1&b=2``, a leading ``?`` is allowed)
    or a mapping. Unknown keys, repeated keys and bad values raise :class:`ConfigError`
    naming the key and the valid keys or values."""
    items: list[tuple[str, str]]
    if isinstance(query, str):
        text = query[1:] if query.startswith("?") else query
        items = parse_qsl(text, keep_blank_values=True)
        if text and not items:
            raise ConfigError(f"fault options {query!r} are not key=value pairs")
    elif isinstance(query, Mapping):
        items = list(query.items())
    else:
        raise ConfigError(f"fault options must be a query string or a mapping, not {query!r}")
    valid = ", ".join(sorted(FAULT_KEYS))
    values: dict[str, Any] = {}
    for key, text in items:
        if key not in _PARSERS:
            raise ConfigError(
                f"unknown fault option {key!r}; valid options: {valid}",
                remedy="check the spelling of the option in the reader URI",
            )
        if key in values:
            raise ConfigError(f"fault option {key!r} is given twice")
        parser, expected = _PARSERS[key]
        if not isinstance(text, str):
            raise ConfigError(f"fault option {key!r} must be text, not {text!r:.40}")
        if len(text) > MAX_VALUE_LENGTH:
            raise ConfigError(
                f"fault option {key!r} is {len(text)} characters long; "
                f"the limit is {MAX_VALUE_LENGTH}"
            )
        try:
            values[key] = parser(text.strip())
        except (ValueError, KeyError):
            raise ConfigError(
                f"fault option {key}={text!r:.60} is invalid: expected {expected}"
            ) from None
    card = {name: values.pop(key) for key, name in _CARD_FIELDS.items() if key in values}
    return Faults(card_options=CardOptions(**card), **values)
