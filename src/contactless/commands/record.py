"""``contactless record``: run the EMV read (or a transaction) on a reader and write the
APDU trace, redacted unless ``--no-redact``, with the terminal's clock and unpredictable
number pinned so that ``contactless replay`` regenerates the same commands."""

from __future__ import annotations

import sys

import click

from ..errors import ContactlessError
from .options import amount_option, config_option, reader_option, timeout_option, wait_option


@click.command()
@reader_option
@click.option(
    "--output", "-o", "output", required=True, metavar="FILE", help="Trace file to write (.jsonl)."
)
@click.option("--transaction", is_flag=True, help="Also ask the card for a cryptogram.")
@click.option(
    "--no-redact",
    is_flag=True,
    help="Keep the real PAN, track data and cardholder name in the trace (sensitive!).",
)
@config_option
@amount_option
@click.option("--note", metavar="TEXT", help="A note to keep in the trace's header.")
@click.option("--json", "as_json", is_flag=True, help="Print the card data as JSON.")
@wait_option
@timeout_option
def record(
    uri: str,
    output: str,
    transaction: bool,
    no_redact: bool,
    config_path: str | None,
    amount: int | None,
    note: str | None,
    as_json: bool,
    wait: float,
    timeout: float,
) -> None:
    """Read the card on the reader at URI and record every APDU to FILE.

    The trace is written even when the read fails part-way (a card pulled away, an error
    status word), so faults can be replayed too; the exit status is then that of
    `contactless read` (1: the read failed, 2: bad setup). An APDU that failed (no answer,
    a transmission error) is recorded as an event, so a trace is written as soon as one
    APDU was sent; nothing is written when none was (no card, a bad URI).
    """
    from ..emv.terminal import TerminalConfig
    from ..reader import read_card
    from ..trace import Recorder, check_trace_path, pin_terminal, terminal_header, write_trace
    from ..trace_redact import redact
    from .read import exit_status, print_card_data

    try:
        check_trace_path(output)  # before the card is read, not after
        overrides = {"amount": amount} if amount is not None else {}
        config = pin_terminal(TerminalConfig.load(config_path, **overrides))
    except ContactlessError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(exit_status(error))
    recorder = Recorder()
    failure: ContactlessError | None = None
    data = None
    try:
        data = read_card(
            uri,
            config=config,
            transaction=transaction,
            wait=wait,
            timeout=timeout,
            on_card=recorder.attach,
        )
    except ContactlessError as error:
        failure = error
    if recorder.entries:
        try:
            trace = recorder.trace(
                terminal=terminal_header(config),
                flow="transaction" if transaction else "read",
                note=note,
                redacted=False,
            )
            summary = "NOT redacted: it holds the card's data"
            if not no_redact:
                trace, report = redact(trace)
                summary = f"redacted: {report.pans} PAN(s), {report.names} name(s) replaced"
            write_trace(trace, output)
        except ContactlessError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)
        events = len(trace.entries) - len(trace.exchanges)
        click.echo(
            f"recorded {len(trace.exchanges)} exchange(s) and {events} event(s) to {output} "
            f"({summary})",
            err=True,
        )
    if failure is not None:
        click.echo(f"error: {failure}", err=True)
        sys.exit(exit_status(failure))
    assert data is not None
    print_card_data(data, as_json=as_json, show_pan=False, tlvs=False)
