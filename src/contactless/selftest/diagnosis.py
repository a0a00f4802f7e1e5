"""From check results to "what is wrong, how sure, what to do".

Each warn or fail result is evidence: its outcome's weights (``outcomes.toml``) say how
strongly it points at each fault category. A category's confidence combines its evidence
as a noisy-OR, ``1 - (1 - w1)(1 - w2)...``: each piece alone could explain the fault, two
independent ones make it likelier, none makes it certain. Categories are ranked by
confidence (ties in the order of :data:`~contactless.selftest.model.CATEGORIES`).

The remedies of a category come in this order: those of the evidence that speaks for it
first (strongest first),
then the category's generic ones, then "run a test transaction after fixing", and for
categories that touch money in flight (network, data), "confirm settlement with the
acquiring bank".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .model import CATEGORIES, CheckResult, Status
from .rules import Rules

__all__ = ["CONTACT_ACQUIRER", "RUN_TEST_TRANSACTION", "Diagnosis", "Evidence", "diagnose"]

RUN_TEST_TRANSACTION = "remedy.run_test_transaction"
CONTACT_ACQUIRER = "remedy.contact_acquirer"


@dataclass(frozen=True)
class Evidence:
    """A result that points at a category, and how strongly."""

    check: str
    status: Status
    outcome: str
    params: Mapping[str, str]
    weight: float


@dataclass(frozen=True)
class Diagnosis:
    """A likely cause: its category, confidence 0-1, the evidence (strongest first) and
    remedy ids in the order to try them."""

    category: str
    confidence: float
    evidence: tuple[Evidence, ...]
    remedies: tuple[str, ...]


def _confidence(weights: Iterable[float]) -> float:
    doubt = 1.0
    for weight in weights:
        doubt *= 1.0 - weight
    return round(1.0 - doubt, 3)


def diagnose(results: Iterable[CheckResult], rules: Rules) -> list[Diagnosis]:
    """The likely causes behind ``results``, most likely first; empty when nothing
    points anywhere (a healthy terminal)."""
    # Per category: the evidence, and the result's remedy when the result speaks for that
    # category first (a "slow link" remedy belongs to interference, not to the reader).
    evidence: dict[str, list[tuple[Evidence, str | None]]] = {name: [] for name in CATEGORIES}
    for result in results:
        if result.status not in (Status.WARN, Status.FAIL):
            continue
        for category, weight in result.weights.items():
            item = Evidence(result.id, result.status, result.outcome, result.params, weight)
            remedy = result.remedy if result.category == category else None
            evidence[category].append((item, remedy))
    found: list[Diagnosis] = []
    for category in CATEGORIES:
        items = sorted(evidence[category], key=lambda pair: -pair[0].weight)
        if not items:
            continue
        rule = rules.categories[category]
        remedies: list[str] = []
        specific = [remedy for _, remedy in items if remedy is not None]
        for remedy in (*specific, *rule.remedies, RUN_TEST_TRANSACTION):
            if remedy not in remedies:
                remedies.append(remedy)
        if rule.confirm_settlement:
            remedies.append(CONTACT_ACQUIRER)
        found.append(
            Diagnosis(
                category,
                _confidence(item.weight for item, _ in items),
                tuple(item for item, _ in items),
                tuple(remedies),
            )
        )
    found.sort(key=lambda diagnosis: (-diagnosis.confidence, CATEGORIES.index(diagnosis.category)))
    return found
