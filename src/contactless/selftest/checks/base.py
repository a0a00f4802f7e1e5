"""What a check is, and the value formats its messages share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..context import Context
from ..model import Outcome
from ..settings import SelftestSettings

__all__ = ["Check", "ms", "percent", "seconds", "text"]


@dataclass(frozen=True)
class Check:
    """One self-test check.

    ``run`` measures and returns an :class:`~contactless.selftest.model.Outcome`;
    ``category`` is the fault category the check speaks for when its outcome names none.
    The check is skipped when a check in ``needs`` did not pass (or warn), or when one in
    ``blocked_by`` failed. ``deadline`` gives the seconds it may take (default: the
    settings' ``check_deadline``).
    """

    id: str
    category: str
    run: Callable[[Context], Outcome]
    needs: tuple[str, ...] = ()
    blocked_by: tuple[str, ...] = ()
    deadline: Callable[[SelftestSettings], float] | None = None


def ms(value: float | None) -> str:
    """Milliseconds for a message: ``"0.12 ms"``, ``"48 ms"``; ``"-"`` for none."""
    if value is None:
        return "-"
    return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"


def percent(share: float) -> str:
    """A share 0-1 as ``"98%"`` (one decimal below 100 % when it matters)."""
    value = share * 100
    if value == int(value):
        return f"{int(value)}%"
    return f"{value:.1f}%"


def seconds(value: float) -> str:
    """Seconds for a message: ``"5 s"``, ``"0.5 s"``."""
    return f"{value:g} s"


def text(value: object) -> str:
    """A value for a message, ``"-"`` when unknown."""
    return "-" if value is None or value == "" else str(value)
