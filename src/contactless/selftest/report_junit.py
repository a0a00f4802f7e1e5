"""The ``--junit FILE`` report: one JUnit test case per check, for CI and fleet dashboards.

pass -> a passing test case; fail -> ``<failure>`` (type: the outcome id, message: the
finding, text: the remedy); skip -> ``<skipped>`` with the reason; a check that could not
run to the end -> ``<error>``. JUnit has no "warning": a warn is a passing case whose
``<system-out>`` says WARN, with a ``status`` property of ``warn``. The diagnosis goes in
the suite's properties.
"""

from __future__ import annotations

import os
import socket
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

from ..errors import ConfigError, ContactlessError
from .i18n import Catalog
from .model import Status
from .runner import SelftestReport

__all__ = ["SUITE_NAME", "error_junit", "report_junit", "write_error_junit", "write_junit"]

SUITE_NAME = "contactless.selftest"


def report_junit(report: SelftestReport, catalog: Catalog) -> bytes:
    """The JUnit XML document (UTF-8 bytes with an XML declaration)."""
    failures = sum(1 for r in report.checks if r.status is Status.FAIL)
    errors = sum(1 for r in report.checks if r.id in report.incomplete)
    skipped = sum(1 for r in report.checks if r.status is Status.SKIP) - errors
    totals = {
        "tests": str(len(report.checks)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
        "time": f"{report.seconds:.3f}",
    }
    root = ET.Element("testsuites", {"name": SUITE_NAME, **totals})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": SUITE_NAME,
            **totals,
            "timestamp": report.started.isoformat(timespec="seconds"),
            "hostname": socket.gethostname(),
        },
    )
    properties = ET.SubElement(suite, "properties")
    suite_properties = [
        ("verdict", str(report.verdict)),
        ("language", catalog.language),
        ("reader", report.reader or ""),
        ("baseline", report.baseline or ""),
        ("version", report.version),
    ]
    for rank, diagnosis in enumerate(report.diagnosis, 1):
        suite_properties.append(
            (f"diagnosis.{rank}", f"{diagnosis.category} {diagnosis.confidence:.2f}")
        )
    for name, value in suite_properties:
        ET.SubElement(properties, "property", {"name": name, "value": value})
    for result in report.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"selftest.{result.category}",
                "name": result.id,
                "time": f"{result.seconds:.4f}",
            },
        )
        message = catalog.message(result.outcome, result.params)
        remedy = catalog.remedy(result.remedy) if result.remedy else ""
        if result.id in report.incomplete:
            element = ET.SubElement(case, "error", {"message": message, "type": result.outcome})
            element.text = str(result.data.get("error", ""))
        elif result.status is Status.FAIL:
            element = ET.SubElement(case, "failure", {"message": message, "type": result.outcome})
            element.text = remedy
        elif result.status is Status.SKIP:
            ET.SubElement(case, "skipped", {"message": message})
        else:
            case_properties = ET.SubElement(case, "properties")
            ET.SubElement(
                case_properties, "property", {"name": "status", "value": str(result.status)}
            )
            output = ET.SubElement(case, "system-out")
            output.text = f"{catalog.status(str(result.status))}: {message}" + (
                f"\n{remedy}" if result.status is Status.WARN and remedy else ""
            )
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def error_junit(error: ContactlessError, catalog: Catalog, *, started: datetime) -> bytes:
    """The JUnit document of a self-test that could not run: one errored test case, so a
    CI job or fleet dashboard reading the file sees the failure and why."""
    totals = {"tests": "1", "failures": "0", "errors": "1", "skipped": "0", "time": "0.000"}
    root = ET.Element("testsuites", {"name": SUITE_NAME, **totals})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": SUITE_NAME,
            **totals,
            "timestamp": started.isoformat(timespec="seconds"),
            "hostname": socket.gethostname(),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (("verdict", "error"), ("language", catalog.language)):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    case = ET.SubElement(suite, "testcase", {"classname": SUITE_NAME, "name": "selftest"})
    element = ET.SubElement(
        case,
        "error",
        {"message": catalog.label("cannot_run", error=str(error)), "type": type(error).__name__},
    )
    element.text = str(error)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def write_junit(path: str | os.PathLike[str], report: SelftestReport, catalog: Catalog) -> None:
    """Write the JUnit report to ``path``; ConfigError when it cannot be written."""
    _write(path, report_junit(report, catalog))


def write_error_junit(
    path: str | os.PathLike[str], error: ContactlessError, catalog: Catalog, *, started: datetime
) -> None:
    """Write :func:`error_junit` to ``path``; ConfigError when it cannot be written."""
    _write(path, error_junit(error, catalog, started=started))


def _write(path: str | os.PathLike[str], document: bytes) -> None:
    try:
        Path(path).write_bytes(document)
    except OSError as error:
        raise ConfigError(
            f"JUnit report {os.fspath(path)}: cannot write: {error.strerror}"
        ) from None
