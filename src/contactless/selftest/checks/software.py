"""Is the installed software whole? Files against the package record, versions, upgrade
markers, the C accelerator, the reader backends."""

from __future__ import annotations

import base64
import glob
import hashlib
import importlib
import json
import os
import time
from importlib.metadata import Distribution, PackageNotFoundError, packages_distributions
from pathlib import Path

from ..._version import __version__
from ...errors import ContactlessError
from ..context import Context
from ..model import Outcome
from .base import Check, text

__all__ = [
    "ACCELERATOR",
    "BACKENDS",
    "DAMAGED_INSTALLATION",
    "INTEGRITY",
    "UPGRADE_MARKER",
    "VERSION",
]

#: The integrity outcome of installed files changed or missing since installation.
DAMAGED_INSTALLATION = "software.record_mismatch"

#: At most this many file names are listed in the data of a failed integrity check.
_LISTED = 20


def _editable_source(dist: Distribution) -> str | None:
    """The source directory of an editable install (PEP 660 direct_url.json), else None."""
    try:
        raw = dist.read_text("direct_url.json")
        info = json.loads(raw) if raw else None
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    dir_info = info.get("dir_info")
    if isinstance(dir_info, dict) and dir_info.get("editable") is True:
        url = str(info.get("url", ""))
        return url.removeprefix("file://") or "?"
    return None


def _record_digest(path: Path, mode: str) -> str:
    # RECORD hashes are urlsafe base64 without padding (PEP 376 / the wheel spec).
    digest = hashlib.new(mode, path.read_bytes()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_integrity(ctx: Context) -> Outcome:
    """Every installed file listed in the package's RECORD must still hash as recorded."""
    try:
        dist = ctx.distribution()
    except PackageNotFoundError:
        return Outcome("software.not_installed", {"name": "contactless"})
    files = dist.files
    location = str(dist.locate_file(""))
    if files is None:
        return Outcome("software.record_missing", {"location": location})
    changed: list[str] = []
    missing: list[str] = []
    checked = 0
    for entry in files:
        if entry.hash is None:  # RECORD itself and compiled files carry no hash
            continue
        path = Path(str(dist.locate_file(entry)))
        try:
            digest = _record_digest(path, entry.hash.mode)
        except FileNotFoundError:
            missing.append(str(entry))
            continue
        except (OSError, ValueError):  # unreadable, or a hash algorithm we do not have
            changed.append(str(entry))
            continue
        checked += 1
        if digest != entry.hash.value:
            changed.append(str(entry))
    source = _editable_source(dist)
    data = {
        "location": location,
        "version": dist.version,
        "files_checked": checked,
        "changed": changed[:_LISTED],
        "missing": missing[:_LISTED],
        "editable_source": source,
    }
    if changed or missing:
        first = (changed + missing)[0]
        params = {"changed": str(len(changed)), "missing": str(len(missing)), "first": first}
        return Outcome(DAMAGED_INSTALLATION, params, data)
    if source is not None:
        # An editable install records only its hook files; the code lives in the source
        # tree and nothing says what it should contain.
        return Outcome(
            "software.record_editable", {"location": source, "count": str(checked)}, data
        )
    return Outcome("software.record_ok", {"count": str(checked)}, data)


def check_version(ctx: Context) -> Outcome:
    """The version the package metadata declares must be the version of the code."""
    try:
        declared = ctx.distribution().version
    except PackageNotFoundError:
        declared = None
    data = {"code": __version__, "metadata": declared}
    before = None
    if ctx.baseline is not None:
        before = ctx.baseline.software.version
        data["baseline"] = before
    if declared is not None and declared.strip() != __version__:
        return Outcome(
            "software.version_mismatch", {"metadata": declared, "code": __version__}, data
        )
    if before is not None and before != __version__:
        return Outcome(
            "software.version_upgraded", {"version": __version__, "before": before}, data
        )
    return Outcome("software.version_ok", {"version": __version__}, data)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{max(seconds, 0):.0f} s"


def check_upgrade_marker(ctx: Context) -> Outcome:
    """An upgrade tool's "in progress" marker must not outlive the upgrade."""
    patterns = ctx.settings.upgrade_markers
    for pattern in patterns:
        paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        for path in paths:
            try:
                modified = os.stat(path).st_mtime
            except OSError:
                continue
            age = _age(time.time() - modified)
            return Outcome(
                "software.marker_found",
                {"path": path, "age": age},
                {"path": path, "age_seconds": round(time.time() - modified, 1)},
            )
    return Outcome("software.no_marker", data={"looked_for": list(patterns)})


def check_accelerator(ctx: Context) -> Outcome:
    """The C TLV accelerator must be in use when the terminal requires it, or had it."""
    from ...tlv import IMPLEMENTATION

    required = ctx.settings.accelerator == "required" or (
        os.environ.get("CONTACTLESS_REQUIRE_C") == "1"
    )
    before = ctx.baseline.software.tlv_implementation if ctx.baseline is not None else None
    data = {"implementation": IMPLEMENTATION, "required": required, "baseline": before}
    if IMPLEMENTATION == "c":
        return Outcome("software.accelerator_ok", {"implementation": IMPLEMENTATION}, data)
    if required:
        return Outcome("software.accelerator_missing", data=data)
    if os.environ.get("CONTACTLESS_PUREPYTHON") == "1":
        return Outcome("software.accelerator_disabled", data=data)
    if before == "c":
        return Outcome("software.accelerator_lost", data=data)
    return Outcome("software.accelerator_optional", data=data)


def _import_names(package: str) -> list[str]:
    """The top-level modules the distribution ``package`` provides (``pyscard`` ->
    ``smartcard``), from the installed distributions' records."""
    return sorted(
        module for module, providers in packages_distributions().items() if package in providers
    )


def _library_problem(scheme: str) -> str | None:
    """Why the third-party library a built-in backend needs (transport.EXTRAS) cannot be
    imported, or None. The backend modules import their library lazily, so loading the
    backend class alone proves nothing."""
    from ...transport import EXTRAS

    if scheme not in EXTRAS:
        return None
    extra, package = EXTRAS[scheme]
    remedy = f"install the extra: pip install 'contactless[{extra}]'"
    modules = _import_names(package)
    if not modules:
        return f"the {scheme}: backend needs {package}, which is not installed ({remedy})"
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:  # ImportError, or a library that breaks while loading
            return (
                f"the {scheme}: backend needs {package}, whose module {module} cannot be "
                f"imported ({type(error).__name__}: {error}; {remedy})"
            )
    return None


def _scheme_available(scheme: str) -> tuple[bool, str]:
    """Whether the backend of ``scheme`` loads, with its library; else why not."""
    from ...transport import transport_class

    try:
        transport_class(scheme)
    except ContactlessError as error:
        return False, str(error)
    problem = _library_problem(scheme)
    if problem is not None:
        return False, problem
    return True, ""


def check_backends(ctx: Context) -> Outcome:
    """The reader backends the terminal needs (its reader's, the configured ones, those
    that worked at the baseline) must load."""
    from ...transport import schemes

    known = sorted(set(schemes()) | set(ctx.settings.backends))
    problems: dict[str, str] = {}
    for scheme in known:
        ok, detail = _scheme_available(scheme)
        ctx.backends[scheme] = ok
        if not ok:
            problems[scheme] = detail
    needed = set(ctx.settings.backends)
    if ctx.reader_scheme is not None:
        needed.add(ctx.reader_scheme)
    data = {"available": dict(ctx.backends), "needed": sorted(needed), "problems": problems}
    missing = sorted(scheme for scheme in needed if not ctx.backends.get(scheme, False))
    if missing:
        return Outcome("software.backend_missing", {"backends": ", ".join(missing)}, data)
    if ctx.baseline is not None:
        lost = sorted(
            scheme
            for scheme, worked in ctx.baseline.software.backends.items()
            if worked and not ctx.backends.get(scheme, False)
        )
        if lost:
            return Outcome("software.backend_lost", {"backends": ", ".join(lost)}, data)
    available = ", ".join(scheme for scheme, ok in ctx.backends.items() if ok)
    return Outcome("software.backends_ok", {"backends": text(available)}, data)


INTEGRITY = Check("software.integrity", "upgrade_incomplete", check_integrity)
VERSION = Check("software.version", "upgrade_incomplete", check_version)
UPGRADE_MARKER = Check("software.upgrade_marker", "upgrade_incomplete", check_upgrade_marker)
ACCELERATOR = Check("software.accelerator", "upgrade_incomplete", check_accelerator)
BACKENDS = Check("software.backends", "upgrade_incomplete", check_backends)
