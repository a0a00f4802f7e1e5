"""The runner: order, dependencies, deadlines, crashes, progress, and no false alarms."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from selftest_support import outcomes, run, top

from contactless.errors import ConfigError
from contactless.selftest import CHECKS, CheckResult, SelftestOptions, Status, check_ids
from contactless.selftest.checks import Check
from contactless.selftest.context import Context
from contactless.selftest.model import Outcome
from contactless.selftest.rules import load_rules
from contactless.selftest.runner import _run_one


def test_a_healthy_sim_terminal_passes() -> None:
    report = run("sim:visa")
    assert report.verdict == "pass"
    assert report.diagnosis == ()
    assert report.incomplete == ()
    assert [result.id for result in report.checks] == check_ids()
    assert {result.status for result in report.checks} <= {Status.PASS, Status.SKIP}
    found = outcomes(report)
    assert found["reader.presence"] == "reader.ok"
    assert found["link.quality"] == "link.ok"
    assert found["emv.transaction"] == "emv.ok"
    assert report.result("link.quality").data["completed"] == 50
    assert report.result("emv.transaction").data["cryptogram"] == "ARQC"


def test_fifty_runs_in_a_row_raise_no_false_alarm() -> None:
    alarms = []
    for attempt in range(50):
        report = run("sim:visa")
        if report.verdict != "pass" or report.diagnosis or report.incomplete:
            alarms.append((attempt, outcomes(report)))
    assert alarms == []


@pytest.mark.parametrize("profile", ["mastercard", "amex", "jcb", "discover", "unionpay"])
def test_every_emulated_brand_passes(profile: str) -> None:
    report = run(f"sim:{profile}", loops=10)
    assert report.verdict == "pass", outcomes(report)


def test_checks_after_a_missing_reader_are_skipped_not_failed() -> None:
    report = run("sim:visa?hang_after=0", loops=5)
    # The reader is there but the link is dead: the transaction is skipped, once.
    assert outcomes(report)["emv.transaction"] == "emv.skipped_link"
    for check in ("card.pan", "card.expiry", "card.pin_tries", "card.match"):
        result = report.result(check)
        assert result.status is Status.SKIP
        assert result.outcome == "check.needs"
        assert result.params == {"check": "emv.transaction"}
    assert [d.category for d in report.diagnosis] == ["reader_fault", "interference"]


def test_a_failing_service_blocks_the_reader_check(tmp_path: Path) -> None:
    rules = load_rules()
    ctx = Context.create(SelftestOptions(reader="sim:visa"))
    ctx.results["service.pcscd"] = CheckResult(
        "service.pcscd", Status.FAIL, "reader_fault", "service.pcscd_down", {}, {}
    )
    presence = next(check for check in CHECKS if check.id == "reader.presence")
    result, broken = _run_one(presence, ctx, rules)
    assert (result.status, result.outcome, broken) == (Status.SKIP, "check.needs", False)
    assert result.params == {"check": "service.pcscd"}


def one(run_check: Any, deadline: float | None = None) -> tuple[CheckResult, bool, Context]:
    check = Check(
        "card.pan",
        "card_or_pin",
        run_check,
        deadline=(lambda settings: deadline) if deadline else None,
    )
    ctx = Context.create(SelftestOptions(reader="sim:visa"))
    result, broken = _run_one(check, ctx, load_rules())
    return result, broken, ctx


def test_a_crashing_check_is_reported_and_marks_the_run_incomplete() -> None:
    def crash(ctx: Context) -> Outcome:
        raise KeyError("oops")

    result, broken, _ = one(crash)
    assert broken
    assert (result.status, result.outcome) == (Status.SKIP, "check.crashed")
    assert result.params == {"error": "KeyError"}
    assert "oops" in result.data["error"]


def test_an_unknown_outcome_is_a_crash_not_a_silent_pass() -> None:
    result, broken, _ = one(lambda ctx: Outcome("card.looks_fine"))
    assert broken and result.outcome == "check.crashed"


def test_a_check_past_its_deadline_is_abandoned() -> None:
    release = threading.Event()

    def stuck(ctx: Context) -> Outcome:
        release.wait(10)
        return Outcome("card.pan_ok", {"pan": "-"})

    started = time.monotonic()
    result, broken, ctx = one(stuck, deadline=0.2)
    release.set()
    assert broken and result.outcome == "check.timed_out"
    assert ctx.reader_unusable  # nobody touches a reader a stuck call may still hold
    assert time.monotonic() - started < 9  # returned at the deadline, not when it ended


@pytest.mark.parametrize(
    "uri",
    ["nosuch:reader", "sim:nosuchcard", "sim:visa?colour=blue", "sim:visa?error_rate=2"],
)
def test_a_reader_uri_that_cannot_work_stops_the_self_test(uri: str) -> None:
    with pytest.raises(ConfigError):
        run(uri)


def test_a_missing_baseline_file_stops_the_self_test(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        run("sim:visa", baseline=str(tmp_path / "none.json"))


class Recorder:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []
        self.loops: list[tuple[int, int]] = []

    def check_started(self, check_id: str, index: int, total: int) -> None:
        assert total == len(CHECKS) and index == len(self.started)
        self.started.append(check_id)

    def check_finished(self, result: CheckResult) -> None:
        self.finished.append(result.id)

    def loop_progress(self, check_id: str, done: int, total: int, stats: Mapping[str, Any]) -> None:
        assert check_id == "link.quality" and 0.0 <= stats["success_rate"] <= 1.0
        self.loops.append((done, total))


def test_progress_is_reported() -> None:
    recorder = Recorder()
    run("sim:visa", loops=7, progress=recorder)
    assert recorder.started == recorder.finished == check_ids()
    assert recorder.loops == [(n, 7) for n in range(1, 8)]


def test_warnings_alone_give_a_warn_verdict() -> None:
    report = run("sim:visa?error_rate=0.1&seed=2")
    assert {r.status for r in report.checks if r.status not in (Status.PASS, Status.SKIP)} == {
        Status.WARN
    }
    assert report.verdict == "warn"
    assert top(report) == "interference"


def test_the_report_keeps_what_a_baseline_needs_but_never_the_pan_in_repr() -> None:
    report = run("sim:visa")
    seen = report.observations
    assert seen is not None and seen.pan == "4761739001010010"
    assert "4761739001010010" not in repr(report)
    assert seen.reader is not None and seen.reader["firmware"] == seen.software["version"]


def test_without_a_reader_uri_the_first_hardware_reader_is_looked_for(tmp_path: Path) -> None:
    config = tmp_path / "terminal.toml"
    config.write_text("[selftest]\ncard_wait = 0.2\nexchange_timeout = 0.2\nloops = 3\n")
    report = run(None, config=str(config))
    presence = report.result("reader.presence")
    detected = presence.data["detected"]
    assert {entry["backend"] for entry in detected} >= {"sim", "pcsc", "nfc"}
    # Emulated and recorded readers are never "the terminal's reader".
    assert report.reader is None or report.reader.split(":")[0] not in ("sim", "replay")
    if report.reader is None:
        assert presence.outcome == "reader.none_detected"
        assert top(report) == "reader_fault"


def test_a_check_that_could_not_finish_makes_the_verdict_error_not_pass() -> None:
    def broken_driver(uri: str, *, timeout: float) -> Any:
        raise RuntimeError("driver bug")

    report = run("sim:visa", opener=broken_driver)
    assert report.incomplete == ("reader.presence",)
    assert not any(result.status == "fail" for result in report.checks)
    assert report.verdict == "error"
