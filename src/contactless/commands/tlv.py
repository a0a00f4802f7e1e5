"""``contactless tlv``: decode BER-TLV hex into a tree with EMV tag names and decoded values."""

from __future__ import annotations

import json
import sys
from typing import NoReturn

import click

from ..errors import ContactlessError, TlvError
from ..hexutil import parse_hex
from ..tlv import Tlv, decode, walk
from ..tlv_view import decode_problem, tree_json, tree_lines


def _aid_of(nodes: list[Tlv]) -> bytes | None:
    """The first AID (4F) or DF name (84) in the data: it selects scheme-specific tag names."""
    for _, node in walk(nodes):
        if node.tag_bytes in (b"\x4f", b"\x84"):
            return node.value
    return None


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
    any scheme, and a cardholder name's length too (its templates' lengths, in JSON the
    offsets after it, and the offset and lengths of a decoding error are left out).

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
            click.echo(json.dumps(tree_json(nodes, context, show_sensitive=show_pan), indent=2))
        else:
            for line in tree_lines(nodes, context, show_sensitive=show_pan):
                click.echo(line)
    if error is not None:
        # Unless --show-pan, without the offset and lengths that would tell a masked
        # name's length (or the size of a PAN or name the data cuts short).
        _fail(str(error) if show_pan else decode_problem(nodes) or str(error))
    if not nodes:
        padding = len(nodes.trailing)
        note = f"no TLV objects ({padding} padding byte{'s' if padding != 1 else ''})"
        click.echo(note, err=as_json)  # JSON output stays a valid (empty) list
