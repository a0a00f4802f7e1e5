"""Keep card data out of nfcpy's debug log.

nfcpy logs, at DEBUG, every frame it sends and receives as hex (``nfc.clf``:
``>>> 0200a404... timeout=...`` and ``<<< ...``; its drivers log theirs too). An application
that turns DEBUG on, which is what one does when chasing a terminal fault, would write the
READ RECORD answers, and with them PANs, track 2 data and cardholder names, to its logs.

So when the ``nfc:`` backend imports nfcpy it puts a filter on nfcpy's loggers: every run
of :data:`HIDDEN_FROM` or more bytes of hex in a record is cut to its first byte (a frame's
PCB, which is what frame-level diagnosis reads) and its length, e.g. ``02<+21 bytes>``.
Shorter runs (status words, WTX and ACK blocks, short UIDs, AIDs up to 7 bytes) stay. Setting
``CONTACTLESS_LOG_CARD_DATA=1`` is the explicit opt-in that leaves the records whole; it is
read for every record, so it can be switched while a reader is open.
"""

from __future__ import annotations

import functools
import logging
import os
import pkgutil
import re
from types import ModuleType

#: The environment variable that lets nfcpy's records through unchanged.
OPT_IN = "CONTACTLESS_LOG_CARD_DATA"
#: Runs of hex this many bytes long or longer are cut (a PAN is 8 bytes of BCD).
HIDDEN_FROM = 8

# Any run of hex digits, wherever it stands: hiding a little too much is the safe side.
_HEX_RUN = re.compile(f"[0-9A-Fa-f]{{{2 * HIDDEN_FROM},}}")
#: nfcpy's packages whose modules log frames, commands or answers (every module of theirs
#: names its logger after itself).
_PACKAGES = ("nfc", "nfc.clf", "nfc.tag")


def _shorten(found: re.Match[str]) -> str:
    run = found.group(0)
    return f"{run[:2]}<+{(len(run) - 1) // 2} bytes>"


def hide_card_data(text: str) -> str:
    """``text`` with every run of :data:`HIDDEN_FROM` or more hex bytes cut to its first
    byte and its length."""
    return _HEX_RUN.sub(_shorten, text)


class CardDataFilter(logging.Filter):
    """Rewrites a record's message with :func:`hide_card_data` unless the opt-in is set."""

    def filter(self, record: logging.LogRecord) -> bool:
        if os.environ.get(OPT_IN) == "1":
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports that itself, later
            return True
        hidden = hide_card_data(message)
        if hidden != message:
            record.msg, record.args = hidden, None
        return True


@functools.cache  # lists package folders; every reader open installs the filter again
def nfcpy_logger_names(nfc: ModuleType) -> tuple[str, ...]:
    """The logger name of nfcpy's packages in :data:`_PACKAGES` and of every module in
    them, imported or not (drivers are imported only when a device is opened)."""
    names = []
    for package_name in _PACKAGES:
        package = nfc
        for part in package_name.split(".")[1:]:
            package = getattr(package, part)
        names.append(package_name)
        names += [
            f"{package_name}.{module.name}" for module in pkgutil.iter_modules(package.__path__)
        ]
    return tuple(names)


def install(nfc: ModuleType) -> None:
    """Put one :class:`CardDataFilter` on each of nfcpy's loggers (again: no-op)."""
    for name in nfcpy_logger_names(nfc):
        logger = logging.getLogger(name)
        if not any(isinstance(existing, CardDataFilter) for existing in logger.filters):
            logger.addFilter(CardDataFilter())
