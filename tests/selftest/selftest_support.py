"""Shared helpers for the self-test's tests: a fixed clock, runs on sim:, simulated
installations (a real dist-info with a RECORD, read by importlib.metadata), terminal
config files, and readers with one thing wrong that the sim: query options cannot
express (a garbled ATR, no card, a card with a bad number, latency spikes)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from importlib.metadata import PathDistribution
from pathlib import Path
from typing import Any

import contactless
from contactless._version import __version__
from contactless.emulator.card import VirtualCard
from contactless.emulator.profiles import load_profile
from contactless.selftest import SelftestOptions, SelftestReport, run_selftest
from contactless.transport.base import Transport
from contactless.transport.sim import SimTransport

#: "Now" for every run: the emulator's cards expire years later, the expired one years before.
NOW = datetime(2025, 6, 1, 12, 0, 0)

#: The Visa test card's PAN (public test number); it must never appear in any output.
VISA_PAN = "4761739001010010"


def run(reader: str | None = "sim:visa", **options: Any) -> SelftestReport:
    """Run the self-test in-process at :data:`NOW`."""
    options.setdefault("clock", lambda: NOW)
    return run_selftest(SelftestOptions(reader=reader, **options))


def top(report: SelftestReport) -> str | None:
    """The most likely category, or None for a clean bill of health."""
    return report.diagnosis[0].category if report.diagnosis else None


def outcomes(report: SelftestReport) -> dict[str, str]:
    """check id -> outcome id."""
    return {result.id: result.outcome for result in report.checks}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- a simulated installation ------------------------------------------------------------


def record_hash(data: bytes) -> str:
    """A RECORD hash field: sha256=<urlsafe base64 without padding>."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def install(
    site: Path,
    files: Mapping[str, bytes],
    *,
    version: str = __version__,
    record: bool = True,
    editable_source: str | None = None,
    extra_dist_files: Mapping[str, str] | None = None,
) -> PathDistribution:
    """Lay out ``files`` under ``site`` as an installed ``contactless`` distribution with a
    METADATA and (unless ``record`` is false) a RECORD of their hashes, the way pip does.
    Returns the distribution as importlib.metadata reads it."""
    dist_info = site / f"contactless-{version}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    metadata = f"Metadata-Version: 2.1\nName: contactless\nVersion: {version}\n"
    dist_files = {"METADATA": metadata, "INSTALLER": "pip\n", **(extra_dist_files or {})}
    if editable_source is not None:
        url = f"file://{editable_source}"
        dist_files["direct_url.json"] = f'{{"dir_info": {{"editable": true}}, "url": "{url}"}}'
    lines = []
    for name, data in files.items():
        target = site / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        lines.append(f"{name},{record_hash(data)},{len(data)}")
    for name, text in dist_files.items():
        (dist_info / name).write_text(text, encoding="utf-8")
        data = text.encode("utf-8")
        lines.append(f"{dist_info.name}/{name},{record_hash(data)},{len(data)}")
    lines.append(f"{dist_info.name}/RECORD,,")
    if record:
        (dist_info / "RECORD").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return PathDistribution(dist_info)


def install_package_copy(site: Path) -> PathDistribution:
    """Install a copy of the package under test in ``site`` (every file but caches), with
    its RECORD, as pip installs a wheel: a throwaway installation a test may damage."""
    package_dir = Path(contactless.__file__).parent
    files = {
        f"contactless/{path.relative_to(package_dir).as_posix()}": path.read_bytes()
        for path in sorted(package_dir.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    return install(site, files)


def run_installed(site: Path, *args: str, env: Mapping[str, str] | None = None) -> tuple[int, Any]:
    """Run ``contactless selftest --reader sim:visa --json ARGS`` in a fresh interpreter
    that imports contactless from ``site``; return the exit status and the document."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("CONTACTLESS_")
    }
    environment.update(PYTHONPATH=str(site), LANG="C.UTF-8", **(env or {}))
    completed = subprocess.run(
        [sys.executable, "-m", "contactless", "selftest", "--reader", "sim:visa", "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        cwd=site.parent,
    )
    assert completed.stdout, completed.stderr
    return completed.returncode, json.loads(completed.stdout)


PACKAGE_FILES = {
    "contactless/__init__.py": b'"""contactless"""\n',
    "contactless/session.py": b"SESSION = 1\n",
    "contactless/tlv/_pytlv.py": b"DECODER = 1\n",
}


# --- readers with one thing wrong --------------------------------------------------------


class CardOnReader(Transport):
    """A virtual card on an in-process reader, like sim:, with knobs for faults the sim:
    query options do not have. ``atr`` replaces the card's ATR; ``present`` False means
    no card in the field; ``delay(n)`` returns the seconds to wait before answering the
    n-th APDU."""

    scheme = "sim"
    enforces_deadline = True

    def __init__(
        self,
        uri: str,
        *,
        timeout: float | None = None,
        card: VirtualCard,
        atr: bytes | None = None,
        present: bool = True,
        delay: Callable[[int], float] | None = None,
    ) -> None:
        super().__init__(uri, timeout=timeout)
        self.card = card
        self._atr = atr
        self._present = present
        self._delay = delay
        self._count = 0
        self.identity = SimTransport("sim:visa").identity

    def _connect(self) -> None:
        self.atr = self._atr if self._atr is not None else self.card.atr
        self.ats = self.card.ats
        self.uid = self.card.uid

    def _card_present(self) -> bool:
        return self._present

    def _transmit(self, apdu: bytes, timeout: float) -> bytes:
        self._count += 1
        if self._delay is not None:
            time.sleep(min(self._delay(self._count), timeout))
        return self.card.process(apdu)


def opener(profile: str = "visa", **knobs: Any) -> Callable[..., Transport]:
    """An ``opener`` for SelftestOptions that puts a :class:`CardOnReader` there."""

    def open_reader(uri: str, *, timeout: float) -> Transport:
        card = knobs.pop("card", None) or VirtualCard(load_profile(profile))
        reader = CardOnReader(uri, timeout=timeout, card=card, **knobs)
        reader.connect()
        return reader

    return open_reader


def card_with_pan(pan: str, profile: str = "visa") -> VirtualCard:
    """The ``profile`` card with every application's PAN replaced by ``pan`` (the profile
    loader would refuse a number that fails the Luhn check, so it is set afterwards)."""
    loaded = load_profile(profile)
    apps = tuple(dataclasses.replace(app, pan=pan) for app in loaded.applications)
    return VirtualCard(dataclasses.replace(loaded, applications=apps))


# --- language checks ---------------------------------------------------------------------

#: ASCII words a Chinese message may contain: names of programs, protocols and standards
#: (pcscd, nfcpy, PC/SC, TLV, ATR...), unit symbols and option/variable names. Anything
#: else in ASCII letters is untranslated English. ("force", "reader": --force, --reader.)
ALLOWED_ASCII_WORDS = frozenset(
    {
        "contactless", "pcscd", "nfcpy", "PC", "SC", "NFC", "USB", "libusb", "TLV", "ATR",
        "ATS", "PIN", "TLS", "Python", "CONTACTLESS_PUREPYTHON", "json", "ms", "p50", "p95",
        "p99", "force", "reader",
    }
)  # fmt: skip

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]+")


def english_words(text: str, values: Mapping[str, str] | None = None) -> list[str]:
    """The ASCII words of ``text`` that are neither values (``values``' entries) nor
    allowed names: for a Chinese text, the English that slipped through."""
    # Values are cut out whole, at word boundaries: "c" must not split "nfcpy".
    for value in sorted((values or {}).values(), key=len, reverse=True):
        if value:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", " ", text)
    return [word for word in _WORD.findall(text) if word not in ALLOWED_ASCII_WORDS]
