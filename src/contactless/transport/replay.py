"""``replay:FILE[?match=strict|loose]``: a recorded APDU trace, played back as a reader.

Each command the library sends is checked against the next recorded one and answered with
the recorded response; recorded events come back as the errors a live reader raised
(``card_removed`` -> :class:`~contactless.errors.CardRemoved`, ``timeout`` ->
:class:`~contactless.errors.TransportTimeout`, ``error`` ->
:class:`~contactless.errors.TransportError`).

``match=strict`` (the default): a command must equal the recorded one byte for byte,
except the data a terminal cannot repeat: the unpredictable number (9F37), the transaction
date (9A) and time (9F21), and the amounts (9F02, 9F03) when the terminal settings given
to the transport differ from the recorded ones. Those fields are found by decoding the
PDOL / CDOL / DDOL the card sent earlier in the same trace. ``match=loose``: CLA, INS, P1
and P2 must match; the rest may differ.

The replaying terminal's settings reach the transport one way, whoever runs the flow:
:func:`contactless.read_card` hands its ``config`` to :meth:`ReplayTransport.use_terminal`
once the card is present (``contactless read --reader replay:FILE`` and
``contactless replay FILE`` both go through it). Amounts are volatile exactly when that
config's ``amount`` or ``other_amount`` differ from the header's ``terminal`` values.

In strict mode, recorded entries the flow did not use are a
:class:`~contactless.errors.TraceMismatch` raised when the transport is disconnected
(also when the flow failed with another error: the mismatch then replaces it, since a
flow that stops earlier than the recording is the drift to report).

A mismatch raises :class:`ExchangeMismatch` (a
:class:`~contactless.errors.TraceMismatch`) naming the exchange, both commands, and the
first differing field (a DOL field by its tag name)::

    exchange #3 of visa.jsonl (line 4): Amount, Authorised (Numeric) (9F02) differs:
    sent 000000000250, recorded 000000000100 ...

The message shows commands in hex, except the data of a VERIFY (its PIN block), which is
shown as ``**`` per byte: the exception's ``sent`` and ``recorded`` keep the bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath
from types import TracebackType
from typing import TYPE_CHECKING, Final, NoReturn
from urllib.parse import parse_qsl

from ..apdu import INS_NAMES, Command
from ..errors import (
    CardRemoved,
    ConfigError,
    ContactlessError,
    ExchangeError,
    TraceMismatch,
    TransportError,
    TransportTimeout,
)
from ..hexutil import to_hex
from ..tlv import decode, walk
from ..tlv.dol import parse_dol
from ..trace import Entry, Exchange, Trace, TraceEvent, read_trace
from .base import ReaderIdentity, Transport, describe_apdu

if TYPE_CHECKING:
    from ..emv.terminal import TerminalConfig

__all__ = [
    "ALWAYS_VOLATILE",
    "AMOUNT_TAGS",
    "DOL_COMMANDS",
    "MATCH_MODES",
    "Difference",
    "DolCommand",
    "DolField",
    "ExchangeMismatch",
    "ReplayTransport",
    "dol_fields",
    "first_difference",
]

#: How commands are compared with the recorded ones.
MATCH_MODES: Final = ("strict", "loose")

#: DOL fields that differ on every run of a terminal: never a mismatch.
ALWAYS_VOLATILE: Final[frozenset[bytes]] = frozenset(
    {
        b"\x9f\x37",  # Unpredictable Number
        b"\x9a",  # Transaction Date
        b"\x9f\x21",  # Transaction Time
    }
)
#: Amount fields: volatile when the replaying terminal's amounts differ from the recorded.
AMOUNT_TAGS: Final[frozenset[bytes]] = frozenset({b"\x9f\x02", b"\x9f\x03"})

#: Events that only inform (nothing was sent): skipped when replaying.
_INFORMATIONAL: Final = frozenset({"card_inserted", "reset"})
#: Events that replay as an error, and its class.
_EVENT_ERRORS: Final[dict[str, type[ExchangeError]]] = {
    "card_removed": CardRemoved,
    "timeout": TransportTimeout,
    "error": TransportError,
}
_HEADER_FIELDS: Final = ("CLA", "INS", "P1", "P2")
#: VERIFY: redaction replaces its PIN block (see contactless.trace_redact).
_VERIFY: Final = 0x20


@dataclass(frozen=True, slots=True)
class DolCommand:
    """A command whose data is built from a DOL the card sent: the DOL tags, in the order
    successive commands of this kind use them (first GENERATE AC: CDOL1, second: CDOL2),
    and the template the data is wrapped in, if any (83 for GET PROCESSING OPTIONS)."""

    dols: tuple[bytes, ...]
    template: bytes | None = None


#: INS -> how its data is built (EMV Book 3 6.5, Book 2 6.5, Mastercard UDOL).
DOL_COMMANDS: Final[dict[int, DolCommand]] = {
    0xA8: DolCommand((b"\x9f\x38",), b"\x83"),  # GET PROCESSING OPTIONS: PDOL
    0xAE: DolCommand((b"\x8c", b"\x8d")),  # GENERATE AC: CDOL1, then CDOL2
    0x88: DolCommand((b"\x9f\x49",)),  # INTERNAL AUTHENTICATE: DDOL
    0x2A: DolCommand((b"\x9f\x69",)),  # COMPUTE CRYPTOGRAPHIC CHECKSUM: UDOL
}


@dataclass(frozen=True, slots=True)
class DolField:
    """One DOL field inside a command APDU: its tag, and where its value sits (offset in
    the whole APDU, length)."""

    tag: bytes
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Difference:
    """The first difference between a sent and a recorded command.

    ``field`` is ``"CLA"``/``"INS"``/``"P1"``/``"P2"``/``"Lc"``/``"Le"``, a tag in hex for
    a DOL field, or ``"data"``; ``name`` says it for people; ``offset`` is where the
    difference starts in the APDU.
    """

    field: str
    name: str
    offset: int
    sent: bytes
    recorded: bytes


class ExchangeMismatch(TraceMismatch):
    """A command sent during replay differs from the recorded one (or came after the end
    of the trace). ``index`` is the 1-based exchange number, ``line`` the trace line
    (0: past the end), ``difference`` the first differing field (``None`` past the end)."""

    def __init__(
        self,
        message: str,
        *,
        index: int,
        line: int,
        sent: bytes,
        recorded: bytes | None,
        difference: Difference | None,
        remedy: str | None = None,
    ) -> None:
        self.index = index
        self.line = line
        self.sent = sent
        self.recorded = recorded
        self.difference = difference
        super().__init__(message, remedy=remedy)


_REMEDY: Final = (
    "the library no longer sends what was recorded: if the change is intended, record the "
    "trace again (contactless record, or pytest --apdu-record-mode=all)"
)


# --- where the DOL fields are ---------------------------------------------------------------


def _find_dol(entries: Sequence[Entry], before: int, tag: bytes) -> bytes | None:
    """The value of ``tag`` in the latest recorded answer before entry ``before``."""
    for index in range(before - 1, -1, -1):
        entry = entries[index]
        if not isinstance(entry, Exchange) or len(entry.response) <= 2:
            continue
        for _, node in walk(decode(entry.response[:-2], strict=False)):
            if node.tag_bytes == tag and node.children is None:
                return node.value
    return None


def _data_offset(command: Command) -> int:
    return 7 if command.extended else 5


def dol_fields(entries: Sequence[Entry], index: int) -> list[DolField] | None:
    """Where the DOL fields of the command at ``entries[index]`` are, worked out from the
    DOL the card sent earlier in the trace; ``None`` when the command is not built from a
    DOL, the DOL is not in the trace, or the data does not have the DOL's length."""
    entry = entries[index]
    raw = entry.command
    if raw is None or len(raw) < 5:
        return None
    spec = DOL_COMMANDS.get(raw[1])
    if spec is None:
        return None
    try:
        command = Command.from_bytes(raw)
    except ContactlessError:
        return None
    earlier = sum(
        1
        for e in entries[:index]
        if e.command is not None and len(e.command) > 1 and e.command[1] == raw[1]
    )
    dol = _find_dol(entries, index, spec.dols[min(earlier, len(spec.dols) - 1)])
    if dol is None:
        return None
    start = _data_offset(command)
    data = command.data
    if spec.template is not None:
        nodes = decode(data, strict=False)
        if nodes.error is not None or len(nodes) != 1 or nodes[0].tag_bytes != spec.template:
            return None
        start += len(data) - len(nodes[0].value)
        data = nodes[0].value
    try:
        layout = parse_dol(dol)
    except ContactlessError:
        return None
    if sum(length for _, length in layout) != len(data):
        return None
    fields = []
    for tag, length in layout:
        fields.append(DolField(tag, start, length))
        start += length
    return fields


def _field_name(tag: bytes) -> str:
    from ..tlv.tags import name_of

    return f"{name_of(tag)} ({to_hex(tag)})"


def first_difference(
    sent: bytes,
    recorded: bytes,
    *,
    fields: Sequence[DolField] | None = None,
    volatile: frozenset[bytes] = ALWAYS_VOLATILE,
    loose: bool = False,
) -> Difference | None:
    """The first difference that matters between a sent and a recorded command, or
    ``None`` when they match: DOL ``fields`` whose tag is in ``volatile`` may differ; with
    ``loose`` only CLA INS P1 P2 are compared."""
    for position, name in enumerate(_HEADER_FIELDS):
        a, b = sent[position : position + 1], recorded[position : position + 1]
        if a != b:
            return Difference(name, name, position, a, b)
    if loose or sent == recorded:
        return None
    try:
        mine, theirs = Command.from_bytes(sent), Command.from_bytes(recorded)
    except ContactlessError:
        offset = next(
            (i for i, (a, b) in enumerate(zip(sent, recorded, strict=False)) if a != b),
            min(len(sent), len(recorded)),
        )
        return Difference("data", f"byte {offset}", offset, sent[offset:], recorded[offset:])
    start = _data_offset(theirs)
    if len(mine.data) != len(theirs.data):
        return Difference(
            "Lc",
            f"Lc (data length {len(mine.data)}, recorded {len(theirs.data)})",
            4,
            mine.data,
            theirs.data,
        )
    covered = {field.offset: field for field in fields or ()}
    position = start
    end = start + len(theirs.data)
    while position < end:
        item = covered.get(position)
        if item is not None:
            a = sent[position : position + item.length]
            b = recorded[position : position + item.length]
            if a != b and item.tag not in volatile:
                return Difference(to_hex(item.tag), _field_name(item.tag), position, a, b)
            position += item.length
            continue
        if sent[position] != recorded[position]:
            offset = position - start
            return Difference(
                "data",
                f"data byte {offset}",
                position,
                sent[position : position + 1],
                recorded[position : position + 1],
            )
        position += 1
    if mine.le != theirs.le or mine.extended != theirs.extended:
        return Difference(
            "Le",
            "Le",
            end,
            sent[end:],
            recorded[end:],
        )
    return None


_HIDDEN_BYTE: Final = "**"


def _is_verify(apdu: bytes) -> bool:
    return len(apdu) > 1 and apdu[1] == _VERIFY


def _shown_command(apdu: bytes) -> str:
    """A command in hex for a message; a VERIFY's data (the PIN block) as ``**`` per byte."""
    if not _is_verify(apdu) or len(apdu) <= 5:
        return to_hex(apdu)
    size = min(apdu[4], len(apdu) - 5)
    return to_hex(apdu[:5]) + _HIDDEN_BYTE * size + to_hex(apdu[5 + size :])


def _named(apdu: bytes) -> str:
    # describe_apdu falls back to the whole hex for bytes that do not parse as a command.
    return INS_NAMES.get(_VERIFY, "VERIFY") if _is_verify(apdu) else describe_apdu(apdu)


def _shown_part(part: bytes, apdu: bytes, difference: Difference) -> str:
    """The differing bytes for a message: hidden when they are (or reach into) a VERIFY's
    data; the header fields and Le are shown."""
    hide = _is_verify(apdu) and difference.field not in (*_HEADER_FIELDS, "Le")
    if not part:
        return "-"
    return _HIDDEN_BYTE * len(part) if hide else to_hex(part)


def _ins_name(apdu: bytes) -> str:
    return INS_NAMES.get(apdu[1], f"INS {apdu[1]:02X}") if len(apdu) > 1 else "command"


# --- the transport ----------------------------------------------------------------------------


class ReplayTransport(Transport):
    """A reader that plays a recorded trace back (see the module docstring).

    Options: ``trace`` (an already loaded :class:`~contactless.trace.Trace`; the URI's
    path then only names it), ``match`` (``"strict"``/``"loose"``, overriding the URI's
    query), ``terminal`` (the replaying terminal's settings, as :meth:`use_terminal`) and
    ``check_unused`` (whether recorded entries left over at :meth:`disconnect` raise
    :class:`~contactless.errors.TraceMismatch`; default: in strict mode).
    """

    scheme = "replay"
    # Nothing blocks: answers come from memory, so no watchdog thread is needed.
    enforces_deadline = True

    def __init__(
        self,
        uri: str,
        *,
        timeout: float | None = None,
        trace: Trace | None = None,
        match: str | None = None,
        terminal: TerminalConfig | None = None,
        check_unused: bool | None = None,
    ) -> None:
        super().__init__(uri, timeout=timeout)
        scheme, _, rest = uri.partition(":")
        if scheme.lower() != self.scheme:
            raise ConfigError(f"{uri!r} is not a replay: URI")
        path, query = _split_query(rest)
        options = _parse_query(query, uri)
        self.match = match if match is not None else options.get("match", "strict")
        if self.match not in MATCH_MODES:
            raise ConfigError(
                f"replay match mode {self.match!r} is not one of {', '.join(MATCH_MODES)}"
            )
        if trace is None:
            if not path:
                raise ConfigError(
                    f"reader URI {uri!r} names no trace file",
                    remedy="write replay:PATH/TO/TRACE.jsonl",
                )
            trace = read_trace(path)
        self.trace = trace
        #: How messages name the trace: its file name without the folder, so that a
        #: replay's errors read the same wherever the trace lives.
        self.label = PurePath(trace.source or path or trace.name).name
        self.volatile = self._volatile_fields(terminal)
        self.check_unused = self.match == "strict" if check_unused is None else check_unused
        self.identity = ReaderIdentity(
            vendor="contactless",
            model="trace replay",
            serial=trace.header.reader,
            driver=__name__,
        )
        self._entries = trace.entries
        self._position = 0
        self._exchanges = 0
        self._removed = False
        self._mismatched = False
        self._layouts: dict[int, list[DolField] | None] = {}

    def use_terminal(self, terminal: TerminalConfig) -> None:
        """Compare the coming commands as sent by a terminal with these settings: the
        amounts (9F02, 9F03) become volatile when they differ from the recorded ones.
        :func:`contactless.read_card` calls it with its ``config``."""
        self.volatile = self._volatile_fields(terminal)

    def _volatile_fields(self, terminal: TerminalConfig | None) -> frozenset[bytes]:
        if terminal is None:
            return ALWAYS_VOLATILE
        recorded = self.trace.header.terminal or {}
        same = (
            recorded.get("amount") == terminal.amount
            and recorded.get("other_amount") == terminal.other_amount
        )
        return ALWAYS_VOLATILE if same else ALWAYS_VOLATILE | AMOUNT_TAGS

    # --- lifecycle -------------------------------------------------------------------------

    def _connect(self) -> None:
        self._position = 0
        self._exchanges = 0
        self._removed = False
        self._mismatched = False
        self.atr = self.trace.header.atr
        self.ats = self.trace.header.ats

    def _card_present(self) -> bool:
        return not self._removed

    def _disconnect(self) -> None:
        # A flow that was not run at all (the reader only opened) is not a drift; one that
        # already failed with a mismatch has said what differs.
        if self.check_unused and self._exchanges and not self._mismatched:
            self.check_complete()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, ContactlessError) and not isinstance(exc, TraceMismatch):
            # The base class only logs an error from closing while another is in flight;
            # here the left-over entries are the better report (the flow stopped early).
            self.disconnect()
            return
        super().__exit__(exc_type, exc, tb)

    @property
    def remaining(self) -> list[Entry]:
        """Recorded entries not replayed yet (informational events excluded)."""
        return [entry for entry in self._entries[self._position :] if not _informational(entry)]

    def check_complete(self) -> None:
        """Raise :class:`~contactless.errors.TraceMismatch` if recorded exchanges were not
        replayed (the library now stops earlier than when the trace was recorded)."""
        left = self.remaining
        if not left:
            return
        first = left[0]
        what = _named(first.command) if first.command is not None else first.to_json()
        raise TraceMismatch(
            f"{self.label}: {len(left)} recorded "
            f"{'entry was' if len(left) == 1 else 'entries were'} not replayed, "
            f"starting at {_where(first)}: {what}",
            remedy=_REMEDY,
        )

    # --- exchanges -------------------------------------------------------------------------

    def _transmit(self, apdu: bytes, timeout: float) -> bytes:
        entries = self._entries
        position = self._position
        while position < len(entries) and _informational(entries[position]):
            self._removed = False  # a reset or a card put back: the card is there again
            position += 1
        self._exchanges += 1
        if position >= len(entries):
            self._position = position
            self._mismatched = True
            raise ExchangeMismatch(
                f"exchange #{self._exchanges}: the flow sent {_named(apdu)} "
                f"({_shown_command(apdu)}) after the end of {self.label} "
                f"({len(self.trace.exchanges)} exchange(s) recorded)",
                index=self._exchanges,
                line=0,
                sent=apdu,
                recorded=None,
                difference=None,
                remedy=_REMEDY,
            )
        entry = entries[position]
        self._position = position + 1
        recorded = entry.command
        if recorded is not None and apdu != recorded:
            self._check(apdu, recorded, position, entry)
        if isinstance(entry, Exchange):
            return entry.response
        self._raise_event(entry, apdu)

    def _raise_event(self, entry: TraceEvent, apdu: bytes) -> NoReturn:
        kind: str = entry.kind
        error_type = _EVENT_ERRORS[kind]
        where = f"(replayed from {self.label} {_where(entry)})"
        if kind == "card_removed":
            self._removed = True
            raise CardRemoved(f"card removed during {describe_apdu(apdu)} {where}")
        if kind == "timeout":
            raise TransportTimeout(f"no answer to {describe_apdu(apdu)} {where}")
        message = str(entry.extra.get("message") or "transmission error")
        during = f"during {describe_apdu(apdu)}"
        # A recorded message usually names the command already: say it once.
        if during not in message:
            message = f"{message} {during}"
        raise error_type(f"{message} {where}")

    def _check(self, sent: bytes, recorded: bytes, position: int, entry: Entry) -> None:
        if position not in self._layouts:
            self._layouts[position] = dol_fields(self._entries, position)
        # A redacted trace holds a placeholder PIN block: VERIFY's data may differ (but
        # not its length).
        pin_block = (
            bool(self.trace.header.redacted)
            and recorded[1:2] == bytes((_VERIFY,))
            and len(sent) == len(recorded)
        )
        difference = first_difference(
            sent,
            recorded,
            fields=self._layouts[position],
            volatile=self.volatile,
            loose=self.match == "loose" or pin_block,
        )
        if difference is None:
            return
        self._mismatched = True
        raise ExchangeMismatch(
            f"exchange #{self._exchanges} of {self.label} ({_where(entry)}) does not match "
            f"the recording: {difference.name} differs: "
            f"sent {_shown_part(difference.sent, sent, difference)}, "
            f"recorded {_shown_part(difference.recorded, recorded, difference)}\n"
            f"  sent:     {_shown_command(sent)}  ({_named(sent)})\n"
            f"  recorded: {_shown_command(recorded)}  ({_named(recorded)})",
            index=self._exchanges,
            line=entry.line,
            sent=sent,
            recorded=recorded,
            difference=difference,
            remedy=_REMEDY,
        )


def _where(entry: Entry) -> str:
    return f"line {entry.line}" if entry.line else "an entry built in memory"


def _informational(entry: Entry) -> bool:
    return isinstance(entry, TraceEvent) and entry.kind in _INFORMATIONAL


def _split_query(rest: str) -> tuple[str, str]:
    path, mark, query = rest.rpartition("?")
    if not mark or "=" not in query:
        return rest, ""
    return path, query


def _parse_query(query: str, uri: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key != "match":
            raise ConfigError(
                f"unknown replay option {key!r} in {uri!r}; valid options: match",
                remedy="write replay:FILE?match=strict or replay:FILE?match=loose",
            )
        options[key] = value
    return options
