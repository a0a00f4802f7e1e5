"""``contactless baseline``: record a healthy terminal before an upgrade, to compare after.

``baseline save FILE`` runs the self-test and, when the terminal passes, writes what it
saw (reader identity and firmware, the configuration and its hash, a fingerprint of the
test card, the link profile) to FILE; ``baseline show FILE`` verifies and prints one.
Exit status: 0 done, 2 the terminal fails (nothing saved) or the baseline is damaged,
3 the command could not run.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from ..errors import ContactlessError
from .selftest import EXIT_CANNOT_RUN, SelftestCommand, cannot_run, common_options

if TYPE_CHECKING:
    from ..selftest import Baseline, Catalog

#: Exit status when the terminal fails its self-test (so no baseline is saved), or when
#: the baseline shown is damaged.
EXIT_REFUSED = 2


class BaselineGroup(click.Group):
    """Usage errors exit with 3, as for `selftest`."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            error.exit_code = EXIT_CANNOT_RUN  # type: ignore[misc]  # click reads it per instance
            raise


@click.group(cls=BaselineGroup)
def baseline() -> None:
    """Save a terminal's baseline before an upgrade; compare after it with
    `contactless selftest --baseline FILE`."""


@baseline.command(cls=SelftestCommand)
@click.argument("file", metavar="FILE")
@common_options
@click.option("--force", is_flag=True, help="Save even when the self-test fails.")
def save(
    file: str,
    reader: str | None,
    config: str | None,
    loops: int | None,
    lang: str | None,
    force: bool,
) -> None:
    """Run the self-test and save what a healthy terminal looks like to FILE.

    Records the reader (identity, firmware, driver), the configuration (its values and
    a hash), the test card (a salted hash of its number and its last four digits; never
    the number itself) and the link profile (latency percentiles). Nothing is saved when
    the self-test fails, unless --force.
    """
    from rich.console import Console

    from ..selftest import (
        SelftestOptions,
        baseline_from_report,
        language_from_environment,
        load_catalog,
        run_selftest,
        save_baseline,
    )
    from ..selftest.progress import RichProgress
    from ..selftest.report_text import render_text

    language = lang or language_from_environment()
    catalog = load_catalog(language)
    errors = Console(stderr=True)
    progress = RichProgress(errors, catalog) if errors.is_terminal else None
    options = SelftestOptions(reader=reader, config=config, loops=loops, progress=progress)
    try:
        if progress is not None:
            with progress:
                report = run_selftest(options)
        else:
            report = run_selftest(options)
    except ContactlessError as error:
        cannot_run(str(error), language)
    output = Console()
    if report.incomplete:
        render_text(report, catalog, output)
        sys.exit(EXIT_CANNOT_RUN)
    if str(report.verdict) == "fail" and not force:
        render_text(report, catalog, output)
        click.echo(catalog.label("baseline_refused"), err=True)
        sys.exit(EXIT_REFUSED)
    try:
        save_baseline(file, baseline_from_report(report))
    except ContactlessError as error:
        cannot_run(str(error), language)
    if str(report.verdict) != "pass":
        render_text(report, catalog, output)
    click.echo(catalog.label("baseline_saved", path=file))


@baseline.command(cls=SelftestCommand)
@click.argument("file", metavar="FILE")
@click.option("--json", "as_json", is_flag=True, help="Print the baseline document as JSON.")
@click.option("--lang", type=click.Choice(["en", "zh"]), help="Language of the messages.")
def show(file: str, as_json: bool, lang: str | None) -> None:
    """Verify the baseline in FILE (its checksum) and print what it recorded."""
    from ..selftest import BaselineDamaged, language_from_environment, load_baseline, load_catalog

    language = lang or language_from_environment()
    catalog = load_catalog(language)
    try:
        recorded = load_baseline(file)
    except BaselineDamaged as damage:
        message = catalog.message(damage.outcome, {"path": file, **damage.params})
        click.echo(message, err=True)
        click.echo(catalog.remedy("remedy.restore_baseline"), err=True)
        sys.exit(EXIT_REFUSED)
    except ContactlessError as error:
        cannot_run(str(error), language)
    if as_json:
        click.echo(json.dumps(recorded.to_document(), indent=2, ensure_ascii=False))
        return
    click.echo(catalog.label("baseline_valid"))
    for name, value in _summary(recorded, catalog):
        click.echo(f"{name}: {value}" if value else name)


def _summary(recorded: Baseline, catalog: Catalog) -> list[tuple[str, str]]:
    """(label, value) lines describing a baseline; the card shows its last digits only."""
    software = recorded.software
    rows = [
        (catalog.label("baseline_created", created=recorded.created), ""),
        (
            catalog.label("baseline_software"),
            f"{software.version} (TLV {software.tlv_implementation})",
        ),
    ]
    if recorded.reader is not None:
        who = recorded.reader
        rows.append(
            (catalog.label("reader"), f"{who.uri}: {who.vendor} {who.model}, {who.firmware}")
        )
    if recorded.card is not None:
        card = recorded.card
        rows.append(
            (
                catalog.label("baseline_card"),
                f"{card.brand} {card.aid} {card.masked_pan} {card.expiry}",
            )
        )
    config = recorded.config
    where = config.path or catalog.label("defaults")
    rows.append((catalog.label("config"), f"{where} (sha256 {config.sha256[:16]}...)"))
    if recorded.link is not None:
        link = recorded.link
        latency = f"p50 {link.p50_ms} ms, p95 {link.p95_ms} ms, p99 {link.p99_ms} ms"
        rows.append((catalog.label("baseline_link"), latency))
    return rows
