"""Are the services under the reader up? pcscd for PC/SC readers, device access for nfcpy.

Both use their backend's own diagnostics, imported by name only when the reader needs
them, so a terminal without pyscard or nfcpy runs the rest of the self-test (these
checks are then skipped, saying why).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
from typing import Any

from ...errors import ContactlessError, ServiceUnavailable
from ..context import Context
from ..model import Outcome
from .base import Check, text

__all__ = ["NFC", "NFC_OUTCOMES", "PCSCD"]

#: Seconds pcscd gets to list its readers.
PCSCD_DEADLINE = 5.0

#: nfc_diagnostics.FindingKind value -> outcome.
NFC_OUTCOMES: Mapping[str, str] = {
    "found": "service.nfc_ok",
    "not-found": "service.nfc_not_found",
    "permission": "service.nfc_permission",
    "busy": "service.nfc_busy",
    "libusb-missing": "service.nfc_libusb_missing",
    "nfcpy-missing": "service.nfc_nfcpy_missing",
    "error": "service.nfc_error",
}


def _needed(ctx: Context, scheme: str) -> bool:
    """The terminal uses this backend: its reader is one, or the config says so."""
    return ctx.reader_scheme == scheme or scheme in ctx.settings.backends


def check_pcscd(ctx: Context) -> Outcome:
    """pcscd must answer and list its readers (pcsc_context.PcscContext)."""
    if not _needed(ctx, "pcsc"):
        return Outcome("service.not_pcsc")
    try:
        pcsc_context = importlib.import_module("contactless.transport.pcsc_context")
    except ImportError as error:
        return Outcome("service.pcsc_missing", data={"error": str(error)})
    try:
        context = pcsc_context.PcscContext.establish(doing="checking pcscd for the self-test")
    except ServiceUnavailable as error:
        return Outcome("service.pcscd_down", data={"error": str(error)})
    except ContactlessError as error:
        return Outcome("service.pcscd_down", data={"error": str(error)})
    try:
        names = context.list_readers(deadline=time.monotonic() + PCSCD_DEADLINE)
    except (ContactlessError, pcsc_context.CallAborted) as error:
        return Outcome("service.pcscd_down", data={"error": str(error) or "no answer"})
    finally:
        context.release()
    return Outcome("service.pcscd_ok", {"count": str(len(names))}, {"readers": list(names)})


def _nfc_paths(uri: str | None) -> list[str]:
    """nfcpy paths to try for ``uri``: none for ``nfc:usb...`` (USB is scanned anyway)."""
    if uri is None:
        return []
    _, _, path = uri.partition(":")
    path = path.partition("?")[0]
    return [] if not path or path.startswith("usb") else [path]


def check_nfc(ctx: Context) -> Outcome:
    """nfcpy must be able to open the reader (transport.nfc_diagnostics.diagnose)."""
    if not _needed(ctx, "nfc"):
        return Outcome("service.not_nfc")
    try:
        diagnostics = importlib.import_module("contactless.transport.nfc_diagnostics")
    except ImportError as error:
        return Outcome("service.nfc_unavailable", data={"error": str(error)})
    paths = _nfc_paths(ctx.reader_uri if ctx.reader_scheme == "nfc" else None)
    findings = list(diagnostics.diagnose(paths))
    data: dict[str, Any] = {"findings": [finding.to_dict() for finding in findings]}
    explicit = [finding for finding in findings if paths and finding.path in paths]
    if explicit:
        chosen = explicit[-1]
    else:
        chosen = next((finding for finding in findings if finding.ok), findings[0])
    kind = str(chosen.kind.value)
    device = text(chosen.device or chosen.path)
    return Outcome(NFC_OUTCOMES.get(kind, "service.nfc_error"), {"device": device}, data)


PCSCD = Check("service.pcscd", "reader_fault", check_pcscd)
NFC = Check("service.nfc", "reader_fault", check_nfc)
