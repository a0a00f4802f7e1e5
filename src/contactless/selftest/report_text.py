"""The text report: a table of checks, what changed since the baseline, the diagnosis and
the verdict, drawn with rich (colours only on a terminal). Every word comes from the
catalog of the report's language; values come from the checks."""

from __future__ import annotations

from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from .i18n import Catalog
from .model import Status
from .runner import SelftestReport

__all__ = ["STATUS_STYLES", "render_text"]

#: How each status looks on a terminal.
STATUS_STYLES: dict[str, str] = {
    "pass": "bold green",
    "warn": "bold yellow",
    "fail": "bold red",
    "skip": "dim",
    "error": "bold magenta",
}


def _header(report: SelftestReport, catalog: Catalog) -> Text:
    header = Text(catalog.label("title"), style="bold")
    parts = [
        (catalog.label("reader"), report.reader or catalog.label("auto")),
        (catalog.label("baseline"), report.baseline or catalog.label("none")),
        (catalog.label("config"), report.config or catalog.label("defaults")),
    ]
    for name, value in parts:
        header.append("   ")
        header.append(catalog.label("field", name=name), style="bold")
        header.append(value)
    header.append("   ")
    header.append(catalog.label("took", seconds=f"{report.seconds:.2f}"), style="dim")
    return header


def _checks_table(report: SelftestReport, catalog: Catalog) -> Table:
    table = Table(show_lines=False, expand=True)
    table.add_column(catalog.label("col_check"), min_width=24, no_wrap=True, overflow="fold")
    table.add_column(catalog.label("col_result"), no_wrap=True)
    # "fold": a Chinese sentence has no spaces to wrap at, and must not be cut short.
    table.add_column(catalog.label("col_finding"), ratio=1, overflow="fold")
    for result in report.checks:
        name = Text(catalog.check(result.id))
        name.append(f"\n{result.id}", style="dim")
        status = Text(catalog.status(str(result.status)), style=STATUS_STYLES[str(result.status)])
        finding = Text(catalog.message(result.outcome, result.params))
        # The raw error text (English in every language) names what exactly is wrong, such
        # as the config key; it goes on its own "detail:" line, apart from the sentence.
        detail = result.data.get("error")
        if detail:
            finding.append(
                f"\n{catalog.label('field', name=catalog.label('detail'))}{detail}", style="dim"
            )
        if result.remedy and result.status in (Status.WARN, Status.FAIL):
            finding.append(f"\n→ {catalog.remedy(result.remedy)}", style="cyan")
        table.add_row(name, status, finding)
    return table


def _differences_table(report: SelftestReport, catalog: Catalog) -> Table | None:
    rows = [
        (result.id, difference) for result in report.checks for difference in result.differences
    ]
    if not rows:
        return None
    table = Table(title=catalog.label("differences"), title_justify="left", expand=True)
    table.add_column(catalog.label("col_field"), ratio=2)
    table.add_column(catalog.label("col_before"), ratio=3)
    table.add_column(catalog.label("col_after"), ratio=3)
    for _, difference in rows:
        table.add_row(
            Text(difference.field),
            Text(difference.before if difference.before is not None else "-"),
            Text(difference.after if difference.after is not None else "-", style="bold"),
        )
    return table


def _diagnosis(report: SelftestReport, catalog: Catalog) -> Group | None:
    if not report.diagnosis:
        return None
    parts: list[Text | Padding] = [Text(catalog.label("diagnosis"), style="bold underline")]
    for rank, diagnosis in enumerate(report.diagnosis, 1):
        title = catalog.label(
            "diagnosis_item",
            rank=rank,
            category=catalog.category(diagnosis.category),
            confidence=f"{diagnosis.confidence:.0%}",
        )
        parts.append(Text(title, style="bold red" if rank == 1 else "bold"))
        evidence = Text(catalog.label("evidence"), style="bold")
        for item in diagnosis.evidence:
            evidence.append(f"\n  • {item.check}: ", style="dim")
            evidence.append(catalog.message(item.outcome, item.params))
        parts.append(Padding(evidence, (0, 0, 0, 3)))
        steps = Text(catalog.label("remedies"), style="bold")
        for number, remedy in enumerate(diagnosis.remedies, 1):
            steps.append(f"\n  {number}. {catalog.remedy(remedy)}")
        parts.append(Padding(steps, (0, 0, 0, 3)))
    return Group(*parts)


def _verdict(report: SelftestReport, catalog: Catalog) -> Text:
    verdict = str(report.verdict)
    line = Text(
        catalog.label("verdict", verdict=catalog.status(verdict)), style=STATUS_STYLES[verdict]
    )
    line.append(" ")
    line.append(catalog.label(f"verdict_{verdict}"))
    return line


def render_text(report: SelftestReport, catalog: Catalog, console: Console) -> None:
    """Print the report on ``console``."""
    console.print(_header(report, catalog))
    console.print(_checks_table(report, catalog))
    differences = _differences_table(report, catalog)
    if differences is not None:
        console.print(differences)
    diagnosis = _diagnosis(report, catalog)
    if diagnosis is not None:
        console.print(diagnosis)
    console.print(_verdict(report, catalog))
    if report.incomplete:
        checks = ", ".join(report.incomplete)
        console.print(Text(catalog.label("incomplete", checks=checks), style="bold magenta"))
