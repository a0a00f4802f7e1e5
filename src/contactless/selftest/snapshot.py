"""Turn a self-test run into a baseline (``contactless baseline save``)."""

from __future__ import annotations

from datetime import datetime

from .baseline import (
    Baseline,
    BaselineCard,
    BaselineConfig,
    BaselineLink,
    BaselineReader,
    BaselineSoftware,
    Fingerprint,
    pan_hint,
)
from .runner import SelftestReport

__all__ = ["baseline_from_report"]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def baseline_from_report(report: SelftestReport, *, created: datetime | None = None) -> Baseline:
    """The baseline of the terminal as ``report`` saw it: software, reader identity,
    configuration (values and hash), the test card's fingerprint, the link profile."""
    seen = report.observations
    if seen is None:
        raise ValueError("the report carries no observations")
    when = (created or datetime.now().astimezone()).isoformat(timespec="seconds")
    reader = None
    if seen.reader is not None:
        reader = BaselineReader(
            uri=seen.reader["uri"],
            vendor=seen.reader["vendor"],
            model=seen.reader["model"],
            firmware=seen.reader["firmware"],
            serial=seen.reader["serial"],
            driver=seen.reader["driver"],
            features=tuple(seen.reader["features"]),
        )
    card = None
    if seen.card is not None:
        card = BaselineCard(
            atr=seen.card["atr"],
            aid=seen.card["aid"],
            brand=seen.card["brand"],
            masked_pan=pan_hint(seen.pan) if seen.pan else None,
            expiry=seen.card["expiry"],
            fingerprint=Fingerprint.of(seen.pan) if seen.pan else None,
        )
    link = None
    if seen.link is not None and seen.link.succeeded:
        stats = seen.link
        link = BaselineLink(
            loops=stats.completed,
            first_try_rate=round(stats.first_try_rate, 4),
            success_rate=round(stats.success_rate, 4),
            p50_ms=_round(stats.p(0.50)),
            p95_ms=_round(stats.p(0.95)),
            p99_ms=_round(stats.p(0.99)),
        )
    software = BaselineSoftware(
        version=str(seen.software["version"]),
        tlv_implementation=str(seen.software["tlv_implementation"]),
        backends=dict(seen.software["backends"]),
    )
    config = BaselineConfig(seen.config_path, seen.config_sha256, seen.config_values)
    return Baseline(when, software, config, reader, card, link)
