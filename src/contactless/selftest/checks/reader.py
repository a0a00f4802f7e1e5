"""Is the reader there, and is it the one the software was built for? Presence and
identity, then firmware and driver against the baseline and the supported list."""

from __future__ import annotations

import fnmatch
import importlib
from typing import Any

from ...errors import (
    BackendUnavailable,
    ConfigError,
    ContactlessError,
    LocalProtocolError,
    PermissionDenied,
    ReaderBusy,
    ReaderNotFound,
    ServiceUnavailable,
)
from ..baseline import BaselineReader
from ..context import Context
from ..model import Difference, Outcome
from .base import Check, text

__all__ = ["FIRMWARE", "OPEN_ERRORS", "PRESENCE"]

#: Errors opening a reader -> outcome; the first class that matches wins.
OPEN_ERRORS: tuple[tuple[type[ContactlessError], str], ...] = (
    (ReaderNotFound, "reader.not_found"),
    (ReaderBusy, "reader.busy"),
    (PermissionDenied, "reader.permission"),
    (ServiceUnavailable, "reader.service_unavailable"),
    (BackendUnavailable, "reader.backend_unavailable"),
    (ContactlessError, "reader.open_failed"),
)

#: Backends that are not hardware, never picked when looking for "the" reader.
_NOT_HARDWARE = frozenset({"sim", "replay"})

#: Seconds the backends get to list their readers when no reader URI is given.
DETECT_TIMEOUT = 5.0


def _detect(ctx: Context) -> tuple[str | None, list[dict[str, Any]]]:
    """The first hardware reader any backend lists (one with a card preferred)."""
    from ...transport import detect

    found = detect(timeout=DETECT_TIMEOUT)
    listed = [
        {
            "uri": info.uri,
            "backend": info.backend,
            "available": info.available,
            "detail": info.detail,
        }
        for info in found
    ]
    usable = [info for info in found if info.available and info.backend not in _NOT_HARDWARE]
    usable.sort(key=lambda info: info.card_present is not True)  # stable: keeps the order
    return (usable[0].uri if usable else None), listed


def _probe_pcsc(ctx: Context, reader: Any) -> dict[str, Any]:
    """Firmware and PC/SC part 10 features of a PC/SC reader (pcsc_features.probe_reader)."""
    try:
        features_module = importlib.import_module("contactless.transport.pcsc_features")
    except ImportError as error:
        return {"probe_error": str(error)}
    try:
        findings = features_module.probe_reader(reader, model=ctx.settings.reader_model)
    except ContactlessError as error:
        return {"probe_error": str(error)}
    ctx.firmware = findings.firmware or ctx.firmware
    ctx.features = tuple(sorted(findings.features))
    probe: dict[str, Any] = findings.to_json()
    return {"probe": probe}


def check_presence(ctx: Context) -> Outcome:
    """Open the reader (the one named, else the first one found) and read its identity."""
    uri = ctx.reader_uri
    data: dict[str, Any] = {}
    if uri is None and ctx.baseline_damage is not None:
        # The baseline named the reader, but it cannot be trusted: taking "the first
        # reader found" could test another one, and finding none would blame the reader
        # for what is a data fault (the baseline check reports it).
        return Outcome("reader.baseline_untrusted", {"path": str(ctx.options.baseline)})
    if uri is None:
        uri, listed = _detect(ctx)
        data["detected"] = listed
        if uri is None:
            return Outcome("reader.none_detected", data=data)
        ctx.reader_uri = uri
    data["uri"] = uri
    try:
        reader = ctx.open_reader(uri)
    except (ConfigError, LocalProtocolError):
        raise  # a malformed or unknown URI: the self-test cannot run as asked
    except ContactlessError as error:
        data["error"] = str(error)
        outcome = next(name for cls, name in OPEN_ERRORS if isinstance(error, cls))
        return Outcome(outcome, {"uri": uri}, data)
    ctx.reader = reader
    identity = reader.identity
    ctx.identity = identity
    ctx.firmware = identity.firmware
    if reader.scheme == "pcsc":
        data.update(_probe_pcsc(ctx, reader))
    data.update(
        vendor=identity.vendor,
        model=identity.model,
        firmware=ctx.firmware,
        serial=identity.serial,
        driver=identity.driver,
        features=list(ctx.features),
    )
    params = {
        "uri": uri,
        "vendor": text(identity.vendor),
        "model": text(identity.model),
        "firmware": text(ctx.firmware),
    }
    return Outcome("reader.ok", params, data)


def _matches(value: str | None, patterns: tuple[str, ...]) -> bool:
    return value is not None and any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _baseline_differences(ctx: Context, before: BaselineReader) -> list[Difference]:
    """How the reader differs from the baseline's: identity fields, then lost features."""
    identity = ctx.identity
    now = {
        "vendor": identity.vendor if identity else None,
        "model": identity.model if identity else None,
        "firmware": ctx.firmware,
        "driver": identity.driver if identity else None,
    }
    then = {
        "vendor": before.vendor,
        "model": before.model,
        "firmware": before.firmware,
        "driver": before.driver,
    }
    differences = [
        Difference(f"reader.{name}", then[name], now[name])
        for name in now
        if then[name] != now[name]
    ]
    if set(before.features) - set(ctx.features):
        differences.append(
            Difference("reader.features", ", ".join(before.features), ", ".join(ctx.features))
        )
    return differences


def check_firmware(ctx: Context) -> Outcome:
    """Firmware and driver must be supported: the same as at the baseline, or on the
    config's supported lists; features the reader had must still be there."""
    settings = ctx.settings
    firmware = ctx.firmware
    driver = ctx.identity.driver if ctx.identity is not None else None
    before = ctx.baseline.reader if ctx.baseline is not None else None
    data: dict[str, Any] = {
        "firmware": firmware,
        "driver": driver,
        "supported_firmware": list(settings.supported_firmware),
        "supported_drivers": list(settings.supported_drivers),
    }
    changes: tuple[Difference, ...] = ()
    if before is not None:
        changes = tuple(_baseline_differences(ctx, before))
        data.update(
            baseline_firmware=before.firmware,
            baseline_driver=before.driver,
            missing_features=sorted(set(before.features) - set(ctx.features)),
        )

    def outcome(name: str, **params: str) -> Outcome:
        return Outcome(name, params, data, changes)

    firmware_ok = _matches(firmware, settings.supported_firmware)
    driver_ok = _matches(driver, settings.supported_drivers)
    # The most serious finding wins; the data and the differences list them all.
    if settings.supported_firmware and firmware is None:
        return outcome("reader.firmware_unknown", expected=", ".join(settings.supported_firmware))
    if settings.supported_firmware and not firmware_ok:
        supported = ", ".join(settings.supported_firmware)
        return outcome("reader.firmware_unsupported", firmware=text(firmware), supported=supported)
    if settings.supported_drivers and not driver_ok:
        supported = ", ".join(settings.supported_drivers)
        return outcome("reader.driver_unsupported", driver=text(driver), supported=supported)
    if before is None:
        if settings.supported_firmware or settings.supported_drivers:
            return outcome("reader.firmware_supported", firmware=text(firmware))
        return outcome("reader.firmware_nothing", firmware=text(firmware))
    if before.firmware is not None and firmware is None:
        return outcome("reader.firmware_unknown", expected=before.firmware)
    firmware_changed = before.firmware != firmware
    if firmware_changed and not firmware_ok:
        return outcome(
            "reader.firmware_changed", before=text(before.firmware), after=text(firmware)
        )
    if before.driver != driver and not driver_ok:
        return outcome("reader.driver_changed", before=text(before.driver), after=text(driver))
    if data["missing_features"]:
        return outcome("reader.features_missing", features=", ".join(data["missing_features"]))
    if firmware_changed:  # to a version on the supported list: worth knowing, not a fault
        return outcome(
            "reader.firmware_changed_supported",
            before=text(before.firmware),
            after=text(firmware),
        )
    return outcome("reader.firmware_ok", firmware=text(firmware), driver=text(driver))


PRESENCE = Check(
    "reader.presence",
    "reader_fault",
    check_presence,
    blocked_by=("service.pcscd", "service.nfc"),
    deadline=lambda settings: settings.check_deadline + DETECT_TIMEOUT,
)
FIRMWARE = Check(
    "reader.firmware", "version_incompatible", check_firmware, needs=("reader.presence",)
)
