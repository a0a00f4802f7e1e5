"""``contactless selftest``: the reader health self-test a technician runs on a POS terminal
after a software or hardware upgrade.

It runs a fixed list of checks (software, data, services, reader, card, link, a test
transaction, network), diagnoses the most likely fault category with a confidence, and
says what to do, in English or Simplified Chinese. A baseline saved before the upgrade
(``contactless baseline save``) lets it report what changed. See docs/selftest.md.

>>> from contactless.selftest import SelftestOptions, run_selftest
>>> report = run_selftest(SelftestOptions(reader="sim:visa"))  # doctest: +SKIP
>>> report.verdict
<Status.PASS: 'pass'>
"""

from __future__ import annotations

from .baseline import Baseline, BaselineDamaged, load_baseline, save_baseline
from .checks import CHECKS, check_ids
from .context import SelftestOptions
from .diagnosis import Diagnosis, Evidence
from .i18n import LANGUAGES, Catalog, language_from_environment, load_catalog
from .model import CATEGORIES, CheckResult, Difference, Status
from .report_json import load_schema, report_json
from .report_junit import report_junit, write_junit
from .runner import SelftestReport, run_selftest
from .snapshot import baseline_from_report

__all__ = [
    "CATEGORIES",
    "CHECKS",
    "LANGUAGES",
    "Baseline",
    "BaselineDamaged",
    "Catalog",
    "CheckResult",
    "Diagnosis",
    "Difference",
    "Evidence",
    "SelftestOptions",
    "SelftestReport",
    "Status",
    "baseline_from_report",
    "check_ids",
    "language_from_environment",
    "load_baseline",
    "load_catalog",
    "load_schema",
    "report_json",
    "report_junit",
    "run_selftest",
    "save_baseline",
    "write_junit",
]
