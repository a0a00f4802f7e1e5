"""``contactless readers``: list the readers every backend can see on this machine."""

from __future__ import annotations

import dataclasses
import json

import click

from ..transport import DETECT_TIMEOUT, ReaderInfo, detect

_CARD_TEXT = {True: "yes", False: "no", None: "?"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=DETECT_TIMEOUT,
    show_default=True,
    help="Seconds to give the backends to answer.",
)
def readers(as_json: bool, timeout: float) -> None:
    """List readers by URI (read a card on one with `contactless read --reader URI`), and
    backends that cannot be used here with the reason."""
    found = detect(timeout=timeout)
    if as_json:
        payload = {"readers": [dataclasses.asdict(info) for info in found]}
        click.echo(json.dumps(payload, indent=2))
        return
    _print_table(found)


def _print_table(found: list[ReaderInfo]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Readers")
    table.add_column("URI", no_wrap=True)
    for heading in ("Reader", "Card", "Backend", "Detail"):
        table.add_column(heading)
    for info in found:
        style = None if info.available else "dim"
        card = _CARD_TEXT[info.card_present] if info.available else "-"
        table.add_row(info.uri, info.name, card, info.backend, info.detail, style=style)
    Console().print(table)
