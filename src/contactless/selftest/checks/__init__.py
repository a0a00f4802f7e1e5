"""The self-test's checks, in the order they run.

Software and data first (they need no reader), then the reader's services, the reader,
the card, the link, a test transaction and the card's data, and the network last. Each
check is one small function in the module of its subject; a check that needs another
one's result says so (``needs``/``blocked_by``), so a broken reader shows up once, as a
reader fault, and not again as every check after it.
"""

from __future__ import annotations

from . import card, data, emv, host, link, reader, service, software
from .base import Check

__all__ = ["CHECKS", "Check", "check_ids"]

CHECKS: tuple[Check, ...] = (
    software.INTEGRITY,
    software.VERSION,
    software.UPGRADE_MARKER,
    software.ACCELERATOR,
    software.BACKENDS,
    data.BASELINE,
    data.CONFIG,
    service.PCSCD,
    service.NFC,
    reader.PRESENCE,
    reader.FIRMWARE,
    card.PRESENCE,
    card.ATR,
    link.LINK,
    emv.TRANSACTION,
    emv.PAN,
    emv.EXPIRY,
    emv.PIN_TRIES,
    emv.MATCH,
    host.HOST,
)


def check_ids() -> list[str]:
    """The ids of every check, in running order."""
    return [check.id for check in CHECKS]
