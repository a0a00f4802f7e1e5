"""How well does the reader talk to the card? N round trips of SELECT PPSE: success rate,
retries, latency percentiles, against the thresholds and the baseline's profile.

A round trip succeeds when the card answers with a well-formed response (any status
word: a card without a PPSE answers 6A82 every time, which is a perfectly good link). It
fails on a timeout, a transmission error or a garbled answer, and is retried like a
reader retransmits. Intermittent failures while other round trips work point at
interference; nothing working at all points at the reader.

A ``replay:`` reader plays a recorded trace back: it answers the recorded commands in
order and cannot repeat a round trip, so the link is not measured (``link.skipped_replay``).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from ...apdu import Command
from ...errors import (
    CardRemoved,
    RemoteProtocolError,
    TlvError,
    TransportError,
    TransportTimeout,
)
from ...session import Card
from ...tlv import decode
from ..context import Context, LinkStats
from ..model import Difference, Outcome
from ..settings import SelftestSettings
from .base import Check, ms, percent, text

__all__ = ["LINK", "SELECT_PPSE", "measure_link", "replaying"]

SELECT_PPSE = Command(0x00, 0xA4, 0x04, 0x00, b"2PAY.SYS.DDF01", le=256)

#: Failure kind for each error a round trip can end with (first match wins).
_FAILURE_KINDS: tuple[tuple[type[Exception], str], ...] = (
    (TransportTimeout, "timeout"),
    (TransportError, "transport_error"),
    (RemoteProtocolError, "garbled"),
)


#: The reader scheme whose "card" is a recorded trace (transport.replay).
_REPLAY_SCHEME = "replay"


def replaying(ctx: Context) -> bool:
    """Whether the reader plays a recorded trace back (a ``replay:`` URI): it has no live
    card, so checks that exchange their own commands with one cannot run."""
    reader = ctx.reader
    if reader is not None and type(reader).scheme == _REPLAY_SCHEME:
        return True
    return ctx.reader_scheme == _REPLAY_SCHEME


def _round_trip(card: Card, timeout: float) -> tuple[float | None, str | None]:
    """One attempt: (latency in ms, None) or (None, failure kind). CardRemoved propagates."""
    started = time.perf_counter()
    try:
        response = card.exchange(SELECT_PPSE, timeout=timeout)
        if response.data:
            decode(response.data)
    except CardRemoved:
        raise
    except TlvError:
        return None, "garbled"
    except (TransportTimeout, TransportError, RemoteProtocolError) as error:
        return None, next(kind for cls, kind in _FAILURE_KINDS if isinstance(error, cls))
    return (time.perf_counter() - started) * 1000.0, None


def measure_link(ctx: Context, check_id: str = "link.quality") -> LinkStats:
    """Run the round trips and return what they showed (progress goes to ``ctx.progress``)."""
    settings = ctx.settings
    reader = ctx.reader
    assert reader is not None  # needs card.presence
    card = Card(reader, timeout=settings.exchange_timeout)
    planned = settings.loops
    budget_end = time.monotonic() + settings.link_budget
    failures: Counter[str] = Counter()
    latencies: list[float] = []
    completed = first_try = succeeded = attempts = 0
    consecutive_failures = 0
    stopped: str | None = None
    for _ in range(planned):
        for attempt in range(settings.link_retries + 1):
            attempts += 1
            try:
                latency, failure = _round_trip(card, settings.exchange_timeout)
            except CardRemoved:
                stopped = "card_lost"
                break
            if failure is None:
                assert latency is not None
                latencies.append(latency)
                succeeded += 1
                first_try += attempt == 0
                consecutive_failures = 0
                break
            failures[failure] += 1
            consecutive_failures += 1
            if not succeeded and consecutive_failures >= settings.link_abort_after:
                stopped = "dead"  # nothing has ever worked: no point waiting for more
                break
        if stopped == "card_lost":
            break
        completed += 1
        ctx.progress.loop_progress(
            check_id,
            completed,
            planned,
            {"success_rate": succeeded / completed, "retries": attempts - completed},
        )
        if stopped is not None:
            break
        if time.monotonic() > budget_end:
            stopped = "budget"
            break
    return LinkStats(
        planned=planned,
        completed=completed,
        first_try=first_try,
        succeeded=succeeded,
        attempts=attempts,
        failures=dict(failures),
        latencies_ms=tuple(latencies),
        stopped=stopped,
    )


def _data(stats: LinkStats) -> dict[str, Any]:
    return {
        "planned": stats.planned,
        "completed": stats.completed,
        "succeeded": stats.succeeded,
        "first_try": stats.first_try,
        "attempts": stats.attempts,
        "retries": stats.retries,
        "failures": dict(stats.failures),
        "success_rate": round(stats.success_rate, 4),
        "first_try_rate": round(stats.first_try_rate, 4),
        "p50_ms": _round(stats.p(0.50)),
        "p95_ms": _round(stats.p(0.95)),
        "p99_ms": _round(stats.p(0.99)),
        "stopped": stats.stopped,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def judge(stats: LinkStats, settings: SelftestSettings, ctx: Context) -> Outcome:
    """The outcome for ``stats`` under the thresholds (and the baseline's link profile)."""
    data = _data(stats)
    p50, p95, p99 = stats.p(0.50), stats.p(0.95), stats.p(0.99)
    params = {
        "trips": str(stats.completed),
        "first_try": percent(stats.first_try_rate),
        "success": percent(stats.success_rate),
        "retries": str(stats.retries),
        "failed": str(stats.completed - stats.succeeded),
        "attempts": str(stats.attempts),
        "p50": ms(p50),
        "p95": ms(p95),
        "p99": ms(p99),
    }
    if stats.stopped == "card_lost":
        return Outcome("link.card_lost", params, data)
    if stats.succeeded == 0 or stats.success_rate < settings.link_fail_rate:
        return Outcome("link.failing", params, data)
    if stats.first_try_rate < settings.link_warn_rate:
        return Outcome("link.intermittent", params, data)
    if stats.first_try_rate < settings.link_pass_rate:
        return Outcome("link.unsteady", params, data)
    assert p50 is not None and p95 is not None and p99 is not None
    if p99 > settings.latency_spike_ms and p99 > 5 * p50:
        return Outcome("link.spikes", params, data)
    if p95 > settings.latency_warn_ms:
        return Outcome("link.slow", {**params, "limit": ms(settings.latency_warn_ms)}, data)
    before = ctx.baseline.link if ctx.baseline is not None else None
    if before is not None and before.p95_ms is not None:
        limit = max(
            before.p95_ms * settings.baseline_latency_factor,
            before.p95_ms + settings.baseline_latency_margin_ms,
        )
        data["baseline_p95_ms"] = before.p95_ms
        if p95 > limit:
            difference = Difference("link.p95_ms", f"{before.p95_ms:.3f}", f"{p95:.3f}")
            return Outcome(
                "link.slower_than_baseline",
                {**params, "before": ms(before.p95_ms)},
                data,
                (difference,),
            )
    return Outcome("link.ok", params, data)


def check_link(ctx: Context) -> Outcome:
    """Measure the link and judge it (skipped on a replayed trace)."""
    if replaying(ctx):
        return Outcome("link.skipped_replay", {"reader": text(ctx.reader_uri)})
    stats = measure_link(ctx)
    ctx.link = stats
    return judge(stats, ctx.settings, ctx)


def _deadline(settings: SelftestSettings) -> float:
    # Every attempt may use its whole timeout until the budget runs out: budget plus one
    # round trip's worth of attempts, plus slack.
    return settings.link_budget + settings.exchange_timeout * (settings.link_retries + 1) + 10.0


LINK = Check(
    "link.quality", "interference", check_link, needs=("card.presence",), deadline=_deadline
)
