"""The pcsc-tools ``scriptor`` formats, in and out of traces.

``scriptor`` (pcsc-tools, /usr/bin/scriptor) reads a **script**, one command per line::

    # a comment (only at the start of a line)
    reset
    00 A4 04 00 0E 32 50 41 59 2E 53 59 53 2E 44 44 46 30 31 00
    00A4040007A000000003101000          (no spaces: scriptor splits it into bytes)
    80 A8 00 00 \\                        (a trailing backslash continues the command)
    02 83 00 00
    exit

Its quirks, kept here: ``exit`` anywhere in a line (even a comment) ends the script, and
``reset`` anywhere in a non-comment line resets the card. It prints a **log**::

    Using T=1 protocol
    > RESET
    < OK: 3B 8C 80 01 ...
    > 00 A4 04 00 0E 32 50 41 59 2E 53 59 53 2E 44 44 46 30 31 00
    < 6F 4D 84 0E 32 50 41 59 2E 53 59 53 2E 44 44 46 30 31 A5 3B
    BF 0C ... 90 00 : Normal processing.

(answers wrap after every 16 bytes; the status word's meaning comes from
``Chipcard::PCSC::Card::ISO7816Error``; when reading a script file, each script line is
echoed before its ``>`` line). A log converts to a trace directly; a script has no
answers, so importing one runs it on a reader (:func:`run_script`).

Exports hide card data unless asked (``show_sensitive``): a script's answers are comments,
so they are masked text; a log must stay hex, so it is redacted (:func:`export_log`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Final

from .errors import ConfigError, ContactlessError
from .hexutil import parse_hex
from .masking import MASK, mask_value
from .tlv import decode, walk
from .tlv.tags import sensitive_tags
from .trace import Entry, Exchange, Recorder, Trace, TraceEvent, TraceHeader
from .trace_redact import redact, redact_pin_block
from .transport.base import Transport, describe_apdu

__all__ = [
    "ScriptStep",
    "export_log",
    "export_script",
    "is_log",
    "log_to_trace",
    "parse_script",
    "run_script",
    "scriptor_meaning",
]

_BYTES_PER_LINE: Final = 16

#: ``ISO7816Error`` of Chipcard::PCSC::Card, as data: SW1 -> (text, {SW2: text added}).
#: Rows for one whole status word come after, and win, as in the Perl code's order.
_SW1_TEXT: Final[dict[int, tuple[str, dict[int, str]]]] = {
    0x62: (
        "State of non-volatile memory unchanged. ",
        {
            0x00: "No information given.",
            0x81: "Part of returned data my be corrupted.",
            0x82: "End of file/record reached before reading Le bytes.",
            0x83: "Selected file invalidated.",
            0x84: "FCI not formated according to 5.1.5.",
        },
    ),
    0x63: (
        "State of non-volatile memory changed. ",
        {0x00: "No information given.", 0x81: "File filled up by the last write."},
    ),
    0x65: ("State of non-volatile memory changed. ", {0x81: "Memory failure."}),
    0x68: (
        "Functions in CLA not supported. ",
        {0x81: "Logical channel not supported.", 0x82: "Secure messaging not supported."},
    ),
    0x69: (
        "Command not allowed. ",
        {
            0x81: "Command incompatible with file structure.",
            0x82: "Security status not satisfied.",
            0x83: "Authentication method blocked.",
            0x84: "Referenced data invalidated.",
            0x85: "Conditions of use not satisfied.",
            0x86: "Command not allowed (no current EF).",
            0x87: "Expected SM data objects missing.",
            0x88: "SM data objects incorrect.",
        },
    ),
    0x6A: (
        "Wrong parameter(s) P1-P2. ",
        {
            0x80: "Incorrect parameters in the data field.",
            0x81: "Function not supported.",
            0x82: "File not found.",
            0x83: "Record not found.",
            0x84: "Not enough memory space in the file.",
            0x85: "Lc inconsistent with TLV structure.",
            0x86: "Incorrect parameters P1-P2.",
            0x87: "Lc inconsistent with P1-P2.",
            0x88: "Referenced data not found.",
        },
    ),
}
_SW_TEXT: Final[dict[int, str]] = {
    0x9000: "Normal processing.",
    0x6400: "State of non-volatile memory unchanged.",
    0x6700: "Wrong length.",
    0x6B00: "Wrong parameter(s) P1-P2.",
    0x6D00: "Instruction code not supported or invalid.",
    0x6E00: "Class not supported.",
    0x6F00: "No precise diagnosis.",
}
_UNDEFINED: Final = "Error not defined by ISO 7816"


def scriptor_meaning(sw1: int, sw2: int) -> str:
    """The text scriptor prints after a status word (``Normal processing.`` for 9000)."""
    if sw1 == 0x61:
        return f"0x{sw2:02X} bytes of response still available."
    if sw1 == 0x6C:
        return f"Wrong length Le: should be 0x{sw2:02X}"
    if sw1 == 0x66:
        return "Reserved for security-related issues."
    whole = _SW_TEXT.get((sw1 << 8) | sw2)
    if whole is not None:
        return whole
    if sw1 in _SW1_TEXT:
        text, details = _SW1_TEXT[sw1]
        if sw1 == 0x63 and sw2 >> 4 == 0xC:
            return f"{text}Counter: 0x{sw2 & 0x0F:X}"
        return text + details.get(sw2, "")
    return _UNDEFINED


def _spaced(data: bytes) -> str:
    return " ".join(f"{byte:02X}" for byte in data)


# --- scripts --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScriptStep:
    """One step of a scriptor script: ``"apdu"`` with its command, or ``"reset"``."""

    kind: str
    command: bytes | None
    line: int


_EXIT = re.compile("exit", re.IGNORECASE)
_RESET = re.compile("reset", re.IGNORECASE)


def parse_script(text: str, *, source: str = "script") -> list[ScriptStep]:
    """The steps of a scriptor script, following scriptor's own rules (see the module
    docstring). Bad hex raises :class:`~contactless.errors.ConfigError` naming the line."""
    steps: list[ScriptStep] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if _EXIT.search(raw):
            break
        if not raw.strip() or raw.startswith("#"):
            continue
        if _RESET.search(raw):
            steps.append(ScriptStep("reset", None, number))
            continue
        line = raw.rstrip("\r\n")
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        pending += line
        try:
            command = parse_hex(pending, what="the command")
        except ContactlessError as error:
            raise ConfigError(f"{source}: line {start}: {error.message}") from None
        pending = ""
        if len(command) < 4:
            raise ConfigError(
                f"{source}: line {start}: a command needs CLA INS P1 P2, got {len(command)} byte(s)"
            )
        steps.append(ScriptStep("apdu", command, start))
    if pending:
        raise ConfigError(f"{source}: line {start}: the last command ends with a backslash")
    return steps


def run_script(steps: list[ScriptStep], transport: Transport) -> Trace:
    """Send a script's commands through ``transport`` (connected, card present) as
    scriptor does (raw, no GET RESPONSE handling) and return the recorded trace. ``reset``
    reconnects the reader. An exchange that fails ends the run, recorded as an event."""
    recorder = Recorder().attach(transport)
    try:
        for step in steps:
            if step.kind == "reset":
                transport.disconnect()
                transport.connect()
                recorder.mark(
                    "reset", **({"atr": transport.atr.hex().upper()} if transport.atr else {})
                )
                continue
            assert step.command is not None
            try:
                transport.transmit(step.command)
            except ContactlessError:
                break  # the recorder has the event; scriptor stops here too
    finally:
        recorder.detach()
    return recorder.trace()


def export_script(trace: Trace, *, show_sensitive: bool = False) -> str:
    """The trace's commands as a scriptor script, each recorded answer in a comment.

    The commands are written as recorded, so the script sends the card what the trace
    did, except that unless ``show_sensitive`` a command carrying a PIN block (VERIFY,
    CHANGE REFERENCE DATA) is left out (in a comment) and the answers' card data is
    masked: each answer is shown as :func:`~contactless.trace_redact.redact` rewrites it
    (names replaced by a fixed placeholder, so no length gives the name away in an answer
    that decodes; other sensitive data zeroed), with every value the tag dictionary marks
    sensitive written as ``*`` (a PAN keeps its first 6 and last 4 digits, Track 2 its
    expiry date and service code). Comments may hold any text, so the masked answers need
    not be hex.
    """
    shown = trace if show_sensitive else redact(trace)[0]
    lines = [
        f"# {_safe(PurePath(trace.name).name)}: {len(trace.exchanges)} exchange(s) "
        "for scriptor (pcsc-tools)",
        "# the recorded answer follows each command as a comment",
    ]
    if not show_sensitive:
        lines.append(_MASKED_SCRIPT_NOTE)
    for entry, shown_entry in zip(trace.entries, shown.entries, strict=True):
        if isinstance(entry, Exchange):
            lines.append(f"# {_safe(describe_apdu(entry.command))}")
            if show_sensitive or redact_pin_block(entry.command) == entry.command:
                lines.append(_spaced(entry.command))
            else:
                lines.append(_LEFT_OUT_VERIFY)
            answer = shown_entry.response if isinstance(shown_entry, Exchange) else b""
            if len(answer) >= 2:
                meaning = scriptor_meaning(answer[-2], answer[-1])
                text = _spaced(answer) if show_sensitive else _masked_spaced(answer)
                lines.append(f"# answer: {text} : {_safe(meaning)}")
        elif entry.kind == "reset":
            lines.append("reset")
        else:
            lines.append(f"# recorded event here: {entry.kind.replace('_', ' ')}")
    return "\n".join(lines) + "\n"


def _safe(text: str) -> str:
    """Comment text scriptor will not act on: it stops at "exit" anywhere in a line."""
    return _EXIT.sub("ex_it", text)


# --- card data ----------------------------------------------------------------------------------

_MASKED_SCRIPT_NOTE: Final = (
    "# card data in the answers is masked (names by a placeholder, so answer lengths may "
    "differ from the card's); --show-pan writes it in full"
)
# Sending a placeholder PIN instead would count as a wrong PIN on a real card (and block
# its PIN after a few runs), so the command is left out rather than rewritten.
_LEFT_OUT_VERIFY: Final = "# (command left out: its data is a PIN block; --show-pan writes it)"
#: The comment that opens a redacted log. Importing the log does not trust it (anyone can
#: write this line above real data): the imported trace is redacted again unless asked not to.
_REDACTED_LOG_NOTE: Final = (
    "# card data redacted: PANs replaced by test PANs (first 6 and last 4 digits kept), "
    "names by a placeholder, discretionary and other sensitive data zeroed"
)
#: Tags whose masking.mask_value text is the value's hex with some digits masked (the same
#: length once the F padding it drops is put back), so it can stand in an answer's hex.
_MASKED_AS_HEX: Final = frozenset({"5A", "57", "9F6B", "9F20"})


def _masked_spaced(answer: bytes) -> str:
    """An answer (already redacted) in scriptor's spaced hex, each sensitive value's
    digits as ``*`` (a PAN keeps its first 6 and last 4 digits)."""
    digits = list(answer.hex().upper())
    for _, node in walk(decode(answer[:-2], strict=False)):
        if node.children is not None or node.tag_hex not in sensitive_tags():
            continue
        start = 2 * (node.offset + len(node.tag_bytes) + node.length_form)
        plain = node.value.hex().upper()
        masked = MASK * len(plain)
        if node.tag_hex in _MASKED_AS_HEX:
            shown = mask_value(node.tag_hex, node.value)
            padding = plain[len(shown) :]
            if len(shown) <= len(plain) and not padding.strip("F"):
                masked = shown + padding
        digits[start : start + len(plain)] = masked
    return " ".join("".join(digits[i : i + 2]) for i in range(0, len(digits), 2))


# --- logs -------------------------------------------------------------------------------------


def is_log(text: str) -> bool:
    """Whether ``text`` is scriptor output (``>`` / ``<`` lines) rather than a script."""
    return any(line.startswith(("> ", "< ")) for line in text.splitlines())


_PROTOCOL = re.compile(r"^Using (T=[01]) protocol")
#: pcsc-lite error texts scriptor prints when a transmit fails, as trace events.
_FAILURE_EVENTS: Final = (("removed", "card_removed"), ("timeout", "timeout"))


def _response_lines(lines: Iterator[tuple[int, str]], first: str, number: int) -> tuple[bytes, int]:
    text = first
    while " : " not in text and not text.rstrip().endswith(":"):
        following = next(lines, None)
        if following is None:
            break
        text += " " + following[1]
    hex_part = text.split(" : ", 1)[0]
    return parse_hex(hex_part, what="the answer"), number


def log_to_trace(text: str, *, source: str = "scriptor log") -> Trace:
    """A trace from scriptor's output: ``>`` commands, ``<`` answers (over several lines),
    ``> RESET`` / ``< OK: ATR`` as reset events, ``Can't get info:`` as a failure event.
    Echoed script lines and other text are skipped."""
    entries: list[Entry] = []
    protocol: str | None = None
    atr: bytes | None = None
    command: tuple[bytes, int] | None = None
    lines = iter(enumerate(text.splitlines(), 1))
    for number, line in lines:
        found = _PROTOCOL.match(line)
        if found:
            protocol = found.group(1)
            continue
        try:
            if line.startswith("> RESET"):
                command = None
                continue
            if line.startswith("< OK:") or line.startswith("< KO:"):
                reset_atr = parse_hex(line[5:], what="the ATR") if line.startswith("< OK") else None
                atr = atr or reset_atr
                extra = {"atr": reset_atr.hex().upper()} if reset_atr else {}
                entries.append(TraceEvent("reset", None, None, None, extra, number))
                continue
            if line.startswith("> "):
                command = (parse_hex(line[2:], what="the command"), number)
                continue
            if line.startswith("< "):
                if command is None:
                    raise ConfigError(f"{source}: line {number}: an answer without a command")
                response, _ = _response_lines(lines, line[2:], number)
                if len(response) < 2:
                    raise ConfigError(
                        f"{source}: line {number}: the answer holds {len(response)} byte(s); "
                        "it must end with SW1 SW2 (2 bytes at least)",
                        remedy="copy the whole answer line of scriptor's output",
                    )
                entries.append(Exchange(command[0], response, None, None, command[1]))
                command = None
                continue
        except ConfigError:
            raise
        except ContactlessError as error:
            raise ConfigError(f"{source}: line {number}: {error.message}") from None
        if line.startswith("Can't get info:") and command is not None:
            message = line.partition(":")[2].strip()
            kind = next((k for word, k in _FAILURE_EVENTS if word in message.lower()), "error")
            extra = {"message": message} if kind == "error" else {}
            entries.append(TraceEvent(kind, command[0], None, None, extra, number))
            command = None
    if not entries:
        raise ConfigError(f"{source}: no exchanges found (expected '> ' and '< ' lines)")
    header = TraceHeader(protocol=protocol, atr=atr, note=f"imported from scriptor output {source}")
    return Trace(header, tuple(entries), source)


def export_log(trace: Trace, *, show_sensitive: bool = False) -> str:
    """The trace as scriptor would have printed it (as when reading commands from stdin).

    Unless ``show_sensitive``, the card data is redacted first. A log must stay hex (it is
    read back by :func:`log_to_trace`, and ``*`` is no byte), so masking with ``*`` is not
    an option: the trace is rewritten by :func:`~contactless.trace_redact.redact` (a test
    PAN of the same length that keeps the first 6 and last 4 digits, a placeholder name
    with the lengths re-encoded, zeroed discretionary data and other sensitive values, a
    placeholder PIN block); the log then stays consistent and replayable once imported.
    When that changed anything, a comment line after the protocol line says so (scriptor
    echoes a script's comments into its log the same way).
    """
    source = trace if show_sensitive else redact(trace)[0]
    # pcsc: names the protocol "T1"; scriptor says "T=1".
    protocol = (source.header.protocol or "").replace("=", "").upper()
    if protocol in ("T0", "T1"):
        lines = [f"Using T={protocol[1]} protocol"]
    else:
        lines = ["Using an unknown protocol (not T=0 or T=1)"]
    if source.entries != trace.entries:
        lines.append(_REDACTED_LOG_NOTE)
    for entry in source.entries:
        if isinstance(entry, Exchange):
            lines.append(f"> {_spaced(entry.command)}")
            response = entry.response
            if len(response) >= 2:
                meaning = scriptor_meaning(response[-2], response[-1])
            else:
                meaning = f"wrong SW size for: {_spaced(response)}"
            lines.append(f"< {_wrapped(response)} : {meaning}")
        elif entry.kind == "reset":
            atr = entry.extra.get("atr")
            lines.append("> RESET")
            lines.append(f"< OK: {_spaced(bytes.fromhex(atr))} " if atr else "< OK: ")
        elif entry.kind in ("card_removed", "timeout", "error"):
            if entry.command is not None:
                lines.append(f"> {_spaced(entry.command)}")
            message = {
                "card_removed": "Card was removed.",
                "timeout": "Command timeout.",
            }.get(entry.kind) or str(entry.extra.get("message", "Transaction failed."))
            lines.append(f"Can't get info: {message}")
            break  # scriptor dies on a failed transmit
    return "\n".join(lines) + "\n"


def _wrapped(data: bytes) -> str:
    # scriptor: s/((.. ){16})/$1\n/g on "XX XX ... XX" (no space after the last byte), so
    # a newline follows every 16th byte that is not the last one.
    text = _spaced(data)
    step = _BYTES_PER_LINE * 3
    parts = []
    while len(text) > step - 1 and text[step - 1 : step] == " ":
        parts.append(text[:step])
        text = text[step:]
    parts.append(text)
    return "\n".join(parts)
