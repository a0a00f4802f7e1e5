"""The ``--json`` report: the self-test's results as one JSON document.

Its shape is fixed by ``schema.json`` (shipped in the package, JSON Schema 2020-12), so
scripts and fleet tools can rely on it; ``schema`` is its version. Texts (``message``,
``remedy``...) are in the report's language; ids (``id``, ``outcome``, ``category``,
``remedy_id``) are the same in every language.
"""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any

from .._version import __version__
from ..errors import ContactlessError
from .i18n import Catalog
from .model import CheckResult
from .runner import SelftestReport

__all__ = [
    "JSON_SCHEMA_VERSION",
    "error_json",
    "load_schema",
    "report_json",
    "report_json_text",
]

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


def error_json(
    error: ContactlessError,
    catalog: Catalog,
    *,
    started: datetime,
    reader: str | None = None,
    baseline: str | None = None,
    config: str | None = None,
    report: SelftestReport | None = None,
) -> dict[str, Any]:
    """The document of a self-test that could not run as asked (verdict ``error``).

    ``error`` says why (its text is English, like every error message; ``message`` is the
    report language's sentence). With ``report`` (the run finished, but its JUnit file
    could not be written) the checks and diagnosis are kept; else they are empty.
    """
    if report is not None:
        document = report_json(report, catalog)
    else:
        document = {
            "schema": JSON_SCHEMA_VERSION,
            "tool": "contactless",
            "version": __version__,
            "language": catalog.language,
            "verdict": "error",
            "complete": False,
            "incomplete": [],
            "reader": reader,
            "baseline": baseline,
            "config": config,
            "started": started.isoformat(timespec="seconds"),
            "seconds": 0.0,
            "diagnosis": [],
            "checks": [],
        }
    document["verdict"] = "error"
    document["complete"] = False
    document["error"] = {
        "type": type(error).__name__,
        "message": catalog.label("cannot_run", error=str(error)),
        "detail": error.message,
        "remedy": error.remedy,
    }
    return document


def report_json_text(report: SelftestReport | dict[str, Any], catalog: Catalog) -> str:
    """The JSON document (of ``report``, or one already built) as text (indented;
    non-ASCII kept as it is, for Chinese)."""
    document = report if isinstance(report, dict) else report_json(report, catalog)
    return json.dumps(document, indent=2, ensure_ascii=False)


def load_schema() -> dict[str, Any]:
    """The JSON Schema of the ``--json`` document."""
    text = resources.files(__package__).joinpath("schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
