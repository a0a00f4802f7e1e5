"""Shared helpers for the trace tests (a module imported by name, not a conftest): a
repeatable terminal, and recording through the library's own read path
(``contactless.read_card`` with a ``Recorder``)."""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path

from contactless.emulator.profiles import list_profiles
from contactless.emv.terminal import TerminalConfig
from contactless.errors import ContactlessError
from contactless.reader import read_card
from contactless.trace import PinnedRandom, Recorder, Trace, terminal_header

PROFILES = sorted(list_profiles())
ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors" / "traces"

#: The terminal the tests record with: fixed date and unpredictable number.
FIXED_TIME = datetime(2024, 5, 17, 12, 0, 0)
UNPREDICTABLE_NUMBER = bytes.fromhex("1A2B3C4D")


def fixed_config(**settings: object) -> TerminalConfig:
    """A terminal whose read sends the same commands every time."""
    return TerminalConfig(
        clock=lambda: FIXED_TIME,
        rng=PinnedRandom(UNPREDICTABLE_NUMBER),
        **settings,  # type: ignore[arg-type]
    )


def record_trace(uri: str, *, transaction: bool = False, **settings: object) -> Trace:
    """Read the card at ``uri`` with a Recorder attached; the trace (unredacted) is returned
    even when the read fails."""
    config = fixed_config(**settings)
    recorder = Recorder()
    with contextlib.suppress(ContactlessError):  # a failed read still leaves its trace
        read_card(
            uri,
            config=config,
            transaction=transaction,
            wait=2.0,
            timeout=2.0,
            on_card=recorder.attach,
        )
    return recorder.trace(
        terminal=terminal_header(config),
        flow="transaction" if transaction else "read",
        redacted=False,
    )
