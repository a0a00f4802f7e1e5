"""``contactless read``: read an EMV card (optionally with a test transaction) and print
what it holds, the PAN masked unless ``--show-pan``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from ..errors import ConfigError, ContactlessError, LocalProtocolError
from .options import amount_option, config_option, reader_option, timeout_option, wait_option

if TYPE_CHECKING:
    from ..emv.card import CardData

#: Exit status for a read that failed (reader, card, data) and for a bad invocation
#: (configuration file, URI, options), so scripts can tell them apart.
EXIT_READ_FAILED = 1
EXIT_BAD_SETUP = 2

#: Errors that mean the command was set up wrong rather than the card or reader failing.
_SETUP_ERRORS = (ConfigError, LocalProtocolError)


def _read(
    uri: str,
    *,
    config_path: str | None,
    amount: int | None,
    transaction: bool,
    wait: float,
    timeout: float,
) -> CardData:
    # Imported here: `contactless --help` must not pay for the EMV flow or the transports.
    from ..emv.terminal import TerminalConfig
    from ..reader import read_card

    overrides = {"amount": amount} if amount is not None else {}
    config = TerminalConfig.load(config_path, **overrides)
    return read_card(uri, config=config, transaction=transaction, wait=wait, timeout=timeout)


def exit_status(error: ContactlessError) -> int:
    """The exit status for a failed read: 2 for a bad setup, 1 for a failed read."""
    return EXIT_BAD_SETUP if isinstance(error, _SETUP_ERRORS) else EXIT_READ_FAILED


def print_card_data(data: CardData, *, as_json: bool, show_pan: bool, tlvs: bool) -> None:
    """Print what `contactless read` prints: a table, or JSON (``tlvs``: with every
    answer's TLV); masked unless ``show_pan``. `contactless replay` prints the same."""
    if as_json:
        click.echo(json.dumps(data.to_json(show_pan, include_tlvs=tlvs), indent=2))
    else:
        _print_table(data, show_pan)


def _print_table(data: CardData, show_pan: bool) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in data.summary(show_pan=show_pan):
        # Text, not markup: card data such as "[VISA]" must be shown as it is.
        table.add_row(Text(name), Text(value))
    Console(soft_wrap=True).print(table)


@click.command()
@reader_option
@click.option("--json", "as_json", is_flag=True, help="Print the card data as JSON.")
@amount_option
@click.option(
    "--transaction",
    is_flag=True,
    help="Run a test transaction: ask the card for a cryptogram (GENERATE AC).",
)
@click.option(
    "--show-pan",
    is_flag=True,
    help="Show the PAN, Track 2 and cardholder name in full (masked by default).",
)
@config_option
@click.option(
    "--tlvs", is_flag=True, help="With --json: add every answer's decoded TLV (masked too)."
)
@wait_option
@timeout_option
def read(
    uri: str,
    as_json: bool,
    amount: int | None,
    transaction: bool,
    show_pan: bool,
    config_path: str | None,
    tlvs: bool,
    wait: float,
    timeout: float,
) -> None:
    """Read the EMV payment card on the reader at URI.

    Selects the payment application (PPSE, or the terminal's AIDs), sends GET PROCESSING
    OPTIONS, reads the records, and with --transaction asks for a cryptogram. Prints the
    application, brand, masked PAN, expiry and more; the full PAN only with --show-pan.

    Exits with 1 when the read fails (no card, card removed, an error status word,
    malformed data) and 2 for a bad terminal config or reader URI, with one line saying
    what happened and where.
    """
    try:
        data = _read(
            uri,
            config_path=config_path,
            amount=amount,
            transaction=transaction,
            wait=wait,
            timeout=timeout,
        )
    except ContactlessError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(exit_status(error))
    print_card_data(data, as_json=as_json, show_pan=show_pan, tlvs=tlvs)
