"""Opening readers by URI: the entry point most callers start from.

::

    with contactless.open_reader("pcsc:") as reader:
        contactless.wait_for_card(reader, timeout=10)
        card = contactless.Card(reader)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from . import transport as _registry
from .errors import LocalProtocolError
from .transport.base import Tracer, Transport, check_timeout

if TYPE_CHECKING:
    from .emv.card import CardData
    from .emv.terminal import TerminalConfig

__all__ = ["open_reader", "read_card", "wait_for_card"]


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
    if not isinstance(reader, Transport):
        raise LocalProtocolError(
            f"wait_for_card() needs an open reader (from open_reader()), "
            f"not {type(reader).__name__}"
        )
    return reader.wait_for_card(timeout)


def read_card(
    uri: str,
    *,
    config: TerminalConfig | None = None,
    transaction: bool = False,
    wait: float = 10.0,
    timeout: float = 5.0,
    tracer: Tracer | None = None,
    on_card: Callable[[Transport], object] | None = None,
    **options: Any,
) -> CardData:
    """Open ``uri``, wait up to ``wait`` seconds for a card, and run the EMV read (with
    ``transaction=True`` also GENERATE AC); return the :class:`~contactless.emv.card.CardData`.

    ``config`` is the terminal's settings (defaults when ``None``); ``timeout`` bounds each
    exchange; ``tracer`` sees every exchange; ``on_card(reader)`` is called once a card is
    present (``trace.Recorder.attach`` notes the ATR there); ``options`` go to the backend
    (e.g. ``trace=`` for ``replay:``). Errors are
    :class:`~contactless.errors.ContactlessError` subclasses naming the command in flight;
    an argument of the wrong type is a :class:`~contactless.errors.LocalProtocolError`
    naming it, raised before the reader is opened.

    >>> contactless.read_card("sim:visa").brand  # doctest: +SKIP
    'visa'
    """
    # Imported here: opening a reader must not pay for the EMV flow until it is used.
    from .emv.driver import run
    from .emv.flow import read_flow
    from .emv.terminal import TerminalConfig
    from .session import Card

    # Checked before the reader opens, so a wrong argument never looks like a card problem.
    if config is not None and not isinstance(config, TerminalConfig):
        hint = " (build one with TerminalConfig.from_mapping())" if isinstance(config, dict) else ""
        raise LocalProtocolError(
            f"read_card(config=...) must be a TerminalConfig or None, "
            f"not {type(config).__name__}{hint}"
        )
    for name, value in (("tracer", tracer), ("on_card", on_card)):
        if value is not None and not callable(value):
            raise LocalProtocolError(
                f"read_card({name}=...) must be callable or None, not {type(value).__name__}"
            )
    if not isinstance(transaction, bool):
        raise LocalProtocolError(
            f"read_card(transaction=...) must be True or False, not {transaction!r:.40}"
        )
    check_timeout(wait, "read_card(wait=...)")
    check_timeout(timeout, "read_card(timeout=...)")
    config = config if config is not None else TerminalConfig.load()
    with open_reader(uri, timeout=timeout, **options) as reader:
        reader.wait_for_card(wait)
        # A replaying reader compares commands with its recording: it must know which
        # terminal settings they are sent with (replay:, whoever runs the flow).
        use_terminal = getattr(reader, "use_terminal", None)
        if callable(use_terminal):
            use_terminal(config)
        if on_card is not None:
            on_card(reader)
        card = Card(reader, timeout=timeout)
        if tracer is not None:
            card.add_tracer(tracer)
        data = run(card, read_flow(config, transaction=transaction))
        return data.with_reader(uri, card.atr)
