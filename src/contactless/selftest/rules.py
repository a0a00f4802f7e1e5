"""The outcome table (``outcomes.toml``): what each check outcome means.

For every outcome id: its status, the remedy to show, and its evidence weights per fault
category; for every category: its generic remedies and whether settlement with the
acquirer should be confirmed. Loaded once, and checked as it loads, so a typo in the
table fails the self-test's own tests rather than a technician's run.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType

from ..errors import ConfigError
from .model import CATEGORIES, CHECK_STATUSES, Status

__all__ = ["CategoryRule", "OutcomeRule", "Rules", "load_rules"]

_SOURCE = "contactless/selftest/outcomes.toml"


@dataclass(frozen=True)
class OutcomeRule:
    """What one outcome means."""

    id: str
    status: Status
    remedy: str | None = None
    weights: Mapping[str, float] = field(default_factory=dict)

    @property
    def category(self) -> str | None:
        """The category this outcome points at most (ties: the earlier in CATEGORIES)."""
        if not self.weights:
            return None
        return max(
            CATEGORIES, key=lambda name: (self.weights.get(name, 0.0), -CATEGORIES.index(name))
        )


@dataclass(frozen=True)
class CategoryRule:
    """A fault category's generic remedies (in order) and whether, once it is fixed, the
    technician should confirm settlement with the acquiring bank."""

    id: str
    remedies: tuple[str, ...]
    confirm_settlement: bool


@dataclass(frozen=True)
class Rules:
    outcomes: Mapping[str, OutcomeRule]
    categories: Mapping[str, CategoryRule]


def _problem(message: str) -> ConfigError:
    return ConfigError(f"{_SOURCE}: {message}", remedy="reinstall contactless; the file is damaged")


def _outcome(name: str, table: object) -> OutcomeRule:
    if not isinstance(table, dict):
        raise _problem(f"[{name!r}] is not a table")
    unknown = set(table) - {"status", "remedy", "weights"}
    if unknown:
        raise _problem(f"[{name!r}] has unknown keys {sorted(unknown)}")
    try:
        status = Status(str(table.get("status")))
        if status not in CHECK_STATUSES:
            raise ValueError(status)
    except ValueError:
        raise _problem(f"[{name!r}] status must be pass, warn, fail or skip") from None
    remedy = table.get("remedy")
    if remedy is not None and not (isinstance(remedy, str) and remedy.startswith("remedy.")):
        raise _problem(f"[{name!r}] remedy must be a remedy id")
    weights = table.get("weights", {})
    if not isinstance(weights, dict):
        raise _problem(f"[{name!r}] weights must be a table")
    for category, weight in weights.items():
        if category not in CATEGORIES:
            raise _problem(f"[{name!r}] unknown category {category!r}")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < 1:
            raise _problem(f"[{name!r}] weight for {category} must be between 0 and 1")
    if weights and status in (Status.PASS, Status.SKIP):
        raise _problem(f"[{name!r}] a {status} outcome is no evidence: it takes no weights")
    if not weights and status in (Status.WARN, Status.FAIL):
        raise _problem(f"[{name!r}] a {status} outcome needs evidence weights")
    return OutcomeRule(name, status, remedy, MappingProxyType(dict(weights)))


def _category(name: str, table: object) -> CategoryRule:
    if name not in CATEGORIES:
        raise _problem(f"unknown category [category.{name}]")
    if not isinstance(table, dict):
        raise _problem(f"[category.{name}] is not a table")
    remedies = table.get("remedies")
    if not isinstance(remedies, list) or not all(isinstance(r, str) for r in remedies):
        raise _problem(f"[category.{name}] remedies must be a list of remedy ids")
    settlement = table.get("confirm_settlement")
    if not isinstance(settlement, bool):
        raise _problem(f"[category.{name}] confirm_settlement must be true or false")
    return CategoryRule(name, tuple(remedies), settlement)


@functools.cache
def load_rules() -> Rules:
    """The outcome table, checked (a bad table raises ConfigError naming the entry)."""
    raw = resources.files(__package__).joinpath("outcomes.toml").read_text("utf-8")
    document = tomllib.loads(raw)
    categories_table = document.pop("category", {})
    outcomes = {name: _outcome(name, table) for name, table in document.items()}
    categories = {name: _category(name, table) for name, table in categories_table.items()}
    missing = set(CATEGORIES) - set(categories)
    if missing:
        raise _problem(f"no [category.*] table for {sorted(missing)}")
    return Rules(MappingProxyType(outcomes), MappingProxyType(categories))
