"""APDU traces: the JSON Lines format, a :class:`Recorder` tracer, reading and writing.

A trace is what a card said to a terminal, one exchange per line, so a read can be
replayed without the card (``replay:FILE``), diffed, and kept as a test vector. The format
(version 1, documented in docs/trace-format.md)::

    {"format": "contactless-trace", "version": 1, "transport": "sim:visa", "redacted": true}
    {"c": "00A404000E325041592E5359532E444446303100", "r": "6F...9000", "ms": 1.2}
    {"event": "card_removed", "c": "00B2011400"}

Only ``format``, ``version``, ``c`` and ``r`` are required, so a trace typed by hand from a
log replays. Reading rejects an unknown major version, bad hex or a missing field with a
:class:`~contactless.errors.ConfigError` naming the line.

Record any transport (or :class:`~contactless.session.Card`) with a :class:`Recorder`::

    recorder = Recorder().attach(reader)
    ...                                   # run the read
    write_trace(recorder.trace(terminal=terminal_header(config)), "visa.jsonl")

Redaction lives in :mod:`contactless.trace_redact`, the pcsc-tools ``scriptor`` format in
:mod:`contactless.trace_scriptor`, replay in :mod:`contactless.transport.replay`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self

from ._version import __version__
from .errors import (
    CardRemoved,
    ConfigError,
    ContactlessError,
    TransportTimeout,
)
from .hexutil import parse_hex, to_hex
from .transport.base import ExchangeEvent, Transport, describe_apdu, describe_response

if TYPE_CHECKING:
    from .emv.terminal import TerminalConfig
    from .session import Card

__all__ = [
    "EVENT_KINDS",
    "FORMAT",
    "VERSION",
    "Entry",
    "Exchange",
    "PinnedRandom",
    "Recorder",
    "Trace",
    "TraceEvent",
    "TraceHeader",
    "check_trace_path",
    "dumps",
    "loads",
    "pin_terminal",
    "read_trace",
    "terminal_from_header",
    "terminal_header",
    "write_trace",
]

#: The value of the header's ``format`` key.
FORMAT: Final = "contactless-trace"
#: The major version this library writes and reads.
VERSION: Final = 1

#: Event kinds, and whether replaying one raises (the error a transport would have raised).
EVENT_KINDS: Final[tuple[str, ...]] = (
    "card_removed",
    "card_inserted",
    "reset",
    "timeout",
    "error",
)

#: Header keys with a meaning of their own (others are kept as they are, in ``extra``).
_HEADER_TEXT_KEYS: Final = ("created", "transport", "reader", "protocol", "library", "note", "flow")
#: Flows a trace may say it recorded (``flow``): a read, or a read with a transaction.
FLOWS: Final = ("read", "transaction")


# --- the data -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exchange:
    """One command and the card's complete raw answer (data + SW1 SW2).

    ``ms`` is the round trip when it was measured; ``line`` is where it was read from
    (0 when built in memory) and is not compared.
    """

    command: bytes
    response: bytes
    ms: float | None = None
    note: str | None = None
    line: int = field(default=0, compare=False)

    @property
    def sw(self) -> int | None:
        """SW1 SW2 as one integer, or ``None`` for an answer shorter than two bytes."""
        if len(self.response) < 2:
            return None
        return (self.response[-2] << 8) | self.response[-1]

    def to_json(self) -> dict[str, Any]:
        """The trace line for this exchange, as a dict."""
        out: dict[str, Any] = {"c": to_hex(self.command), "r": to_hex(self.response)}
        if self.ms is not None:
            out["ms"] = self.ms
        if self.note is not None:
            out["note"] = self.note
        return out

    def __repr__(self) -> str:
        # No bytes: the answer to a READ RECORD holds the PAN, track 2 and cardholder name.
        what = describe_apdu(self.command, show_bytes=False)
        return f"<Exchange {what} -> {describe_response(self.response)}{_entry_details(self)}>"


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """Something that happened instead of (or between) exchanges: the card left or came
    back, the reader reset it, an exchange timed out or failed.

    ``command`` is the APDU that was in flight when the event ended it, if any; ``extra``
    keeps any other keys of the line (``message``, ``type``, ``atr``...).
    """

    kind: str
    command: bytes | None = None
    ms: float | None = None
    note: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    line: int = field(default=0, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The trace line for this event, as a dict."""
        out: dict[str, Any] = {"event": self.kind}
        if self.command is not None:
            out["c"] = to_hex(self.command)
        if self.ms is not None:
            out["ms"] = self.ms
        if self.note is not None:
            out["note"] = self.note
        out.update(self.extra)
        return out

    def __repr__(self) -> str:
        # No bytes, and of the other keys only their names (they come from any trace file).
        during = ""
        if self.command is not None:
            during = f" during {describe_apdu(self.command, show_bytes=False)}"
        extra = f", extra: {', '.join(map(str, self.extra))}" if self.extra else ""
        return f"<TraceEvent {self.kind}{during}{_entry_details(self)}{extra}>"


def _entry_details(entry: Exchange | TraceEvent) -> str:
    """The timing, note and line of an entry, for its repr."""
    details = ""
    if entry.ms is not None:
        details += f", {entry.ms:g} ms"
    if entry.note is not None:
        details += f", note {entry.note!r}"
    if entry.line:
        details += f", line {entry.line}"
    return details


Entry = Exchange | TraceEvent


@dataclass(frozen=True)
class TraceHeader:
    """The first line of a trace. Every field but :attr:`version` is optional.

    ``terminal`` holds the terminal settings the flow ran with, as JSON values (see
    :func:`terminal_header`); ``extra`` keeps keys this version does not know.
    """

    version: int = VERSION
    created: str | None = None
    transport: str | None = None
    reader: str | None = None
    atr: bytes | None = None
    ats: bytes | None = None
    protocol: str | None = None
    terminal: Mapping[str, Any] | None = None
    redacted: bool | None = None
    library: str | None = None
    note: str | None = None
    flow: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The header line, as a dict (``format`` and ``version`` first)."""
        out: dict[str, Any] = {"format": FORMAT, "version": self.version}
        for key in ("created", "library", "transport", "reader", "protocol"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.atr is not None:
            out["atr"] = to_hex(self.atr)
        if self.ats is not None:
            out["ats"] = to_hex(self.ats)
        if self.flow is not None:
            out["flow"] = self.flow
        if self.redacted is not None:
            out["redacted"] = self.redacted
        if self.terminal is not None:
            out["terminal"] = dict(self.terminal)
        if self.note is not None:
            out["note"] = self.note
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class Trace:
    """A header and the exchanges and events in the order they happened.

    ``source`` names where the trace came from (a file name) for messages.
    """

    header: TraceHeader = field(default_factory=TraceHeader)
    entries: tuple[Entry, ...] = ()
    source: str | None = field(default=None, compare=False)

    @property
    def exchanges(self) -> list[Exchange]:
        """The exchanges alone, in order."""
        return [entry for entry in self.entries if isinstance(entry, Exchange)]

    @property
    def name(self) -> str:
        """How messages name this trace: its file name, or ``"trace"``."""
        return self.source or "trace"

    def with_entries(self, entries: Iterable[Entry], **header: Any) -> Trace:
        """A copy with other entries (and header fields replaced by ``header``)."""
        new_header = dataclasses.replace(self.header, **header) if header else self.header
        return Trace(new_header, tuple(entries), self.source)

    def __repr__(self) -> str:
        # No bytes: responses hold card data.
        return (
            f"<Trace {self.name}: {len(self.exchanges)} exchange(s), "
            f"{len(self.entries) - len(self.exchanges)} event(s)>"
        )


# --- reading ------------------------------------------------------------------------------


def _problem(source: str, line: int, message: str) -> ConfigError:
    return ConfigError(
        f"{source}: line {line}: {message}",
        remedy="see docs/trace-format.md for the trace format",
    )


def _hex_field(obj: Mapping[str, Any], key: str, source: str, line: int) -> bytes:
    value = obj[key]
    if not isinstance(value, str):
        raise _problem(source, line, f'"{key}" must be a hex string, got {value!r:.40}')
    try:
        return parse_hex(value, what=f'"{key}"')
    except ContactlessError as error:
        raise _problem(source, line, error.message) from None


def _optional_text(obj: Mapping[str, Any], key: str, source: str, line: int) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise _problem(source, line, f'"{key}" must be text, got {value!r:.40}')
    return value


def _optional_ms(obj: Mapping[str, Any], source: str, line: int) -> float | None:
    value = obj.get("ms")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _problem(source, line, f'"ms" must be a number >= 0, got {value!r:.40}')
    return float(value)


#: A version given as text: ``"1"`` or ``"1.2"`` (major[.minor], ASCII digits).
_VERSION_TEXT: Final = re.compile(r"([0-9]+)(?:\.[0-9]+)?", re.ASCII)


def _major_version(value: object, source: str) -> int:
    """The major version of a header ``version``: the integer ``1``, or the text ``"1"``
    or ``"1.2"`` (major.minor), as docs/trace-format.md says; anything else is rejected."""
    major: object = value
    if isinstance(value, str):
        found = _VERSION_TEXT.fullmatch(value)
        major = int(found.group(1)) if found else None
    if isinstance(major, bool) or not isinstance(major, int):
        raise _problem(
            source,
            1,
            f'"version" must be an integer (or text "MAJOR" / "MAJOR.MINOR"), got {value!r:.40}',
        )
    if major != VERSION:
        raise ConfigError(
            f"{source}: line 1: trace format version {value} is not supported "
            f"(this library reads version {VERSION})",
            remedy="upgrade contactless, or convert the trace",
        )
    return major


def _parse_header(obj: Mapping[str, Any], source: str) -> TraceHeader:
    if obj.get("format") != FORMAT:
        raise _problem(
            source,
            1,
            f'the first line must be the header {{"format": "{FORMAT}", "version": {VERSION}}}'
            + (f", found format {obj['format']!r:.40}" if "format" in obj else ""),
        )
    if "version" not in obj:
        raise _problem(source, 1, 'the header has no "version"')
    version = _major_version(obj["version"], source)
    known = {"format", "version", "atr", "ats", "terminal", "redacted", *_HEADER_TEXT_KEYS}
    texts = {key: _optional_text(obj, key, source, 1) for key in _HEADER_TEXT_KEYS}
    if texts["flow"] is not None and texts["flow"] not in FLOWS:
        raise _problem(source, 1, f'"flow" must be one of {", ".join(FLOWS)}')
    terminal = obj.get("terminal")
    if terminal is not None and not isinstance(terminal, dict):
        raise _problem(source, 1, '"terminal" must be an object')
    redacted = obj.get("redacted")
    if redacted is not None and not isinstance(redacted, bool):
        raise _problem(source, 1, '"redacted" must be true or false')
    return TraceHeader(
        version=version,
        atr=_hex_field(obj, "atr", source, 1) if obj.get("atr") is not None else None,
        ats=_hex_field(obj, "ats", source, 1) if obj.get("ats") is not None else None,
        terminal=terminal,
        redacted=redacted,
        extra={key: value for key, value in obj.items() if key not in known},
        **texts,
    )


def _parse_entry(obj: Mapping[str, Any], source: str, line: int) -> Entry:
    ms = _optional_ms(obj, source, line)
    note = _optional_text(obj, "note", source, line)
    if "event" in obj:
        kind = obj["event"]
        if kind not in EVENT_KINDS:
            raise _problem(
                source, line, f"unknown event {kind!r:.40} (known: {', '.join(EVENT_KINDS)})"
            )
        command = _hex_field(obj, "c", source, line) if obj.get("c") is not None else None
        extra = {k: v for k, v in obj.items() if k not in ("event", "c", "ms", "note")}
        return TraceEvent(kind, command, ms, note, extra, line)
    for key in ("c", "r"):
        if key not in obj:
            raise _problem(
                source, line, f'an exchange needs "c" (command) and "r" (response): no "{key}"'
            )
    command = _hex_field(obj, "c", source, line)
    if len(command) < 4:
        raise _problem(source, line, f'"c" must hold CLA INS P1 P2 at least, got {len(command)}')
    response = _hex_field(obj, "r", source, line)
    if len(response) < 2:
        # Every answer ends with SW1 SW2; a failed exchange is an event, not an answer.
        raise _problem(
            source,
            line,
            f'"r" must hold the answer\'s SW1 SW2 at least (2 bytes), got {len(response)}',
        )
    return Exchange(command, response, ms, note, line)


def _json_lines(text: str, source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue  # a blank line (often the last one) carries nothing
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as error:
            raise _problem(
                source, number, f"not JSON: {error.msg} at column {error.colno}"
            ) from None
        if not isinstance(obj, dict):
            raise _problem(source, number, f"expected a JSON object, got {type(obj).__name__}")
        yield number, obj


def loads(text: str, *, source: str = "trace") -> Trace:
    """Parse a trace from JSON Lines text. ``source`` names it in error messages.

    Raises :class:`~contactless.errors.ConfigError` naming the line for a missing or
    foreign header, an unknown major version, bad hex, a missing ``c``/``r``, or an
    unknown event.
    """
    lines = _json_lines(text, source)
    first = next(lines, None)
    if first is None:
        raise _problem(source, 1, "the trace is empty (no header line)")
    number, obj = first
    if number != 1:
        raise _problem(source, 1, "the header must be the first line")
    header = _parse_header(obj, source)
    entries = tuple(_parse_entry(entry, source, line) for line, entry in lines)
    return Trace(header, entries, source)


def read_trace(path: str | os.PathLike[str]) -> Trace:
    """Read the trace file at ``path`` (see :func:`loads`)."""
    name = os.fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"trace {name}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"trace {name}: is a directory, not a trace file") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"trace {name}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise ConfigError(f"trace {name}: cannot read: {error.strerror}") from None
    return loads(text, source=name)


# --- writing ------------------------------------------------------------------------------


def dumps(trace: Trace) -> str:
    """The trace as JSON Lines text (a header line, then one line per entry)."""
    lines = [json.dumps(trace.header.to_json(), ensure_ascii=False)]
    lines.extend(json.dumps(entry.to_json(), ensure_ascii=False) for entry in trace.entries)
    return "\n".join(lines) + "\n"


def check_trace_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`~pathlib.Path` if a trace can be written there (call it before
    a recording, not to lose a card tap to a mistyped ``-o``); else a
    :class:`~contactless.errors.ConfigError` naming it: a directory, or a folder that does
    not exist (folders are never created: a mistyped path must not grow a tree)."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise ConfigError(
            f"cannot write the trace {target}: it is a directory", remedy="name a file in it"
        )
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a directory"
        raise ConfigError(
            f"cannot write the trace {target}: {folder} {what}",
            remedy="write it into an existing folder (create the folder first)",
        )
    return target


def write_trace(trace: Trace, path: str | os.PathLike[str]) -> None:
    """Write ``trace`` to ``path`` atomically (a reader never sees half a file, and two
    pytest-xdist workers recording the same trace do not interleave).

    Raises :class:`~contactless.errors.ConfigError` naming the path when its folder does
    not exist (it is not created), ``path`` is a directory, or the folder is not writable.
    """
    target = check_trace_path(path)
    folder = target.parent
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.")
    except OSError as error:
        raise ConfigError(
            f"cannot write the trace {target}: {folder}: {error.strerror}",
            remedy="choose a folder you can write to",
        ) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(dumps(trace))
        os.replace(temporary, target)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise ConfigError(f"cannot write the trace {target}: {error.strerror}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- recording ----------------------------------------------------------------------------


#: Errors a tracer sees, as the event a replay turns back into the same error.
_EVENT_FOR_ERROR: Final[tuple[tuple[type[ContactlessError], str], ...]] = (
    (CardRemoved, "card_removed"),
    (TransportTimeout, "timeout"),
)


def _event_for(error: ContactlessError) -> str:
    for error_type, kind in _EVENT_FOR_ERROR:
        if isinstance(error, error_type):
            return kind
    return "error"


class Recorder:
    """A tracer that records every exchange of a transport as trace entries.

    Attach it to a :class:`~contactless.transport.base.Transport` or a
    :class:`~contactless.session.Card` with :meth:`attach` (which also notes the reader's
    ATR, ATS and name for the header), or pass it wherever a tracer is taken: it is
    callable with an :class:`~contactless.transport.base.ExchangeEvent`. Failed exchanges
    become events (``card_removed``, ``timeout``, ``error``) that replay raises again.
    """

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        #: Header fields learnt from the transport by :meth:`attach`.
        self.header: dict[str, Any] = {}
        self._transport: Transport | None = None

    def __call__(self, event: ExchangeEvent) -> None:
        ms = round(event.seconds * 1000, 3)
        if event.error is None and event.response is not None:
            if len(event.response) >= 2:
                self.entries.append(Exchange(event.command, event.response, ms))
                return
            # No SW1 SW2: not an answer a trace can hold (the session rejects it too);
            # kept as a failed exchange, which replay raises as a TransportError.
            self.entries.append(
                TraceEvent(
                    "error",
                    event.command,
                    ms,
                    None,
                    {
                        "type": "RemoteProtocolError",
                        "message": f"the reader returned {len(event.response)} byte(s)",
                        "answer": to_hex(event.response),
                    },
                )
            )
            return
        kind = _event_for(event.error) if event.error is not None else "error"
        extra: dict[str, Any] = {}
        if kind == "error" and event.error is not None:
            extra = {"type": type(event.error).__name__, "message": event.error.message}
        self.entries.append(TraceEvent(kind, event.command, ms, None, extra))

    def attach(self, target: Transport | Card) -> Self:
        """Start recording ``target`` (a transport or a card session) and note what it
        tells about the reader and card. Returns the recorder."""
        from .session import Card

        transport = target.transport if isinstance(target, Card) else target
        self._transport = transport
        transport.add_tracer(self)
        self.note_reader(transport)
        return self

    def detach(self) -> None:
        """Stop recording."""
        if self._transport is not None:
            self._transport.remove_tracer(self)
            self._transport = None

    def note_reader(self, transport: Transport) -> None:
        """Take the header's ``transport``, ``reader``, ``atr``, ``ats`` and ``protocol``
        from ``transport`` as it is now (call it again after a reset)."""
        self.header["transport"] = transport.uri
        name = getattr(transport, "reader", None)
        identity = transport.identity
        if not isinstance(name, str):
            parts = (identity.vendor, identity.model, identity.firmware)
            name = " ".join(part for part in parts if part) or None
        self.header["reader"] = name
        self.header["atr"] = transport.atr
        self.header["ats"] = transport.ats
        protocol = getattr(transport, "protocol", None)
        self.header["protocol"] = protocol if isinstance(protocol, str) else None

    def mark(self, kind: str, *, note: str | None = None, **extra: Any) -> None:
        """Add an event that no exchange shows (``card_inserted``, ``reset`` with the new
        ``atr``...)."""
        if kind not in EVENT_KINDS:
            raise ConfigError(f"unknown trace event {kind!r} (known: {', '.join(EVENT_KINDS)})")
        self.entries.append(TraceEvent(kind, None, None, note, extra))

    def trace(self, **header: Any) -> Trace:
        """The trace recorded so far; ``header`` adds or overrides header fields
        (``terminal=``, ``flow=``, ``note=``, ``redacted=``...)."""
        fields = {
            "created": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "library": f"contactless {__version__}",
            **{key: value for key, value in self.header.items() if value is not None},
            **header,
        }
        return Trace(TraceHeader(**fields), tuple(self.entries))


# --- the terminal's settings in the header -----------------------------------------------


class PinnedRandom:
    """A terminal RNG that always gives the same unpredictable number, so a replayed flow
    sends the recorded commands byte for byte. Asked for another size, it repeats (or
    cuts) the number."""

    def __init__(self, value: bytes) -> None:
        if not value:
            raise ConfigError("a pinned unpredictable number cannot be empty")
        self.value = bytes(value)

    def __call__(self, size: int) -> bytes:
        repeated = self.value * (size // len(self.value) + 1)
        return repeated[:size]

    def __repr__(self) -> str:
        return f"PinnedRandom({to_hex(self.value)})"


class _FixedClock:
    def __init__(self, when: datetime) -> None:
        self.when = when

    def __call__(self) -> datetime:
        return self.when

    def __repr__(self) -> str:
        return f"FixedClock({self.when.isoformat()})"


def pin_terminal(config: TerminalConfig) -> TerminalConfig:
    """``config`` with its clock and RNG replaced by the values they give now: a fixed
    date-time (whole seconds) and a fixed unpredictable number. The pinned config sends
    the same commands every time, and :func:`terminal_header` records both values."""
    when = config.now().replace(microsecond=0)
    number = config.random_bytes(4)
    return dataclasses.replace(config, clock=_FixedClock(when), rng=PinnedRandom(number))


_SKIPPED_FIELDS: Final = frozenset({"clock", "rng", "source"})


def terminal_header(config: TerminalConfig) -> dict[str, Any]:
    """The terminal settings of ``config`` as the header's ``terminal`` object, with
    ``fixed_time`` and ``unpredictable_number`` from its clock and RNG (pin it first with
    :func:`pin_terminal`, or the values recorded are not the ones the flow used)."""
    out: dict[str, Any] = {}
    for item in dataclasses.fields(config):
        if item.name in _SKIPPED_FIELDS:
            continue
        value = getattr(config, item.name)
        if item.name == "supported_aids":
            out[item.name] = [
                {"aid": to_hex(entry.aid), "partial": entry.partial, "label": entry.label}
                for entry in value
            ]
        elif item.name == "extra_data":
            out[item.name] = {to_hex(tag): to_hex(data) for tag, data in value.items()}
        elif isinstance(value, bytes):
            out[item.name] = to_hex(value)
        else:
            out[item.name] = value
    out["fixed_time"] = config.now().isoformat()
    rng = config.rng
    number = rng.value if isinstance(rng, PinnedRandom) else config.random_bytes(4)
    out["unpredictable_number"] = to_hex(number)
    return out


def terminal_from_header(
    terminal: Mapping[str, Any] | None, *, source: str = "trace"
) -> TerminalConfig:
    """The pinned :class:`~contactless.emv.terminal.TerminalConfig` a trace header's
    ``terminal`` object describes (defaults for what it leaves out). Without ``fixed_time``
    or ``unpredictable_number`` the clock and RNG stay live: replay then treats the date,
    time and unpredictable number as volatile anyway.

    Raises :class:`~contactless.errors.ConfigError` naming the key for a bad value.
    """
    from .emv.terminal import SupportedAid, TerminalConfig

    if not terminal:
        return TerminalConfig()
    defaults = TerminalConfig()
    settings: dict[str, Any] = {}

    def bad(key: str, problem: str) -> ConfigError:
        return _problem(source, 1, f'terminal "{key}": {problem}')

    def hex_value(key: str, value: object) -> bytes:
        if not isinstance(value, str):
            raise bad(key, f"expected hex text, got {value!r:.40}")
        try:
            return parse_hex(value, what="the value")
        except ContactlessError as error:
            raise bad(key, error.message) from None

    known = {item.name for item in dataclasses.fields(defaults)} - _SKIPPED_FIELDS
    for key, value in terminal.items():
        if key == "fixed_time":
            if not isinstance(value, str):
                raise bad(key, f"expected an ISO date-time, got {value!r:.40}")
            try:
                settings["clock"] = _FixedClock(datetime.fromisoformat(value))
            except ValueError:
                raise bad(key, f"{value!r:.40} is not an ISO date-time") from None
        elif key == "unpredictable_number":
            settings["rng"] = PinnedRandom(hex_value(key, value))
        elif key == "supported_aids":
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise bad(key, "expected a list of {aid, partial, label} objects")
            settings[key] = tuple(
                SupportedAid(
                    hex_value(key, entry.get("aid")),
                    bool(entry.get("partial", True)),
                    str(entry.get("label", "")),
                )
                for entry in value
            )
        elif key == "extra_data":
            if not isinstance(value, dict):
                raise bad(key, "expected an object of tag: hex value")
            settings[key] = {
                hex_value(key, tag): hex_value(key, data) for tag, data in value.items()
            }
        elif key in known:
            default = getattr(defaults, key)
            if isinstance(default, bytes):
                settings[key] = hex_value(key, value)
            elif isinstance(default, bool) or type(value) is not type(default):
                raise bad(key, f"expected {type(default).__name__}, got {value!r:.40}")
            else:
                settings[key] = value
        else:
            raise bad(key, f"unknown setting (known: {', '.join(sorted(known))})")
    try:
        return TerminalConfig(**settings)
    except ConfigError as error:
        raise _problem(source, 1, f"terminal: {error.message}") from None
