"""Are the terminal's data intact? The baseline file itself, and the terminal
configuration against it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..context import Context
from ..model import Difference, Outcome
from ..settings import ConfigFileMissing, config_hash, config_values
from .base import Check

__all__ = ["BASELINE", "CONFIG"]


def check_baseline(ctx: Context) -> Outcome:
    """A baseline, when given, must be intact: JSON, known schema, matching checksum."""
    path = str(ctx.options.baseline) if ctx.options.baseline is not None else None
    if ctx.baseline_damage is not None:
        damage = ctx.baseline_damage
        params = {"path": path or "-", **damage.params}
        return Outcome(damage.outcome, params, {"path": path, "problem": damage.detail})
    if ctx.baseline is None:
        return Outcome("baseline.none")
    data = {"path": path, "created": ctx.baseline.created}
    return Outcome("baseline.ok", {"path": path or "-", "created": ctx.baseline.created}, data)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[Difference, ...]:
    names = sorted(set(before) | set(after))
    return tuple(
        Difference(
            f"config.{name}",
            _shown(before[name]) if name in before else None,
            _shown(after[name]) if name in after else None,
        )
        for name in names
        if before.get(name) != after.get(name)
    )


def check_config(ctx: Context) -> Outcome:
    """The terminal configuration must load, and match the baseline's when there is one."""
    path = ctx.config_path
    if ctx.setup_error is not None:
        error = ctx.setup_error
        outcome = "config.missing" if isinstance(error, ConfigFileMissing) else "config.unreadable"
        return Outcome(outcome, {"path": path or "-"}, {"path": path, "error": error.message})
    values = config_values(ctx.terminal)
    digest = config_hash(values)
    data: dict[str, Any] = {"path": path, "sha256": digest, "file_sha256": ctx.setup.file_sha256}
    baseline = ctx.baseline
    if baseline is None:
        if path is None:
            return Outcome("config.defaults", data=data)
        return Outcome("config.ok", {"path": path, "count": str(len(values))}, data)
    data["baseline_sha256"] = baseline.config.sha256
    differences = _differences(baseline.config.values, values)
    if not differences:
        if path is None:
            return Outcome("config.defaults_as_baseline", data=data)
        return Outcome("config.matches_baseline", {"path": path}, data)
    fields = ", ".join(difference.field.removeprefix("config.") for difference in differences)
    params = {"path": path or "-", "count": str(len(differences)), "fields": fields}
    data["changed"] = [difference.field for difference in differences]
    from ...emv.terminal import TerminalConfig

    factory = config_values(TerminalConfig())
    if values == factory and baseline.config.values != factory:
        return Outcome("config.factory_reset", params, data, differences)
    return Outcome("config.changed", params, data, differences)


BASELINE = Check("baseline.integrity", "data_anomaly", check_baseline)
CONFIG = Check("config.integrity", "data_anomaly", check_config)
