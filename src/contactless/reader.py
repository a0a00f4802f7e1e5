"""Opening readers by URI: the entry point most callers start from.

::

    with contactless.open_reader("pcsc:") as reader:
        contactless.wait_for_card(reader, timeout=10)
        card = contactless.Card(reader)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import transport as _registry
from .transport.base import Transport

__all__ = ["open_reader", "wait_for_card"]


@contextmanager
def open_reader(uri: str, **options: Any) -> Iterator[Transport]:
    """Open the reader named by ``uri`` (``"pcsc:"``, ``"nfc:usb"``, ``"sim:visa"``...) and
    yield it connected; it is disconnected when the block ends, even on error.

    ``options`` go to the backend (every backend accepts ``timeout``, the default seconds
    per exchange). Raises an :class:`~contactless.errors.OpenError` subclass, or
    :class:`~contactless.errors.ConfigError` for a malformed or unknown URI.
    """
    with _registry.open(uri, **options) as reader:
        yield reader


def wait_for_card(reader: Transport, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for a card on ``reader``; return True once one is
    there, or raise :class:`~contactless.errors.NoCard`."""
    return reader.wait_for_card(timeout)
