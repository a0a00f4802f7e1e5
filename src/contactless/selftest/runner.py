"""Run every check in order, each within its deadline, and diagnose the results.

>>> report = run_selftest(SelftestOptions(reader="sim:visa"))  # doctest: +SKIP
>>> report.verdict, [d.category for d in report.diagnosis]
('pass', [])

A check runs on a worker thread so that a call with no deadline of its own (a host name
lookup, a driver that never returns) cannot hang the self-test: past its deadline the
check is reported as timed out and the self-test goes on without it (and without the
reader, which the stuck call may still hold).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._version import __version__
from ..errors import ConfigError, LocalProtocolError
from ..hexutil import to_hex
from .checks import CHECKS, Check
from .checks.software import DAMAGED_INSTALLATION, INTEGRITY
from .context import Context, LinkStats, SelftestOptions
from .diagnosis import Diagnosis, diagnose
from .model import CheckResult, Outcome, Status
from .rules import Rules, load_rules
from .settings import config_hash, config_values

__all__ = ["Observations", "SelftestReport", "run_selftest"]


@dataclass(frozen=True)
class Observations:
    """What the run saw that a baseline keeps. ``pan`` is only held in memory, to
    fingerprint the test card; it is never printed or written."""

    software: dict[str, Any]
    config_path: str | None
    config_values: dict[str, Any]
    config_sha256: str
    reader: dict[str, Any] | None = None
    card: dict[str, Any] | None = None
    pan: str | None = field(default=None, repr=False)
    link: LinkStats | None = None


@dataclass(frozen=True)
class SelftestReport:
    """The outcome of one self-test run.

    ``verdict`` is ``fail`` when any check failed, else ``error`` when a check could not
    run to the end (crashed or timed out: the self-test itself did not fully work, so it
    cannot vouch for the terminal), else ``warn`` when any warned, else ``pass``.
    ``incomplete`` lists the checks that could not run to the end.
    """

    checks: tuple[CheckResult, ...]
    diagnosis: tuple[Diagnosis, ...]
    verdict: Status
    incomplete: tuple[str, ...]
    reader: str | None
    baseline: str | None
    config: str | None
    started: datetime
    seconds: float
    version: str = __version__
    observations: Observations | None = field(default=None, repr=False)

    def result(self, check_id: str) -> CheckResult:
        """The result of the check ``check_id``."""
        for result in self.checks:
            if result.id == check_id:
                return result
        raise KeyError(check_id)


class _Fatal(Exception):
    def __init__(self, error: ConfigError | LocalProtocolError) -> None:
        super().__init__(str(error))
        self.error = error


def _blocked(check: Check, results: dict[str, CheckResult]) -> str | None:
    """The check that keeps ``check`` from running, or None."""
    for needed in check.needs:
        result = results.get(needed)
        if result is None or result.status not in (Status.PASS, Status.WARN):
            return needed
    for blocker in check.blocked_by:
        result = results.get(blocker)
        if result is not None and result.status is Status.FAIL:
            return blocker
    return None


def _result(check: Check, outcome: Outcome, rules: Rules, seconds: float) -> CheckResult:
    rule = rules.outcomes.get(outcome.id)
    if rule is None:
        raise LookupError(f"check {check.id} reported unknown outcome {outcome.id!r}")
    return CheckResult(
        id=check.id,
        status=rule.status,
        category=rule.category or check.category,
        outcome=outcome.id,
        params=dict(outcome.params),
        data=dict(outcome.data),
        remedy=rule.remedy,
        weights=dict(rule.weights),
        differences=outcome.differences,
        seconds=round(seconds, 4),
    )


def _installation_damaged(ctx: Context) -> bool:
    """The integrity check found installed files changed or missing. A check that then
    raises what looks like a usage error (a data file of the package that cannot be read
    is a ConfigError) could not run because of that damage: it is reported as such, and
    the self-test goes on to diagnose the damage instead of stopping."""
    integrity = ctx.results.get(INTEGRITY.id)
    return integrity is not None and integrity.outcome == DAMAGED_INSTALLATION


def _run_one(check: Check, ctx: Context, rules: Rules) -> tuple[CheckResult, bool]:
    """Run ``check``; return its result and whether it failed to run to the end."""
    blocker = _blocked(check, ctx.results)
    if blocker is not None:
        return _result(check, Outcome("check.needs", {"check": blocker}), rules, 0.0), False
    deadline = (check.deadline or (lambda settings: settings.check_deadline))(ctx.settings)
    box: list[Outcome | BaseException] = []

    def work() -> None:
        try:
            box.append(check.run(ctx))
        except BaseException as error:  # reported below, on the runner's thread
            box.append(error)

    started = time.monotonic()
    worker = threading.Thread(target=work, name=f"selftest {check.id}", daemon=True)
    worker.start()
    worker.join(deadline)
    seconds = time.monotonic() - started
    if worker.is_alive():
        ctx.reader_unusable = True
        timed_out = Outcome("check.timed_out", {"seconds": f"{deadline:g} s"})
        return _result(check, timed_out, rules, seconds), True
    [value] = box
    if isinstance(value, ConfigError | LocalProtocolError) and not _installation_damaged(ctx):
        raise _Fatal(value)
    if isinstance(value, BaseException):
        if not isinstance(value, Exception):
            raise value  # KeyboardInterrupt and friends stop the run
        crashed = Outcome(
            "check.crashed",
            {"error": type(value).__name__},
            {"error": f"{type(value).__name__}: {value}"},
        )
        return _result(check, crashed, rules, seconds), True
    try:
        return _result(check, value, rules, seconds), False
    except LookupError as error:
        crashed = Outcome("check.crashed", {"error": "LookupError"}, {"error": str(error)})
        return _result(check, crashed, rules, seconds), True


def _verdict(results: list[CheckResult], incomplete: list[str]) -> Status:
    statuses = {result.status for result in results}
    if Status.FAIL in statuses:
        return Status.FAIL
    if incomplete:  # a check that could not finish may have hidden a fault: no PASS
        return Status.ERROR
    if Status.WARN in statuses:
        return Status.WARN
    return Status.PASS


def _observations(ctx: Context) -> Observations | None:
    """What a baseline needs, or None when the software is too broken to tell."""
    try:
        from ..tlv import IMPLEMENTATION

        values = config_values(ctx.terminal)
    except ImportError:
        return None
    reader = None
    if ctx.identity is not None and ctx.reader_uri is not None:
        identity = ctx.identity
        reader = {
            "uri": ctx.reader_uri,
            "vendor": identity.vendor,
            "model": identity.model,
            "firmware": ctx.firmware,
            "serial": identity.serial,
            "driver": identity.driver,
            "features": list(ctx.features),
        }
    card = None
    pan = None
    if ctx.card_data is not None:
        data = ctx.card_data
        pan = data.pan
        card = {
            "atr": to_hex(data.atr) if data.atr else None,
            "aid": to_hex(data.aid),
            "brand": data.brand,
            "expiry": data.expiry,
        }
    return Observations(
        software={
            "version": __version__,
            "tlv_implementation": IMPLEMENTATION,
            "backends": dict(ctx.backends),
        },
        config_path=ctx.config_path,
        config_values=values,
        config_sha256=config_hash(values),
        reader=reader,
        card=card,
        pan=pan,
        link=ctx.link,
    )


def run_selftest(
    options: SelftestOptions | None = None, *, rules: Rules | None = None
) -> SelftestReport:
    """Run the self-test and return its report.

    Raises :class:`~contactless.errors.ConfigError` (or LocalProtocolError) when the
    self-test cannot run as asked: a baseline file that does not exist, a malformed or
    unknown reader URI. Everything the terminal itself gets wrong is a result instead.
    """
    options = options or SelftestOptions()
    rules = rules or load_rules()
    started = datetime.now().astimezone()
    clock = time.monotonic()
    ctx = Context.create(options)
    results: list[CheckResult] = []
    incomplete: list[str] = []
    try:
        for index, check in enumerate(CHECKS):
            ctx.progress.check_started(check.id, index, len(CHECKS))
            try:
                result, broken = _run_one(check, ctx, rules)
            except _Fatal as fatal:
                raise fatal.error from None
            ctx.results[check.id] = result
            results.append(result)
            if broken:
                incomplete.append(check.id)
            ctx.progress.check_finished(result)
    finally:
        ctx.close()
    return SelftestReport(
        checks=tuple(results),
        diagnosis=tuple(diagnose(results, rules)),
        verdict=_verdict(results, incomplete),
        incomplete=tuple(incomplete),
        reader=ctx.reader_uri,
        baseline=str(options.baseline) if options.baseline is not None else None,
        config=ctx.config_path,
        started=started,
        seconds=round(time.monotonic() - clock, 3),
        observations=_observations(ctx),
    )
