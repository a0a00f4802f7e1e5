"""The self-test's vocabulary: statuses, fault categories, check outcomes and results.

A check returns an :class:`Outcome`: which of its outcomes happened (an id such as
``"reader.not_found"``), the values measured, and the values its message needs. What that
outcome *means* (status, remedy, how strongly it points at each fault category) is looked
up in ``outcomes.toml``, and what it *says* in ``messages/<lang>.toml``: checks hold no
prose and no judgement, only measurements.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "CATEGORIES",
    "CHECK_STATUSES",
    "CheckResult",
    "Difference",
    "Outcome",
    "Status",
]


class Status(enum.StrEnum):
    """How a check ended. ``skip`` always carries its reason (the outcome message).

    ``error`` is only ever a verdict, never a check's status: the self-test could not run,
    or could not finish a check, and found no fault to report instead.
    """

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"


#: The statuses a check (an outcome in outcomes.toml) may have.
CHECK_STATUSES: Final[tuple[Status, ...]] = (Status.PASS, Status.WARN, Status.FAIL, Status.SKIP)


#: The fault categories the diagnosis speaks in, in tie-break order (an unfinished
#: upgrade explains the most symptoms, so it wins a tie).
CATEGORIES: Final[tuple[str, ...]] = (
    "upgrade_incomplete",
    "reader_fault",
    "network",
    "card_or_pin",
    "version_incompatible",
    "data_anomaly",
    "interference",
)


@dataclass(frozen=True, slots=True)
class Difference:
    """One way the terminal differs from its pre-upgrade baseline."""

    field: str
    before: str | None
    after: str | None

    def to_json(self) -> dict[str, str | None]:
        """JSON-ready form."""
        return {"field": self.field, "before": self.before, "after": self.after}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a check found: ``id`` names the outcome (a key of ``outcomes.toml`` and of the
    message catalogs); ``params`` are the values its message shows (already formatted,
    language-neutral: numbers, versions, identifiers); ``data`` the measured values."""

    id: str
    params: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    differences: tuple[Difference, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's result, ready for the diagnosis and the reports.

    ``outcome`` is the message id; ``remedy`` the remedy id (or ``None``); ``category``
    the fault category this result speaks for (the one its outcome points at most, else
    the check's own); ``weights`` how strongly it points at each category.
    """

    id: str
    status: Status
    category: str
    outcome: str
    params: Mapping[str, str]
    data: Mapping[str, Any]
    remedy: str | None = None
    weights: Mapping[str, float] = field(default_factory=dict)
    differences: tuple[Difference, ...] = ()
    seconds: float = 0.0
