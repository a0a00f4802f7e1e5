"""Drive a sans-I/O flow (``emv.flow``) over a card session: the only I/O in ``emv``.

>>> with contactless.open_reader("sim:visa") as reader:  # doctest: +SKIP
...     card_data = run(Card(reader), read_flow(TerminalConfig()))
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol, TypeVar

from ..apdu import Command, Response
from ..errors import ContactlessError, ExchangeError

__all__ = ["CommandExchanger", "run"]

T = TypeVar("T")


class CommandExchanger(Protocol):
    """What :func:`run` needs from a card: ``session.Card`` is one."""

    def exchange(self, command: Command) -> Response:
        """Send ``command``, return its complete response."""
        ...


def _naming_command(error: ExchangeError, command: Command) -> ContactlessError:
    """``error`` re-worded to name the flow's command, unless it already does (a transport
    names the APDU it sent, which may be a GET RESPONSE the session added)."""
    what = command.describe()
    if what in error.message or type(error).__init__ is not ContactlessError.__init__:
        return error
    return type(error)(f"{what}: {error.message}", remedy=error.remedy)


def run(card: CommandExchanger, flow: Generator[Command, Response, T]) -> T:
    """Send each command ``flow`` yields through ``card.exchange`` and feed back the
    response; return what the flow returns (for ``read_flow``: the ``CardData``).

    Errors raised by the card (card removed, timeout, transmission error) are re-raised
    naming the command in flight, e.g. ``card removed during READ RECORD SFI 1 record 2``;
    errors raised by the flow (status words, malformed data) already name it. The flow is
    closed either way.
    """
    try:
        command = next(flow)
        while True:
            try:
                response = card.exchange(command)
            except ExchangeError as error:
                named = _naming_command(error, command)
                if named is error:
                    raise
                raise named from error
            command = flow.send(response)
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        flow.close()
