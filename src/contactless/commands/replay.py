"""``contactless replay``: run the EMV read against a recorded trace and print what
``contactless read`` prints; a drift from the recording is reported and exits with 3."""

from __future__ import annotations

import sys

import click

from ..errors import ContactlessError, TraceMismatch

#: Exit status when the library no longer sends what the trace recorded.
EXIT_MISMATCH = 3


@click.command()
@click.argument("trace_path", metavar="FILE")
@click.option(
    "--match",
    type=click.Choice(["strict", "loose"]),
    default="strict",
    show_default=True,
    help="strict: commands must equal the recorded ones (volatile DOL fields aside); "
    "loose: only CLA INS P1 P2 must.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the card data as JSON.")
@click.option("--tlvs", is_flag=True, help="With --json: add every answer's decoded TLV.")
@click.option("--show-pan", is_flag=True, help="Show the PAN and names in full.")
@click.option(
    "--amount",
    type=click.IntRange(0, 999_999_999_999),
    help="Replay with another amount (the amount fields then may differ from the recording).",
)
@click.option(
    "--transaction/--read",
    "transaction",
    default=None,
    help="Run a transaction or a plain read (default: what the trace recorded).",
)
def replay(
    trace_path: str,
    match: str,
    as_json: bool,
    tlvs: bool,
    show_pan: bool,
    amount: int | None,
    transaction: bool | None,
) -> None:
    """Replay the trace FILE: run the EMV read against it and print the card data.

    Exits with 0 when the read completes as recorded, 1 when it fails as the recording
    did (card removed, error status word), 2 for an unusable trace file, and 3 when the
    library's commands no longer match the recording (TraceMismatch), naming the exchange
    and the first differing field.
    """
    from ..testing import replay as replay_trace
    from ..testing import replay_config
    from ..trace import read_trace
    from .read import exit_status, print_card_data

    try:
        trace = read_trace(trace_path)
        overrides = {"amount": amount} if amount is not None else {}
        data = replay_trace(
            trace,
            match=match,
            config=replay_config(trace, **overrides),
            transaction=transaction,
            check_complete=match == "strict",
        )
    except TraceMismatch as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_MISMATCH)
    except ContactlessError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(exit_status(error))
    print_card_data(data, as_json=as_json, show_pan=show_pan, tlvs=tlvs)
