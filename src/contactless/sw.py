"""Status words (SW1 SW2): what the card meant, how bad it is, and what to try.

The facts live in :data:`STATUS_WORDS`, one row per status word or pattern, taken from
ISO/IEC 7816-4:2013 (status bytes, tables 5 and 6), EMV Book 1 (application selection) and
EMV Book 3 (command responses), with the Java Card ``ISO7816`` constants where they add one.
A pattern is written as it is in the standards, with ``x`` for a free nibble: ``"61xx"``,
``"63Cx"``, ``"9xxx"``. Rows may be tied to one instruction (``ins``), because EMV gives some
status words a sharper meaning for one command: ``63Cx`` to VERIFY is a wrong PIN.

The most specific row wins: a row for the command's INS before a generic one, then the row
that fixes the most bits (``6A82`` before ``6Axx``), then table order. Any SW1 SW2 pair has an
answer; one outside ISO 7816's ranges is described as invalid, never raised.

>>> describe(0x6A82)
'6A82: file or application not found'
>>> lookup(0x63, 0xC2, ins=0x20).meaning
'wrong PIN: 2 tries left'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from .apdu import Command, Response
from .errors import LocalProtocolError, StatusWordError

__all__ = [
    "CATEGORIES",
    "STATUS_WORDS",
    "Category",
    "StatusWord",
    "StatusWordRule",
    "check",
    "describe",
    "lookup",
    "rules_for",
]

#: How a status word ends a command, following ISO 7816-4's grouping (transport: T=0
#: procedure answers the session resolves itself; proprietary: 9xxx defined by the
#: application; unknown: not a valid status word at all).
Category = Literal[
    "success",
    "transport",
    "warning",
    "execution_error",
    "checking_error",
    "proprietary",
    "unknown",
]

CATEGORIES: Final[tuple[Category, ...]] = (
    "success",
    "transport",
    "warning",
    "execution_error",
    "checking_error",
    "proprietary",
    "unknown",
)

#: Which exception :func:`check` raises for each category (``None``: the command succeeded).
_ERROR_FOR_CATEGORY: Final[dict[Category, type[StatusWordError] | None]] = {
    "success": None,
    "transport": StatusWordError,
    "warning": StatusWordError,
    "execution_error": StatusWordError,
    "checking_error": StatusWordError,
    "proprietary": StatusWordError,
    "unknown": StatusWordError,
}

# Instruction bytes used by context rows below (names come from apdu.INS_NAMES).
_SELECT: Final = 0xA4
_GPO: Final = 0xA8
_GENERATE_AC: Final = 0xAE
_VERIFY: Final = 0x20
_READ_RECORD: Final = 0xB2
_GET_DATA: Final = 0xCA

# Remedies shared by several rows: what a user or technician can actually do.
_ANOTHER_CARD: Final = "try another card"
_BLOCKED_APP: Final = "this payment application is blocked: try another card"
_PIN_BLOCKED: Final = (
    "the PIN is blocked: try another card, or have the cardholder unblock it with the issuer"
)
_BAD_COMMAND: Final = (
    "the terminal sent a command this card does not accept: record a trace and report it"
)
_NOT_PAYMENT: Final = "the card does not support this command: it may not be a payment card"
_CARD_FAULT: Final = (
    "present the card again; if it persists the card may be damaged: try another card"
)


@dataclass(frozen=True, slots=True)
class StatusWordRule:
    """One row of the table: a status word or pattern and what it means.

    ``pattern`` is four hex digits with ``x`` for a free nibble (``"63Cx"``); ``mask`` and
    ``value`` are derived from it. ``meaning`` may use ``{n}`` (SW2 in decimal), ``{x}``
    (low nibble of SW2), ``{tries}`` ("1 try", "2 tries") and ``{sw2}`` (SW2 in hex).
    ``ins`` ties the row to one instruction.
    """

    pattern: str
    category: Category
    meaning: str
    remedy: str | None = None
    ins: int | None = None
    source: str = "ISO 7816-4"
    mask: int = field(init=False)
    value: int = field(init=False)

    def __post_init__(self) -> None:
        text = self.pattern.upper()
        if len(text) != 4 or any(c not in "0123456789ABCDEFX" for c in text):
            raise ValueError(f"bad status word pattern {self.pattern!r}")
        mask = int("".join("0" if c == "X" else "F" for c in text), 16)
        value = int(text.replace("X", "0"), 16)
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "value", value)

    def matches(self, sw: int, ins: int | None = None) -> bool:
        """True when this row applies to ``sw`` answered to instruction ``ins``."""
        if self.ins is not None and self.ins != ins:
            return False
        return sw & self.mask == self.value

    @property
    def specificity(self) -> int:
        """How many bits of SW1 SW2 the row fixes (16 for an exact status word)."""
        return self.mask.bit_count()


_R = StatusWordRule

#: The status-word table. Order matters only between rows of equal specificity.
STATUS_WORDS: Final[tuple[StatusWordRule, ...]] = (
    # --- normal processing ------------------------------------------------------------
    _R("9000", "success", "normal processing"),
    _R(
        "6100",
        "transport",
        "256 or more response bytes are still available (send GET RESPONSE with Le=00)",
    ),
    _R("61xx", "transport", "{n} response bytes are still available (send GET RESPONSE)"),
    # --- warnings, non-volatile memory unchanged (62xx) --------------------------------
    _R("6200", "warning", "warning: no information given (memory unchanged)"),
    _R("6281", "warning", "part of the returned data may be corrupted"),
    _R("6282", "warning", "end of file or record reached before reading Le bytes"),
    _R(
        "6283",
        "warning",
        "selected file deactivated (EMV: the application is blocked)",
        _BLOCKED_APP,
    ),
    _R("6284", "warning", "file control information not formatted according to ISO 7816-4"),
    _R("6285", "warning", "selected file in termination state", _BLOCKED_APP),
    _R("6286", "warning", "no input data available from a sensor on the card"),
    _R("6287", "warning", "at least one of the referenced records is deactivated"),
    _R("62xx", "warning", "warning: memory unchanged (SW2 {sw2}: triggering by the card or RFU)"),
    # --- warnings, non-volatile memory changed (63xx) ----------------------------------
    _R("6300", "warning", "verification failed: no information given (memory changed)"),
    _R("6340", "warning", "unsuccessful comparison"),
    _R("6381", "warning", "file filled up by the last write"),
    _R("63Cx", "warning", "counter is {x} (for VERIFY: {tries} left)"),
    _R("63xx", "warning", "warning: memory changed (SW2 {sw2})"),
    # --- execution errors (64xx, 65xx, 66xx) --------------------------------------------
    _R("6400", "execution_error", "execution error, memory unchanged", _CARD_FAULT),
    _R("6401", "execution_error", "immediate response required by the card"),
    _R("6481", "execution_error", "logical channel shared access denied"),
    _R("6482", "execution_error", "logical channel opening denied"),
    _R("64xx", "execution_error", "execution error, memory unchanged (SW2 {sw2})", _CARD_FAULT),
    _R("6500", "execution_error", "execution error, memory changed", _CARD_FAULT),
    _R("6581", "execution_error", "memory failure", _CARD_FAULT),
    _R("65xx", "execution_error", "execution error, memory changed (SW2 {sw2})", _CARD_FAULT),
    _R("66xx", "execution_error", "security-related issue (SW2 {sw2})"),
    # --- checking errors -----------------------------------------------------------------
    _R("6700", "checking_error", "wrong length (Lc or Le)", _BAD_COMMAND),
    _R("6701", "checking_error", "command APDU format not compliant with ISO 7816-4", _BAD_COMMAND),
    _R("6702", "checking_error", "the value of Lc is not the one expected", _BAD_COMMAND),
    _R("67xx", "checking_error", "wrong length (proprietary qualifier {sw2})", _BAD_COMMAND),
    _R("6800", "checking_error", "function in CLA not supported"),
    _R("6881", "checking_error", "logical channel not supported"),
    _R("6882", "checking_error", "secure messaging not supported"),
    _R("6883", "checking_error", "last command of the chain expected"),
    _R("6884", "checking_error", "command chaining not supported"),
    _R("68xx", "checking_error", "function in CLA not supported (SW2 {sw2})"),
    _R("6900", "checking_error", "command not allowed"),
    _R("6981", "checking_error", "command incompatible with file structure"),
    _R("6982", "checking_error", "security status not satisfied"),
    _R(
        "6983",
        "checking_error",
        "authentication method blocked (EMV: PIN blocked)",
        _PIN_BLOCKED,
    ),
    _R(
        "6984",
        "checking_error",
        "reference data not usable (EMV: referenced data invalidated)",
    ),
    _R("6985", "checking_error", "conditions of use not satisfied"),
    _R("6986", "checking_error", "command not allowed (no current EF)"),
    _R("6987", "checking_error", "expected secure messaging data objects missing"),
    _R("6988", "checking_error", "incorrect secure messaging data objects"),
    _R("6999", "checking_error", "applet selection failed", _ANOTHER_CARD, source="Java Card"),
    _R("69xx", "checking_error", "command not allowed (SW2 {sw2})"),
    _R("6A00", "checking_error", "wrong parameters P1-P2"),
    _R("6A80", "checking_error", "incorrect parameters in the command data field", _BAD_COMMAND),
    _R("6A81", "checking_error", "function not supported"),
    _R("6A82", "checking_error", "file or application not found"),
    _R("6A83", "checking_error", "record not found"),
    _R("6A84", "checking_error", "not enough memory space in the file"),
    _R("6A85", "checking_error", "Lc inconsistent with TLV structure", _BAD_COMMAND),
    _R("6A86", "checking_error", "incorrect parameters P1-P2", _BAD_COMMAND),
    _R("6A87", "checking_error", "Lc inconsistent with parameters P1-P2", _BAD_COMMAND),
    _R("6A88", "checking_error", "referenced data or reference data not found"),
    _R("6A89", "checking_error", "file already exists"),
    _R("6A8A", "checking_error", "DF name already exists"),
    _R("6Axx", "checking_error", "wrong parameters P1-P2 (SW2 {sw2})"),
    _R("6B00", "checking_error", "wrong parameters P1-P2 (offset outside the EF)", _BAD_COMMAND),
    _R("6Bxx", "checking_error", "wrong parameters P1-P2 (proprietary qualifier {sw2})"),
    _R(
        "6C00",
        "transport",
        "wrong Le: 256 bytes are available (re-send the command with Le=00)",
    ),
    _R(
        "6Cxx",
        "transport",
        "wrong Le: {n} bytes are available (re-send the command with Le={sw2})",
    ),
    _R("6D00", "checking_error", "instruction code not supported or invalid", _NOT_PAYMENT),
    _R("6Dxx", "checking_error", "instruction not supported (proprietary qualifier {sw2})"),
    _R("6E00", "checking_error", "class not supported", _NOT_PAYMENT),
    _R("6Exx", "checking_error", "class not supported (proprietary qualifier {sw2})"),
    _R("6F00", "checking_error", "no precise diagnosis (internal card error)", _CARD_FAULT),
    _R("6Fxx", "checking_error", "no precise diagnosis (proprietary qualifier {sw2})", _CARD_FAULT),
    _R("60xx", "unknown", "invalid status word (60 is the T=0 NULL procedure byte)"),
    _R("9xxx", "proprietary", "proprietary status word (meaning defined by the application)"),
    # --- EMV meanings for one command (Book 1 section 12, Book 3 command responses) ------
    _R(
        "6A81",
        "checking_error",
        "card blocked, or SELECT not supported",
        _ANOTHER_CARD,
        ins=_SELECT,
        source="EMV Book 1",
    ),
    _R(
        "6A82",
        "checking_error",
        "application not found on the card",
        "the card does not have this payment application: try another card",
        ins=_SELECT,
        source="EMV Book 1",
    ),
    _R(
        "6283",
        "warning",
        "application blocked (selected file invalidated)",
        _BLOCKED_APP,
        ins=_SELECT,
        source="EMV Book 1",
    ),
    _R(
        "6985",
        "checking_error",
        "conditions of use not satisfied: the card refuses this transaction here",
        "try another application on the card, or insert or swipe the card instead",
        ins=_GPO,
        source="EMV Book 3",
    ),
    _R(
        "6985",
        "checking_error",
        "conditions of use not satisfied: the card declines to compute a cryptogram",
        "try another application on the card, or insert or swipe the card instead",
        ins=_GENERATE_AC,
        source="EMV Book 3",
    ),
    _R(
        "63C0",
        "warning",
        "wrong PIN: no tries left, the PIN is now blocked",
        _PIN_BLOCKED,
        ins=_VERIFY,
        source="EMV Book 3",
    ),
    _R(
        "63Cx",
        "warning",
        "wrong PIN: {tries} left",
        "ask the cardholder to enter the PIN again carefully",
        ins=_VERIFY,
        source="EMV Book 3",
    ),
    _R("6983", "checking_error", "PIN blocked", _PIN_BLOCKED, ins=_VERIFY, source="EMV Book 3"),
    _R(
        "6984",
        "checking_error",
        "PIN blocked (PIN try counter is zero)",
        _PIN_BLOCKED,
        ins=_VERIFY,
        source="EMV Book 3",
    ),
    _R(
        "6A83",
        "checking_error",
        "record not found (end of the directory, or a record the AFL names is missing)",
        ins=_READ_RECORD,
        source="EMV Book 1",
    ),
    _R(
        "6A88",
        "checking_error",
        "data object not found on the card",
        ins=_GET_DATA,
        source="EMV Book 3",
    ),
)

# Context rows first, then the most specific, then table order (sorted() is stable).
_RULES_BY_PRIORITY: Final[tuple[StatusWordRule, ...]] = tuple(
    sorted(STATUS_WORDS, key=lambda rule: (rule.ins is None, -rule.specificity))
)


@dataclass(frozen=True, slots=True)
class StatusWord:
    """A status word with its meaning: what :func:`lookup` returns.

    ``error`` is the exception class :func:`check` raises for it (``None`` for success);
    ``remedy`` is what to try, when there is something to try.
    """

    sw1: int
    sw2: int
    meaning: str
    category: Category
    error: type[StatusWordError] | None
    remedy: str | None = None

    @property
    def sw(self) -> int:
        """SW1 SW2 as one integer, e.g. ``0x6A82``."""
        return (self.sw1 << 8) | self.sw2

    @property
    def hex(self) -> str:
        """SW1 SW2 in upper-case hex, e.g. ``"6A82"``."""
        return f"{self.sw1:02X}{self.sw2:02X}"

    @property
    def ok(self) -> bool:
        """True when the command completed normally."""
        return self.category == "success"

    @property
    def known(self) -> bool:
        """False when the pair is not a valid ISO 7816 status word."""
        return self.category != "unknown"

    def __str__(self) -> str:
        return f"{self.hex}: {self.meaning}"


def _byte(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise LocalProtocolError(f"{name} must be a byte (0-255), got {value!r}")
    return value


def lookup(sw1: int, sw2: int, *, ins: int | None = None) -> StatusWord:
    """Meaning, category and exception class of ``SW1 SW2``; ``ins`` (the instruction byte
    of the command it answers) selects EMV's sharper meaning where there is one.

    Never raises for a byte pair: a pair outside ISO 7816's ranges comes back with category
    ``"unknown"``. Arguments that are not bytes raise
    :class:`~contactless.errors.LocalProtocolError`.

    >>> lookup(0x6C, 0x10).meaning
    'wrong Le: 16 bytes are available (re-send the command with Le=10)'
    """
    _byte("SW1", sw1)
    _byte("SW2", sw2)
    if ins is not None:
        _byte("INS", ins)
    sw = (sw1 << 8) | sw2
    for rule in _RULES_BY_PRIORITY:
        if rule.matches(sw, ins):
            low = sw2 & 0x0F
            meaning = rule.meaning.format(
                n=sw2, x=low, tries=f"{low} try" if low == 1 else f"{low} tries", sw2=f"{sw2:02X}"
            )
            return StatusWord(
                sw1, sw2, meaning, rule.category, _ERROR_FOR_CATEGORY[rule.category], rule.remedy
            )
    # ISO 7816-3: only 6X and 9X are status words; anything else is a broken response.
    return StatusWord(
        sw1,
        sw2,
        f"unknown status word {sw1:02X}{sw2:02X} (SW1 must be 61-6F or 90-9F)",
        "unknown",
        _ERROR_FOR_CATEGORY["unknown"],
    )


def _parse_sw(sw: int | str | bytes | bytearray) -> tuple[int, int]:
    if isinstance(sw, bool):
        raise LocalProtocolError(f"a status word must be int, hex str or bytes, not {sw!r}")
    if isinstance(sw, int):
        if not 0 <= sw <= 0xFFFF:
            raise LocalProtocolError(f"a status word is two bytes (0-0xFFFF), got {sw:#x}")
        return sw >> 8, sw & 0xFF
    if isinstance(sw, str):
        text = sw.replace(" ", "").replace(":", "")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise LocalProtocolError(f"status word {sw!r} is not hex") from None
    elif isinstance(sw, bytes | bytearray):
        raw = bytes(sw)
    else:
        raise LocalProtocolError(
            f"a status word must be int, hex str or bytes, not {type(sw).__name__}"
        )
    if len(raw) != 2:
        raise LocalProtocolError(f"a status word is two bytes, got {len(raw)}: {raw.hex().upper()}")
    return raw[0], raw[1]


def describe(sw: int | str | bytes | bytearray, *, ins: int | None = None) -> str:
    """One line for ``sw`` given as ``0x6A82``, ``"6A82"``/``"6a 82"`` or ``b"\\x6a\\x82"``.

    >>> describe("63 C1", ins=0x20)
    '63C1: wrong PIN: 1 try left'
    """
    sw1, sw2 = _parse_sw(sw)
    return str(lookup(sw1, sw2, ins=ins))


def check(response: Response | bytes | bytearray, command: Command | None = None) -> Response:
    """Return ``response`` (as a :class:`~contactless.apdu.Response`) when it ended with a
    success status word; otherwise raise :class:`~contactless.errors.StatusWordError` naming
    the status word, its meaning, the command (``command.describe()``) and a remedy.

    >>> check(Response(b"", 0x90, 0x00)).ok
    True
    """
    if not isinstance(response, Response):
        if not isinstance(response, bytes | bytearray):
            raise LocalProtocolError(
                f"check() needs a Response or response bytes, not {type(response).__name__}"
            )
        response = Response.from_bytes(response)
    status = lookup(response.sw1, response.sw2, ins=command.ins if command else None)
    if status.error is None:
        return response
    raise status.error(
        status.sw1,
        status.sw2,
        status.meaning,
        command=command.describe() if command is not None else None,
        remedy=status.remedy,
    )


def rules_for(sw: int, *, ins: int | None = None) -> list[StatusWordRule]:
    """Every row that matches ``sw`` (for ``ins``), best first: the first one is what
    :func:`lookup` uses. Handy to see why a status word reads the way it does."""
    return [rule for rule in _RULES_BY_PRIORITY if rule.matches(sw, ins)]
