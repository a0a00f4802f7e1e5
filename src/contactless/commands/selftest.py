"""``contactless selftest``: is the terminal's payment path healthy, and if not, why?

Exit status: 0 pass, 1 warn, 2 fail, 3 the self-test itself could not run (bad options,
a baseline file that does not exist, a malformed reader URI, or a check that crashed
while nothing failed).
"""

from __future__ import annotations

import contextlib
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..errors import ContactlessError

if TYPE_CHECKING:
    from ..selftest import SelftestReport

#: Exit status per verdict, and for a self-test that could not run.
EXIT_STATUS = {"pass": 0, "warn": 1, "fail": 2, "error": 3}
EXIT_CANNOT_RUN = 3


class SelftestCommand(click.Command):
    """A click command whose usage errors exit with 3 ("could not run"), since click's
    own 2 means "fail" here."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        # Read first: parsing consumes the list. Only `selftest --json` has this document.
        wants_json = self.name == "selftest" and "--json" in args
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            error.exit_code = EXIT_CANNOT_RUN  # type: ignore[misc]  # click reads it per instance
            if wants_json:
                _usage_error_json(error)
            raise


def _usage_error_json(error: click.UsageError) -> None:
    """Print the ``--json`` document of a command line that could not be parsed (in the
    locale's language: the --lang option may be the bad one)."""
    from ..errors import ConfigError
    from ..selftest import language_from_environment, load_catalog
    from ..selftest.report_json import error_json, report_json_text

    catalog = load_catalog(language_from_environment())
    problem = ConfigError(error.format_message(), remedy="see --help")
    started = datetime.now().astimezone()
    document = error_json(problem, catalog, started=started)
    click.echo(report_json_text(document, catalog))


def check_host_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Validate ``--host HOST:PORT``."""
    if value is None:
        return None
    from ..selftest.settings import parse_host

    try:
        parse_host(value)
    except ContactlessError as error:
        raise click.BadParameter(error.message) from None
    return value


def cannot_run(message: str, language: str) -> NoReturn:
    """Say why the self-test cannot run (in the report's language) and exit with 3."""
    from ..selftest.i18n import load_catalog

    click.echo(load_catalog(language).label("cannot_run", error=message), err=True)
    sys.exit(EXIT_CANNOT_RUN)


def reader_option(function: Any) -> Any:
    return click.option(
        "--reader",
        "-r",
        "reader",
        envvar="CONTACTLESS_READER",
        metavar="URI",
        help="Reader URI: pcsc:, nfc:usb, sim:visa... (default: CONTACTLESS_READER, else "
        "the baseline's reader if any, else the first reader found).",
    )(function)


def common_options(function: Any) -> Any:
    """Options shared by `selftest` and `baseline save`."""
    for option in reversed(
        (
            click.option(
                "--config",
                "config",
                metavar="FILE",
                help="Terminal config (TOML) with an optional [selftest] table "
                "(default: the baseline's, if any).",
            ),
            click.option(
                "--loops",
                type=click.IntRange(1, 100_000),
                help="Round trips of the link-quality check (default 50).",
            ),
            click.option(
                "--lang",
                type=click.Choice(["en", "zh"]),
                help="Language of the report (default: from LC_ALL/LC_MESSAGES/LANG).",
            ),
        )
    ):
        function = option(function)
    return reader_option(function)


@click.command(cls=SelftestCommand)
@common_options
@click.option("--baseline", "baseline", metavar="FILE", help="Baseline saved before the upgrade.")
@click.option(
    "--host",
    metavar="HOST:PORT",
    callback=check_host_option,
    help="Acquirer host to test the network link with.",
)
@click.option("--tls/--no-tls", default=None, help="Do a TLS handshake with --host.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--junit", metavar="FILE", help="Also write the results as JUnit XML.")
def selftest(
    reader: str | None,
    config: str | None,
    loops: int | None,
    lang: str | None,
    baseline: str | None,
    host: str | None,
    tls: bool | None,
    as_json: bool,
    junit: str | None,
) -> None:
    """Check the terminal's payment path and say what is wrong and what to do.

    Runs checks on the software, the configuration, the reader and its services, the
    test card, the link to it (round trips with latency), a test transaction, and the
    network link to the acquirer; compares with a baseline saved before an upgrade
    (`contactless baseline save`); names the most likely fault with a confidence and the
    steps to fix it.

    Exit status: 0 pass, 1 warnings, 2 a fault was found, 3 the self-test could not run.
    """
    from rich.console import Console

    from ..selftest import SelftestOptions, language_from_environment, load_catalog, run_selftest
    from ..selftest.progress import RichProgress
    from ..selftest.report_json import error_json, report_json_text
    from ..selftest.report_junit import write_error_junit, write_junit
    from ..selftest.report_text import render_text

    language = lang or language_from_environment()
    catalog = load_catalog(language)
    errors = Console(stderr=True)
    progress = RichProgress(errors, catalog) if errors.is_terminal and not as_json else None
    options = SelftestOptions(
        reader=reader,
        baseline=baseline,
        config=config,
        host=host,
        tls=tls,
        loops=loops,
        progress=progress,
    )
    started = datetime.now().astimezone()
    report: SelftestReport | None = None
    try:
        with progress if progress is not None else contextlib.nullcontext():
            report = run_selftest(options)
        if junit is not None:
            write_junit(junit, report, catalog)
    except ContactlessError as error:
        # Scripts reading --json or --junit still get a document that says why.
        if junit is not None and report is None:
            with contextlib.suppress(ContactlessError):  # the file may be what is wrong
                write_error_junit(junit, error, catalog, started=started)
        if as_json:
            document = error_json(
                error,
                catalog,
                started=started,
                reader=reader,
                baseline=baseline,
                config=config,
                report=report,
            )
            click.echo(report_json_text(document, catalog))
        cannot_run(str(error), language)
    if as_json:
        click.echo(report_json_text(report, catalog))
    else:
        render_text(report, catalog, Console())
    sys.exit(exit_status(report))


def exit_status(report: SelftestReport) -> int:
    """The exit status of the verdict: 2 when a fault was found (even if some checks could
    not run: the fault is what the technician must act on); 3 (``error``) when some checks
    could not run and nothing failed; else 0 or 1."""
    return EXIT_STATUS[str(report.verdict)]
