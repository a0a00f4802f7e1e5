"""``contactless tlv``: decode BER-TLV hex into a tree with EMV tag names and decoded values."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..errors import ContactlessError, TlvError
from ..hexutil import parse_hex, to_hex
from ..masking import mask_value
from ..tlv import Tlv, decode, walk
from ..tlv.format import describe
from ..tlv.tags import lookup, name_of


def _aid_of(nodes: list[Tlv]) -> bytes | None:
    """The first AID (4F) or DF name (84) in the data: it selects scheme-specific tag names."""
    for _, node in walk(nodes):
        if node.tag_bytes in (b"\x4f", b"\x84"):
            return node.value
    return None


def _has_sensitive(node: Tlv) -> bool:
    return any(_is_sensitive(n) for _, n in walk([node]))


def _is_sensitive(node: Tlv) -> bool:
    info = lookup(node.tag_bytes)
    return bool(info and info.sensitive)


def _to_json(nodes: list[Tlv], aid: bytes | None, show_sensitive: bool) -> list[dict[str, Any]]:
    out = []
    for node in nodes:
        entry: dict[str, Any] = {
            "tag": node.tag_hex,
            "name": name_of(node.tag_bytes, aid),
            "offset": node.offset,
            "length": node.length,
            "value": to_hex(node.value),
        }
        if not show_sensitive and _has_sensitive(node):
            # A hex value would carry the PAN / track / name: show the masked form instead.
            entry["value"] = (
                None if node.children is not None else mask_value(node.tag_hex, node.value)
            )
            entry["masked"] = True
        if node.children is not None:
            entry["children"] = _to_json(node.children, aid, show_sensitive)
        out.append(entry)
    return out


def _to_text(nodes: list[Tlv], aid: bytes | None, show_sensitive: bool) -> list[str]:
    lines = []
    for depth, node in walk(nodes):
        head = f"{'  ' * depth}{node.tag_hex:<6} {name_of(node.tag_bytes, aid)}"
        if node.children is not None:
            lines.append(f"{head}  [{node.length} bytes]")
            continue
        if _is_sensitive(node) and not show_sensitive:
            lines.append(f"{head}  {mask_value(node.tag_hex, node.value)}")
            continue
        text = None
        try:
            text = describe(node.tag_bytes, node.value, aid=aid, show_sensitive=show_sensitive)
        except ContactlessError as error:
            text = f"(cannot decode: {error.message})"
        value = to_hex(node.value) or "(empty)"
        lines.append(f"{head}  {value}" + (f"  = {text}" if text else ""))
    return lines


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
def tlv(hex_parts: tuple[str, ...], as_json: bool, lenient: bool, show_pan: bool) -> None:
    """Decode BER-TLV HEX (or `-` to read hex from stdin) into a tree of EMV data objects.

    HEX may be split over several arguments and may contain spaces or colons.

    Malformed input exits with status 2 and one line naming the offset and tag; with
    --lenient the objects decoded before the problem are printed first (still status 2).
    """
    text = sys.stdin.read() if hex_parts == ("-",) else " ".join(hex_parts)
    try:
        data = parse_hex(text)
    except ContactlessError as bad_hex:
        click.echo(f"error: {bad_hex}", err=True)
        sys.exit(2)
    nodes = decode(data, strict=False)
    error: TlvError | None = nodes.error
    if error is None or lenient:
        aid = _aid_of(nodes)
        if as_json:
            click.echo(json.dumps(_to_json(nodes, aid, show_pan), indent=2))
        else:
            for line in _to_text(nodes, aid, show_pan):
                click.echo(line)
    if error is not None:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
