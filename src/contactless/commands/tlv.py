"""``contactless tlv``: decode BER-TLV hex into a tree with EMV tag names and decoded values."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Final, NoReturn

import click

from ..errors import ContactlessError, TlvError
from ..hexutil import parse_hex, to_hex
from ..masking import MASK, NAME_MASK, SENSITIVE_TAGS, mask_value
from ..tlv import Tlv, decode, walk
from ..tlv.format import describe
from ..tlv.tags import all_tags, name_of

#: Tags whose value holds a cardholder's name (Cardholder Name, Name Extended, Name of an
#: Individual, and Track 1 of the card or of an identification card, with its NAME field).
#: Masked, their length is hidden too: masking.NAME_MASK shows no length, and a length
#: beside it would give it back.
_NAME_TAGS: Final = frozenset({"5F20", "9F0B", "5B", "56", "5F21"})


def _aid_of(nodes: list[Tlv]) -> bytes | None:
    """The first AID (4F) or DF name (84) in the data: it selects scheme-specific tag names."""
    for _, node in walk(nodes):
        if node.tag_bytes in (b"\x4f", b"\x84"):
            return node.value
    return None


@functools.cache
def _sensitive_tags() -> frozenset[str]:
    """Every tag that any dictionary row marks sensitive, whatever its scheme.

    The safer rule than looking the tag up for one AID: 9F61 is UnionPay's Cardholder ID
    Number (sensitive) but Mastercard's CVC3 (not), and the AID that would tell them apart
    may be missing from the data, wrong, or given for another application. Masking a CVC3
    too costs little; showing an ID number by mistake cannot be undone.
    """
    return frozenset(info.tag for info in all_tags() if info.sensitive) | SENSITIVE_TAGS


def _is_sensitive(node: Tlv) -> bool:
    return node.tag_hex in _sensitive_tags()


def _has_sensitive(node: Tlv) -> bool:
    return any(_is_sensitive(n) for _, n in walk([node]))


def _masked_text(node: Tlv) -> str:
    """The value of a sensitive primitive node as masked text."""
    if node.tag_hex in SENSITIVE_TAGS:
        return mask_value(node.tag_hex, node.value)  # PAN 6 + 4 digits, Track 2 expiry...
    if node.tag_hex in _NAME_TAGS:
        return NAME_MASK
    # Sensitive per the dictionary only (9F61, Track 3, PIN data): no known shape, hide all.
    return MASK * (2 * len(node.value))


def _name_exposure(nodes: list[Tlv]) -> tuple[set[int], int | None]:
    """Where a masked cardholder name's length would still show, by position in document
    order (as :func:`walk` yields nodes): the name nodes and every template holding one
    (a template's length minus its other children's gives the name's length), and the
    position of the first name (the offset of every node after it is shifted by the
    name's length). Both are empty/None when the data holds no name."""
    hidden: set[int] = set()
    first_name: int | None = None
    ancestors: list[int] = []
    for index, (depth, node) in enumerate(walk(nodes)):
        del ancestors[depth:]
        ancestors.append(index)
        if node.children is None and node.tag_hex in _NAME_TAGS:
            hidden.update(ancestors)
            first_name = index if first_name is None else first_name
    return hidden, first_name


def _to_json(nodes: list[Tlv], aid: bytes | None, show_sensitive: bool) -> list[dict[str, Any]]:
    hidden, first_name = (set(), None) if show_sensitive else _name_exposure(nodes)
    top: list[dict[str, Any]] = []
    parents: list[list[dict[str, Any]]] = [top]
    for index, (depth, node) in enumerate(walk(nodes)):
        del parents[depth + 1 :]
        entry: dict[str, Any] = {
            "tag": node.tag_hex,
            "name": name_of(node.tag_bytes, aid),
            "offset": node.offset,
            "length": node.length,
            "value": to_hex(node.value),
        }
        if not show_sensitive and _has_sensitive(node):
            # A hex value would carry the PAN / track / name: show the masked form instead.
            entry["value"] = None if node.children is not None else _masked_text(node)
            entry["masked"] = True
        if index in hidden:
            entry["length"] = None
        if first_name is not None and index > first_name:
            entry["offset"] = None
        parents[depth].append(entry)
        if node.children is not None:
            entry["children"] = []
            parents.append(entry["children"])
    return top


def _to_text(nodes: list[Tlv], aid: bytes | None, show_sensitive: bool) -> list[str]:
    hidden, _ = (set(), None) if show_sensitive else _name_exposure(nodes)
    lines = []
    for index, (depth, node) in enumerate(walk(nodes)):
        head = f"{'  ' * depth}{node.tag_hex:<6} {name_of(node.tag_bytes, aid)}"
        if node.children is not None:
            size = "length hidden" if index in hidden else f"{node.length} bytes"
            lines.append(f"{head}  [{size}]")
            continue
        if _is_sensitive(node) and not show_sensitive:
            lines.append(f"{head}  {_masked_text(node)}")
            continue
        text = None
        try:
            text = describe(node.tag_bytes, node.value, aid=aid, show_sensitive=show_sensitive)
        except ContactlessError as error:
            text = f"(cannot decode: {error.message})"
        value = to_hex(node.value) or "(empty)"
        lines.append(f"{head}  {value}" + (f"  = {text}" if text else ""))
    return lines


#: Exit status for malformed, non-hex or empty input.
EXIT_BAD_INPUT = 2


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _read_stdin() -> str:
    """Standard input as text, read as bytes so that a non-text byte is reported by value
    and position (not as Python's surrogate escape ``'\\udcff'``)."""
    raw = sys.stdin.buffer.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        _fail(f"stdin is not text (byte 0x{raw[error.start]:02X} at position {error.start})")


def _parse_aid(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        aid = parse_hex(text, what="--aid")
    except ContactlessError as bad_hex:
        _fail(str(bad_hex))
    if not 5 <= len(aid) <= 16:
        _fail(f"--aid {text!r} is {len(aid)} bytes; an AID is 5-16 bytes, e.g. A0000000031010")
    return aid


@click.command()
@click.argument("hex_parts", metavar="HEX...", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of nodes.")
@click.option(
    "--lenient", is_flag=True, help="On malformed input, print what decoded before the error too."
)
@click.option(
    "--show-pan",
    is_flag=True,
    help="Show PAN, track data and cardholder name in full (masked by default).",
)
@click.option(
    "--aid",
    metavar="HEX",
    help="Name scheme-specific tags for this application (e.g. A0000000041010 for "
    "Mastercard) instead of the first 4F/84 in the data.",
)
def tlv(
    hex_parts: tuple[str, ...], as_json: bool, lenient: bool, show_pan: bool, aid: str | None
) -> None:
    """Decode BER-TLV HEX (or `-` to read hex from stdin) into a tree of EMV data objects.

    HEX may be split over several arguments and may contain spaces or colons. Tags whose
    meaning depends on the payment scheme are named after the AID given with --aid, else
    after the first AID (4F) or DF name (84) in the data.

    Card data is masked unless --show-pan: every tag the dictionary marks sensitive for
    any scheme, and a cardholder name's length too (its templates' lengths, and in JSON
    the offsets after it, are left out).

    \b
    Exit status:
      0  decoded; also for padding alone (00/FF bytes), reported as "no TLV objects"
      2  malformed TLV (one line naming the offset and tag), input that is not hex,
         or empty input; with --lenient the objects decoded before the problem are
         printed first (still status 2)
    """
    chosen_aid = _parse_aid(aid)
    text = _read_stdin() if hex_parts == ("-",) else " ".join(hex_parts)
    try:
        data = parse_hex(text)
    except ContactlessError as bad_hex:
        _fail(str(bad_hex))
    if not data:
        _fail("empty input: give BER-TLV as hex, e.g. contactless tlv 9F0206000000000100")
    nodes = decode(data, strict=False)
    error: TlvError | None = nodes.error
    if error is None or lenient:
        context = chosen_aid if chosen_aid is not None else _aid_of(nodes)
        if as_json:
            click.echo(json.dumps(_to_json(nodes, context, show_pan), indent=2))
        else:
            for line in _to_text(nodes, context, show_pan):
                click.echo(line)
    if error is not None:
        _fail(str(error))
    if not nodes:
        padding = len(nodes.trailing)
        note = f"no TLV objects ({padding} padding byte{'s' if padding != 1 else ''})"
        click.echo(note, err=as_json)  # JSON output stays a valid (empty) list
