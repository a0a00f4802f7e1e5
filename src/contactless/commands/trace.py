"""``contactless trace``: look at, redact and convert APDU traces (JSON Lines, and the
pcsc-tools ``scriptor`` script and log formats)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from ..errors import ConfigError, ContactlessError

#: Exit status for an unusable input file (as `contactless read` uses 2 for bad setup).
EXIT_BAD_INPUT = 2


def _fail(error: ContactlessError | OSError, status: int = EXIT_BAD_INPUT) -> NoReturn:
    click.echo(f"error: {error}", err=True)
    sys.exit(status)


def _write_text(text: str, output: str | None) -> None:
    if output is None or output == "-":
        click.echo(text, nl=False)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as error:
        _fail(
            ConfigError(
                f"cannot write the scriptor file {output}: {error.strerror}",
                remedy="give --output a file in an existing folder you can write to, "
                "or leave it out to print to stdout",
            )
        )


@click.group()
def trace() -> None:
    """Show, redact and convert APDU traces (see docs/trace-format.md)."""


@trace.command()
@click.argument("trace_path", metavar="FILE")
@click.option("--show-pan", is_flag=True, help="Show PAN, track data and names in full.")
def show(trace_path: str, show_pan: bool) -> None:
    """Print the trace FILE: each command described, DOL fields and answers decoded with
    tag names, status words explained; card data masked unless --show-pan."""
    from ..trace import read_trace
    from ..trace_view import show_lines

    try:
        loaded = read_trace(trace_path)
    except ContactlessError as error:
        _fail(error)
    for line in show_lines(loaded, show_sensitive=show_pan):
        click.echo(line)


@trace.command()
@click.argument("trace_path", metavar="FILE")
@click.option("--output", "-o", required=True, metavar="FILE", help="Redacted trace to write.")
def redact(trace_path: str, output: str) -> None:
    """Write a redacted copy of the trace FILE (PANs substituted, names replaced)."""
    from ..trace import read_trace, write_trace
    from ..trace_redact import redact as redact_trace

    try:
        redacted, report = redact_trace(read_trace(trace_path))
        write_trace(redacted, output)
    except (ContactlessError, OSError) as error:
        _fail(error)
    click.echo(
        f"wrote {output}: {report.pans} PAN(s), {report.names} name(s) replaced, "
        f"{report.answers_changed} answer(s) changed",
        err=True,
    )


@trace.command("import-scriptor")
@click.argument("script_path", metavar="FILE")
@click.option("--output", "-o", required=True, metavar="FILE", help="Trace to write (.jsonl).")
@click.option(
    "--reader",
    "-r",
    "uri",
    metavar="URI",
    help="Run a script (commands without answers) on this reader to record the answers.",
)
@click.option("--no-redact", is_flag=True, help="Keep the card's data in the trace.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0.001, max=3600),
    default=10.0,
    show_default=True,
    help="Seconds to wait for a card (with --reader).",
)
def import_scriptor(
    script_path: str, output: str, uri: str | None, no_redact: bool, wait: float
) -> None:
    """Convert scriptor output (`> ...` / `< ... : Normal processing.` lines) to a trace,
    or run a scriptor script on --reader and record it."""
    from ..reader import open_reader
    from ..trace import write_trace
    from ..trace_redact import redact as redact_trace
    from ..trace_scriptor import is_log, log_to_trace, parse_script, run_script

    try:
        text = Path(script_path).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        _fail(ConfigError(f"scriptor file {script_path}: cannot read: {error.strerror}"))
    try:
        if is_log(text):
            converted = log_to_trace(text, source=script_path)
        else:
            steps = parse_script(text, source=script_path)
            if uri is None:
                raise ConfigError(
                    f"{script_path} is a scriptor script (commands, no answers)",
                    remedy="pass --reader URI to run it and record the answers",
                )
            with open_reader(uri) as reader:
                reader.wait_for_card(wait)
                converted = run_script(steps, reader)
        if not no_redact:
            converted, _ = redact_trace(converted)
        write_trace(converted, output)
    except ContactlessError as error:
        _fail(error)
    click.echo(f"wrote {output}: {len(converted.exchanges)} exchange(s)", err=True)


@trace.command("export-scriptor")
@click.argument("trace_path", metavar="FILE")
@click.option("--output", "-o", metavar="FILE", help="Where to write (default: stdout).")
@click.option(
    "--log",
    "as_log",
    is_flag=True,
    help="Write scriptor's output format (> command / < answer : meaning) instead of a script.",
)
@click.option(
    "--show-pan",
    is_flag=True,
    help="Write the card data (PAN, track data, names, PIN blocks) as recorded; "
    "masked in a script's answers and redacted in a log by default.",
)
def export_scriptor(trace_path: str, output: str | None, as_log: bool, show_pan: bool) -> None:
    """Write the trace FILE as a scriptor script (runnable with `scriptor FILE`; the
    recorded answers in comments) or, with --log, as scriptor's output.

    Unless --show-pan, card data is hidden even if the trace holds it (recorded with
    --no-redact): a script keeps its commands (except a VERIFY's PIN block, left out)
    and shows the answers masked; a log, which must stay hex to be imported again,
    is redacted as `contactless trace redact` does (test PANs, placeholder names)."""
    from ..trace import read_trace
    from ..trace_scriptor import export_log, export_script

    try:
        loaded = read_trace(trace_path)
        exporter = export_log if as_log else export_script
        text = exporter(loaded, show_sensitive=show_pan)
    except ContactlessError as error:
        _fail(error)
    _write_text(text, output)
