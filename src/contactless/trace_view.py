"""Traces for people: the ``trace show`` listing and readable differences (hex with a
caret, the first differing data object by tag name), card data masked unless asked.

Used by ``contactless trace show``, the pytest plugin's failure reports and
``pytest_assertrepr_compare``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from . import sw
from .apdu import Command, Response
from .errors import ContactlessError
from .hexutil import to_hex
from .masking import mask_name, mask_pan
from .tlv import Tlv, decode, encode, walk
from .tlv.bitfields import Track2
from .tlv.format import NAME_TAGS, is_sensitive
from .tlv.tags import name_of, sensitive_tags
from .tlv_view import (
    HIDDEN_BYTE,
    MaskedBytes,
    decode_problem,
    mask_bytes,
    name_exposure,
    plain_bytes,
    tree_lines,
)
from .trace import Entry, Exchange, Trace, TraceEvent
from .trace_redact import answer_chains, pin_block_size
from .transport.base import ExchangeEvent, describe_response

if TYPE_CHECKING:
    from .emv.card import CardData, ResponseData
    from .transport.replay import DolField

__all__ = [
    "explain",
    "hex_diff",
    "masked_hex",
    "mismatch_lines",
    "show_lines",
    "tlv_difference",
]

#: Why a T=0 length announcement (SW2 of 61xx/6Cxx, Le of the command after it) is hidden.
_ANNOUNCED_LENGTH_HIDDEN = (
    "length announcement hidden (the answer holds a cardholder name or undecoded data, "
    "and its length would give the name's away)"
)


def masked_hex(data: bytes, *, show_sensitive: bool = False) -> str:
    """``data`` in hex, the bytes of a PAN, track data or other sensitive value as ``**``,
    a cardholder name as one fixed-length mask and the length fields that would tell its
    length as ``**`` (:func:`~contactless.tlv_view.mask_bytes`)."""
    if show_sensitive:
        return to_hex(data)
    return mask_bytes(data).text


def _masked_answer(response: bytes) -> MaskedBytes:
    """An answer (data, then SW1 SW2) with card data masked; data that does not decode is
    hidden, as it may hold anything."""
    if len(response) < 2:
        return mask_bytes(response, undecoded_hidden=True)
    return mask_bytes(response[:-2], undecoded_hidden=True) + plain_bytes(response[-2:])


def _aid_in(data: bytes) -> bytes | None:
    for _, node in walk(decode(data, strict=False)):
        if node.tag_bytes in (b"\x84", b"\x4f") and node.children is None:
            return node.value
    return None


@dataclass(frozen=True, slots=True)
class _AnswerView:
    """How one exchange's answer is shown in a listing. A T=0 answer comes in several
    exchanges (:func:`~contactless.trace_redact.answer_chains`), so it is masked whole
    and each exchange shows its part."""

    #: The answer's part of the data, then its status word.
    response: MaskedBytes
    #: The data to print as a tree here (the whole answer's, at its last part), if any.
    tree: bytes | None = None
    #: This part of the answer is not its last: the tree comes with a later exchange.
    continued: bool = False
    #: The answer's length must not show: hide the SW2 of 61xx/6Cxx announcing it and
    #: the Le of the command that asked for it.
    sw2_hidden: bool = False
    le_hidden: bool = False


def _answer_views(entries: Sequence[Entry], show_sensitive: bool) -> dict[int, _AnswerView]:
    views: dict[int, _AnswerView] = {}
    for chain in answer_chains(entries):
        data = chain.data(entries)
        masked = plain_bytes(data) if show_sensitive else mask_bytes(data, undecoded_hidden=True)
        hide = masked.length_hidden
        carrying = [k for k, carries in enumerate(chain.carries) if carries]
        offset = 0
        for k, index in enumerate(chain.indexes):
            entry = entries[index]
            assert isinstance(entry, Exchange)
            response = entry.response
            size = len(response) - 2 if chain.carries[k] else 0
            part = MaskedBytes(masked.tokens[offset : offset + size])
            offset += size
            announces = k + 1 < len(chain.indexes)
            status = MaskedBytes(
                (
                    f"{response[-2]:02X}",
                    HIDDEN_BYTE if hide and announces else f"{response[-1]:02X}",
                )
            )
            last_part = bool(carrying) and k == carrying[-1]
            views[index] = _AnswerView(
                part + status,
                tree=data if last_part and data else None,
                continued=size > 0 and not last_part,
                sw2_hidden=hide and announces,
                le_hidden=hide and k > 0,
            )
    return views


def _tlv_text(data: bytes, aid: bytes | None, show_sensitive: bool) -> list[str]:
    nodes = decode(data, strict=False)
    lines = tree_lines(nodes, aid, show_sensitive=show_sensitive, undecoded_hidden=True)
    if nodes.error is not None:
        problem = (
            str(nodes.error) if show_sensitive else decode_problem(nodes, undecoded_hidden=True)
        )
        lines.append(f"(not valid TLV: {problem})")
    return lines


def _dol_fields(entries: Sequence[Entry], index: int) -> list[DolField]:
    from .transport.replay import dol_fields

    return dol_fields(entries, index) or []


def _dol_text(command: bytes, fields: list[DolField], show_sensitive: bool) -> list[str]:
    lines = []
    for item in fields:
        value = command[item.offset : item.offset + item.length]
        shown = to_hex(value)
        if not show_sensitive and to_hex(item.tag) in sensitive_tags():
            shown = HIDDEN_BYTE * len(value)  # e.g. PIN data (99) asked for by a DOL
        lines.append(f"{to_hex(item.tag):<6} {name_of(item.tag)}  {shown}")
    return lines


def _entry_lines(
    entries: Sequence[Entry],
    index: int,
    aid: bytes | None,
    show_sensitive: bool,
    view: _AnswerView | None,
) -> list[str]:
    entry = entries[index]
    where = f"line {entry.line}" if entry.line else f"entry {index + 1}"
    timing = f", {entry.ms:g} ms" if entry.ms is not None else ""
    if isinstance(entry, TraceEvent):
        head = f"[{where}{timing}] event: {entry.kind}"
        lines = [head]
        if entry.command is not None:
            shown = _command_hex(entry.command, [], show_sensitive)
            lines.append(f"  > {shown}  ({_describe(entry.command)})")
        lines += [f"  {key}: {value}" for key, value in entry.extra.items()]
        return lines
    if view is None:  # an answer without a status word
        masked = plain_bytes(entry.response) if show_sensitive else _masked_answer(entry.response)
        view = _AnswerView(masked)
    fields = _dol_fields(entries, index)
    lines = [f"[{where}{timing}] {_describe(entry.command)}"]
    lines.append(f"  > {_command_hex(entry.command, fields, show_sensitive, view.le_hidden)}")
    lines += [f"      {line}" for line in _dol_text(entry.command, fields, show_sensitive)]
    response = entry.response
    lines.append(f"  < {view.response.text or '(nothing)'}")
    if view.tree is not None:
        lines += [f"      {line}" for line in _tlv_text(view.tree, aid, show_sensitive)]
    elif view.continued:
        lines.append("      (the answer continues in the next exchange)")
    if view.sw2_hidden:
        lines.append(f"    SW {response[-2]:02X}{HIDDEN_BYTE}: {_ANNOUNCED_LENGTH_HIDDEN}")
    elif len(response) >= 2:
        ins = entry.command[1] if len(entry.command) > 1 else None
        lines.append(f"    SW {sw.describe(response[-2:], ins=ins)}")
    if entry.note:
        lines.append(f"    note: {entry.note}")
    return lines


def _command_hex(
    command: bytes, fields: list[DolField], show_sensitive: bool, le_hidden: bool = False
) -> str:
    """A command in hex; unless asked for, the PIN block of a VERIFY or CHANGE REFERENCE
    DATA (apdu.PIN_DATA_INS) and the sensitive DOL fields masked, and the Le hidden when it
    repeats a hidden length."""
    tokens = [f"{byte:02X}" for byte in command]
    if not show_sensitive:
        size = pin_block_size(command)
        tokens[5 : 5 + size] = [HIDDEN_BYTE] * size
        for item in fields:
            if to_hex(item.tag) in sensitive_tags():
                end = item.offset + item.length
                tokens[item.offset : end] = [HIDDEN_BYTE] * len(tokens[item.offset : end])
        if le_hidden and len(command) >= 5:
            tokens[-1] = HIDDEN_BYTE
    return "".join(tokens)


def _describe(command: bytes) -> str:
    try:
        return Command.from_bytes(command).describe()
    except ContactlessError:
        return f"command {to_hex(command)}"


def show_lines(trace: Trace, *, show_sensitive: bool = False) -> list[str]:
    """The ``contactless trace show`` listing: the header, then each exchange with its
    command described, DOL fields named, the answer's TLV tree and the status word's
    meaning.

    Card data is masked unless ``show_sensitive``: every value the tag dictionary marks
    sensitive for any scheme, a cardholder name's length with it (its length fields and
    those of the templates holding it, and for a T=0 answer the SW2 and Le that announced
    its length), and the data of an answer that does not decode (it may hold anything).
    """
    header = trace.header
    lines = [
        f"{trace.name}: contactless trace v{header.version}, "
        f"{len(trace.exchanges)} exchange(s), "
        f"{len(trace.entries) - len(trace.exchanges)} event(s)"
        + (
            ", redacted"
            if header.redacted
            else ", NOT redacted"
            if header.redacted is False
            else ""
        )
    ]
    for key in ("created", "library", "transport", "reader", "protocol", "flow", "note"):
        value = getattr(header, key)
        if value is not None:
            lines.append(f"  {key}: {value}")
    if header.atr is not None:
        lines.append(f"  atr: {to_hex(header.atr)}")
    if header.ats is not None:
        lines.append(f"  ats: {to_hex(header.ats)}")
    if header.terminal:
        terminal = header.terminal
        keys = ("amount", "currency", "country", "ttq", "fixed_time", "unpredictable_number")
        shown = ", ".join(f"{key}={terminal[key]}" for key in keys if key in terminal)
        lines.append(f"  terminal: {shown}")
    aid: bytes | None = None
    views = _answer_views(trace.entries, show_sensitive)
    for index in range(len(trace.entries)):
        view = views.get(index)
        if view is not None and view.tree is not None:
            aid = _aid_in(view.tree) or aid
        lines.append("")
        lines += _entry_lines(trace.entries, index, aid, show_sensitive, view)
    return lines


# --- differences ----------------------------------------------------------------------------


def hex_diff(
    left: bytes, right: bytes, *, labels: tuple[str, str] = ("left", "right")
) -> list[str]:
    """Two byte strings in hex, one above the other, with a caret under the first
    difference and its offset; sensitive values masked (:func:`masked_hex`)."""
    return _diff_lines(left, right, (mask_bytes(left), mask_bytes(right)), labels)


def _diff_lines(
    left: bytes, right: bytes, masked: tuple[MaskedBytes, MaskedBytes], labels: tuple[str, str]
) -> list[str]:
    """:func:`hex_diff`'s lines for two dumps already masked. The offset of the difference
    and the two lengths are left out when they would give a masked name's length away."""
    offset = next(
        (i for i, (a, b) in enumerate(zip(left, right, strict=False)) if a != b),
        min(len(left), len(right)),
    )
    width = max(len(label) for label in labels)
    column = masked[0].column(offset)
    if any(side.offset_hidden(offset) for side in masked):
        where = "(offset hidden: a masked cardholder name comes before it)"
    else:
        where = f"byte {offset}"
    lengths = ""
    if len(left) != len(right):
        lengths = (
            " (lengths differ)"
            if any(side.length_hidden for side in masked)
            else f" (lengths {len(left)} and {len(right)})"
        )
    return [
        f"{labels[0]:<{width}}: {masked[0].text}",
        f"{labels[1]:<{width}}: {masked[1].text}",
        f"{'':<{width}}  {' ' * column}^^ {where}{lengths}",
    ]


def _paths(nodes: Sequence[Tlv]) -> list[tuple[str, Tlv]]:
    out: list[tuple[str, Tlv]] = []
    stack: list[str] = []
    for depth, node in walk(nodes):
        del stack[depth:]
        stack.append(node.tag_hex)
        out.append(("/".join(stack), node))
    return out


def _value_text(node: Tlv, length_hidden: bool) -> str:
    if node.children is not None:
        return "[length hidden]" if length_hidden else f"[{len(node.value)} bytes]"
    if is_sensitive(node):
        # A name's length is hidden with its value (masking.NAME_MASK has one length).
        return "[masked]" if node.tag_hex in NAME_TAGS else f"[{len(node.value)} bytes, masked]"
    return to_hex(node.value) or "(empty)"


def tlv_difference(left: bytes, right: bytes) -> list[str]:
    """The first data object that differs between two TLV answers, by path and tag name,
    e.g. ``6F/A5/9F38 Processing Options Data Object List (PDOL): 9F6604 -> 9F6605``;
    empty when the answers are not TLV or hold the same objects. Card data is masked,
    with the length of a cardholder name and of the templates holding one."""
    nodes_a, nodes_b = decode(left, strict=False), decode(right, strict=False)
    hidden_a, hidden_b = name_exposure(nodes_a).hidden, name_exposure(nodes_b).hidden
    a, b = _paths(nodes_a), _paths(nodes_b)
    for index, ((path_a, node_a), (path_b, node_b)) in enumerate(zip(a, b, strict=False)):
        if path_a != path_b:
            return [
                f"data objects differ at {path_a} ({name_of(node_a.tag_bytes)}) vs "
                f"{path_b} ({name_of(node_b.tag_bytes)})"
            ]
        if node_a.children is None and node_a.value != node_b.value:
            return [
                f"{path_a} {name_of(node_a.tag_bytes)}: "
                f"{_value_text(node_a, index in hidden_a)} vs "
                f"{_value_text(node_b, index in hidden_b)}"
            ]
    if len(a) != len(b):
        longer, name = (a, "left") if len(a) > len(b) else (b, "right")
        path, node = longer[min(len(a), len(b))]
        return [f"only {name} has {path} ({name_of(node.tag_bytes)})"]
    return []


def _command_lines(
    left: bytes, right: bytes, labels: tuple[str, str] = ("left command", "right command")
) -> list[str]:
    from .transport.replay import first_difference

    lines = hex_diff(left, right, labels=labels)
    difference = first_difference(left, right)
    if difference is not None:
        lines.append(f"first difference: {difference.name}")
    return lines


def _response_lines(left: bytes, right: bytes) -> list[str]:
    masked = (_masked_answer(left), _masked_answer(right))
    lines = _diff_lines(left, right, masked, ("left answer", "right answer"))
    lines += tlv_difference(left[:-2], right[:-2])
    if left[-2:] != right[-2:] and len(left) >= 2 and len(right) >= 2:
        lines.append(f"status words: {sw.describe(left[-2:])} vs {sw.describe(right[-2:])}")
    return lines


def _plain_differences(left: object, right: object, names: Sequence[str]) -> list[str]:
    """``name: left vs right`` for each of the attributes ``names`` (ones that hold no card
    data: timing, notes) that differ."""
    lines = []
    for name in names:
        a, b = getattr(left, name), getattr(right, name)
        if a != b:
            lines.append(f"{name}: {a!r} vs {b!r}")
    return lines


#: Stands for a key one event has and the other lacks.
_ABSENT = object()


def _entry_difference(left: Entry, right: Entry) -> list[str]:
    # Never the entries' to_json(): its "c" and "r" are the raw bytes, card data included.
    if isinstance(left, Exchange) and isinstance(right, Exchange):
        lines = [f"exchange {_describe(left.command)}"]
        if left.command != right.command:
            lines += _command_lines(left.command, right.command)
        if left.response != right.response:
            lines += _response_lines(left.response, right.response)
        return lines + _plain_differences(left, right, ("ms", "note"))
    if isinstance(left, TraceEvent) and isinstance(right, TraceEvent):
        lines = [
            _entry_name(left)
            if left.kind == right.kind
            else f"{_entry_name(left)} vs {_entry_name(right)}"
        ]
        if left.command != right.command:
            if left.command is not None and right.command is not None:
                lines += _command_lines(left.command, right.command)
            else:
                lines.append(f"command: {_optional_command(left)} vs {_optional_command(right)}")
        lines += _plain_differences(left, right, ("ms", "note"))
        # Other keys come from any trace file: named, their values not shown.
        keys = [
            key
            for key in {**left.extra, **right.extra}
            if left.extra.get(key, _ABSENT) != right.extra.get(key, _ABSENT)
        ]
        if keys:
            lines.append(f"other keys differ: {', '.join(map(str, keys))}")
        return lines
    return [f"{_entry_name(left)} vs {_entry_name(right)}"]


def _optional_command(event: TraceEvent) -> str:
    return "none" if event.command is None else _describe(event.command)


def _event_difference(left: ExchangeEvent, right: ExchangeEvent) -> list[str]:
    """Why two tracer events differ: command and answer as for trace exchanges (masked),
    then time and error by type."""
    lines = [f"exchange {_describe(left.command)}"]
    if left.command != right.command:
        lines += _command_lines(left.command, right.command)
    if left.response != right.response:
        if left.response is not None and right.response is not None:
            lines += _response_lines(left.response, right.response)
        else:
            lines.append(
                f"response: {_optional_response(left.response)} vs "
                f"{_optional_response(right.response)}"
            )
    lines += _plain_differences(left, right, ("seconds",))
    if left.error != right.error:
        lines.append(f"error: {_error_name(left.error)} vs {_error_name(right.error)}")
    return lines


def _optional_response(raw: bytes | None) -> str:
    return "none" if raw is None else describe_response(raw)


def _error_name(error: BaseException | None) -> str:
    return "none" if error is None else type(error).__name__


# --- CardData --------------------------------------------------------------------------------


def _track2_text(track2: Track2) -> str:
    return track2.text()


#: CardData fields that hold card data, and their masked text (as CardData.to_json shows
#: them without show_pan). tests/trace/test_explain.py checks this covers every field
#: to_json masks.
_CARD_DATA_MASKS: dict[str, Callable[[Any], str]] = {
    "pan": mask_pan,
    "cardholder_name": mask_name,
    "track2": _track2_text,
}


def _card_value_text(value: object) -> str:
    from .emv.card import Cryptogram

    if isinstance(value, bytes):
        return to_hex(value) or "(empty)"
    if isinstance(value, Cryptogram):
        return (
            f"{value.type} (CID {value.cid:02X}, ATC {value.atc}, "
            f"cryptogram {to_hex(value.cryptogram)}, "
            f"IAD {to_hex(value.iad) if value.iad is not None else None}, from {value.source})"
        )
    if isinstance(value, date):
        return value.isoformat()
    return repr(value)


def _responses_difference(left: Sequence[ResponseData], right: Sequence[ResponseData]) -> list[str]:
    """The first answer that differs between two reads, by command, and its first differing
    data object (sensitive values masked)."""
    for index, (a, b) in enumerate(zip(left, right, strict=False)):
        if a == b:
            continue
        where = f"responses[{index}]"
        if (a.command, a.kind) != (b.command, b.kind):
            return [f"{where}: {a.command} ({a.kind}) vs {b.command} ({b.kind})"]
        try:
            detail = tlv_difference(encode(a.tlvs), encode(b.tlvs))
        except ContactlessError:
            detail = []
        return [f"{where} {a.command}: " + (detail[0] if detail else "encoded differently")]
    if len(left) == len(right):
        return ["responses differ"]
    longer, side = (left, "left") if len(left) > len(right) else (right, "right")
    extra = longer[min(len(left), len(right))]
    return [
        f"responses: {len(left)} vs {len(right)} answers; only {side} has "
        f"responses[{min(len(left), len(right))}] {extra.command}"
    ]


def _card_data_difference(left: CardData, right: CardData) -> list[str]:
    """Each field that differs between two reads: the PAN, track 2 and cardholder name
    masked, the answers by their first differing data object, other fields as they are."""
    from .emv.card import CardData

    lines = []
    for item in dataclasses.fields(CardData):
        name = item.name
        a, b = getattr(left, name), getattr(right, name)
        if a == b:
            continue
        if name == "responses":
            lines += _responses_difference(a, b)
            continue
        masker = _CARD_DATA_MASKS.get(name)
        if masker is None:
            lines.append(f"{name}: {_card_value_text(a)} vs {_card_value_text(b)}")
            continue
        shown = [masker(value) if value is not None else "None" for value in (a, b)]
        hidden = " (masked; they differ in hidden characters)" if shown[0] == shown[1] else ""
        lines.append(f"{name}: {shown[0]} vs {shown[1]}{hidden}")
    return lines or ["no field differs (are they of different types?)"]


def _entry_name(entry: Entry) -> str:
    if isinstance(entry, Exchange):
        return f"exchange {_describe(entry.command)}"
    return f"event {entry.kind}"


def _trace_difference(left: Trace, right: Trace) -> list[str]:
    if left.header != right.header:
        keys = [
            key
            for key, value in left.header.to_json().items()
            if right.header.to_json().get(key) != value
        ]
        keys += [key for key in right.header.to_json() if key not in left.header.to_json()]
        return [f"the headers differ in: {', '.join(sorted(set(keys)))}"]
    for number, (a, b) in enumerate(zip(left.entries, right.entries, strict=False), 1):
        if a != b:
            return [f"entry {number} differs:", *_entry_difference(a, b)]
    return [f"the traces have {len(left.entries)} and {len(right.entries)} entries"]


def explain(left: Any, right: Any) -> list[str] | None:
    """Lines explaining why two traces, entries, commands, responses, tracer events or
    card reads (:class:`~contactless.emv.card.CardData`) differ (for
    ``pytest_assertrepr_compare``), or ``None`` for other types. Card data is masked:
    no line holds a PAN, track data or a cardholder name."""
    if isinstance(left, Trace) and isinstance(right, Trace):
        return _trace_difference(left, right)
    if isinstance(left, Exchange | TraceEvent) and isinstance(right, Exchange | TraceEvent):
        return _entry_difference(left, right)
    if isinstance(left, Command) and isinstance(right, Command):
        return _command_lines(left.to_bytes(), right.to_bytes())
    if isinstance(left, Response) and isinstance(right, Response):
        return _response_lines(left.to_bytes(), right.to_bytes())
    if isinstance(left, ExchangeEvent) and isinstance(right, ExchangeEvent):
        return _event_difference(left, right)
    # Imported here: `contactless trace show` has no use for the EMV layer.
    from .emv.card import CardData

    if isinstance(left, CardData) and isinstance(right, CardData):
        return _card_data_difference(left, right)
    return None


def mismatch_lines(error: Any) -> list[str]:
    """A replay mismatch (``transport.replay.ExchangeMismatch``) as a readable report."""
    lines = [error.message]
    if error.recorded is not None:
        lines += hex_diff(error.sent, error.recorded, labels=("sent", "recorded"))
    return lines
