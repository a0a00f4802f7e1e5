"""A rich progress display for the self-test on a terminal: which check runs, and a bar
for the link-quality round trips with the success rate and retries so far."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from .i18n import Catalog
from .model import CheckResult

__all__ = ["RichProgress"]


class RichProgress:
    """Draws progress on ``console`` (use it as a context manager); transient, so the
    report that follows is not mixed with it."""

    def __init__(self, console: Console, catalog: Catalog) -> None:
        self.catalog = catalog
        self.display = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._checks: TaskID | None = None
        self._loops: dict[str, TaskID] = {}

    def __enter__(self) -> Self:
        self.display.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.display.stop()

    def check_started(self, check_id: str, index: int, total: int) -> None:
        description = f"{self.catalog.label('progress_checks')}: {self.catalog.check(check_id)}"
        if self._checks is None:
            self._checks = self.display.add_task(description, total=total, stats="")
        self.display.update(self._checks, description=description, completed=index)

    def check_finished(self, result: CheckResult) -> None:
        if self._checks is not None:
            self.display.advance(self._checks)

    def loop_progress(self, check_id: str, done: int, total: int, stats: Mapping[str, Any]) -> None:
        task = self._loops.get(check_id)
        if task is None:
            task = self.display.add_task(self.catalog.label("progress_link"), total=total, stats="")
            self._loops[check_id] = task
        text = self.catalog.label(
            "progress_stats",
            success=f"{float(stats.get('success_rate', 0.0)):.0%}",
            retries=stats.get("retries", 0),
        )
        self.display.update(task, completed=done, stats=text)
