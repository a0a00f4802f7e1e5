"""The ``--json`` report: the self-test's results as one JSON document.

Its shape is fixed by ``schema.json`` (shipped in the package, JSON Schema 2020-12), so
scripts and fleet tools can rely on it; ``schema`` is its version. Texts (``message``,
``remedy``...) are in the report's language; ids (``id``, ``outcome``, ``category``,
``remedy_id``) are the same in every language.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from .i18n import Catalog
from .model import CheckResult
from .runner import SelftestReport

__all__ = ["JSON_SCHEMA_VERSION", "load_schema", "report_json", "report_json_text"]

#: Version of the document's shape (its "schema" field).
JSON_SCHEMA_VERSION = 1


def _check(result: CheckResult, catalog: Catalog) -> dict[str, Any]:
    return {
        "id": result.id,
        "title": catalog.check(result.id),
        "status": str(result.status),
        "category": result.category,
        "outcome": result.outcome,
        "message": catalog.message(result.outcome, result.params),
        "remedy": catalog.remedy(result.remedy) if result.remedy else None,
        "remedy_id": result.remedy,
        "data": dict(result.data),
        "differences": [difference.to_json() for difference in result.differences],
        "seconds": result.seconds,
    }


def report_json(report: SelftestReport, catalog: Catalog) -> dict[str, Any]:
    """The report as a JSON-ready dict (see ``schema.json``)."""
    return {
        "schema": JSON_SCHEMA_VERSION,
        "tool": "contactless",
        "version": report.version,
        "language": catalog.language,
        "verdict": str(report.verdict),
        "complete": not report.incomplete,
        "incomplete": list(report.incomplete),
        "reader": report.reader,
        "baseline": report.baseline,
        "config": report.config,
        "started": report.started.isoformat(timespec="seconds"),
        "seconds": report.seconds,
        "diagnosis": [
            {
                "category": diagnosis.category,
                "name": catalog.category(diagnosis.category),
                "confidence": diagnosis.confidence,
                "evidence": [
                    {
                        "check": item.check,
                        "status": str(item.status),
                        "outcome": item.outcome,
                        "weight": item.weight,
                        "message": catalog.message(item.outcome, item.params),
                    }
                    for item in diagnosis.evidence
                ],
                "remedies": [catalog.remedy(remedy) for remedy in diagnosis.remedies],
                "remedy_ids": list(diagnosis.remedies),
            }
            for diagnosis in report.diagnosis
        ],
        "checks": [_check(result, catalog) for result in report.checks],
    }


def report_json_text(report: SelftestReport, catalog: Catalog) -> str:
    """The JSON document as text (indented; non-ASCII kept as it is, for Chinese)."""
    return json.dumps(report_json(report, catalog), indent=2, ensure_ascii=False)


def load_schema() -> dict[str, Any]:
    """The JSON Schema of the ``--json`` document."""
    text = resources.files(__package__).joinpath("schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
