"""A session with one card: ISO 7816-4 exchange rules on top of any transport.

:class:`Card` turns a :class:`~contactless.apdu.Command` into a complete
:class:`~contactless.apdu.Response`, hiding the T=0 style status words that only mean
"ask again": ``61xx`` (more data waiting: GET RESPONSE until it is all read) and ``6Cxx``
(wrong Le: send the command again with Le = xx). Each exchange, including those follow-up
commands, has one deadline.
"""

from __future__ import annotations

import time

from .apdu import Command, Response
from .errors import RemoteProtocolError, TransportTimeout
from .transport.base import Tracer, Transport, check_timeout

__all__ = ["MAX_GET_RESPONSE_ROUNDS", "Card"]

#: GET RESPONSE rounds allowed in one exchange; a card still answering 61xx after this
#: many (over 16 kB at 256 bytes a round) is looping, not sending data.
MAX_GET_RESPONSE_ROUNDS = 64

_GET_RESPONSE = 0xC0


def _get_response(command: Command, length: int) -> Command:
    # GET RESPONSE is interindustry (CLA 00) even after a proprietary command such as
    # GET PROCESSING OPTIONS (CLA 80); keep the logical channel of an interindustry CLA
    # (ISO 7816-4 5.4.1: b2-b1 in the first range, b7 plus b4-b1 in the further range).
    if command.cla < 0x40:
        cla = command.cla & 0x03
    elif command.cla < 0x80:
        cla = command.cla & 0x4F
    else:
        cla = 0x00
    return Command(cla, _GET_RESPONSE, 0x00, 0x00, le=length or 256)


class Card:
    """A card reached through ``transport``; ``timeout`` is the default seconds for one
    whole :meth:`exchange` (follow-up GET RESPONSE and re-issued commands included).

    >>> with contactless.open_reader("sim:visa") as reader:  # doctest: +SKIP
    ...     card = Card(reader)
    ...     card.exchange(Command(0x00, 0xA4, 0x04, 0x00, b"2PAY.SYS.DDF01", le=256)).ok
    True
    """

    def __init__(self, transport: Transport, *, timeout: float = 5.0) -> None:
        self.transport = transport
        self.timeout = check_timeout(timeout)
        #: APDUs sent through this session so far (follow-up commands included).
        self.apdu_count = 0

    def __repr__(self) -> str:
        return f"<Card on {self.transport.uri!r}, {self.apdu_count} APDU(s)>"

    @property
    def atr(self) -> bytes | None:
        """The transport's ATR, when known."""
        return self.transport.atr

    @property
    def uid(self) -> bytes | None:
        """The card's UID, when known."""
        return self.transport.uid

    def add_tracer(self, tracer: Tracer) -> None:
        """Trace every APDU on the underlying transport (see ``Transport.add_tracer``)."""
        self.transport.add_tracer(tracer)

    def remove_tracer(self, tracer: Tracer) -> None:
        """Stop tracing with ``tracer``."""
        self.transport.remove_tracer(tracer)

    def exchange(self, command: Command, *, timeout: float | None = None) -> Response:
        """Send ``command`` and return its complete response.

        On ``61xx`` the card's pending data is fetched with GET RESPONSE (as often as it
        asks, up to :data:`MAX_GET_RESPONSE_ROUNDS`) and joined; on ``6Cxx`` the command is
        sent once more with Le = xx. Status words are otherwise returned, not raised.

        Raises :class:`~contactless.errors.TransportTimeout` when the whole exchange
        outlasts ``timeout`` (default :attr:`timeout`), and
        :class:`~contactless.errors.RemoteProtocolError` naming the command when the card
        answers with less than a status word or keeps asking to be asked again.
        """
        seconds = self.timeout if timeout is None else check_timeout(timeout)
        deadline = time.monotonic() + seconds
        what = command.describe()
        current = command
        reissued = False
        rounds = 0
        data = bytearray()
        while True:
            response = self._send(current, deadline, seconds, what)
            if response.sw1 == 0x6C:
                if reissued:
                    raise RemoteProtocolError(
                        f"card answered {response.sw1:02X}{response.sw2:02X} (wrong Le) to "
                        f"{what} again after it was re-sent with the Le it asked for"
                    )
                reissued = True
                current = current.with_le(response.sw2)
                continue
            data += response.data
            if response.sw1 != 0x61:
                return Response(bytes(data), response.sw1, response.sw2)
            rounds += 1
            if rounds > MAX_GET_RESPONSE_ROUNDS:
                raise RemoteProtocolError(
                    f"card still answered 61{response.sw2:02X} (more data) to {what} after "
                    f"{MAX_GET_RESPONSE_ROUNDS} GET RESPONSE rounds ({len(data)} bytes)"
                )
            current = _get_response(command, response.sw2)

    def transmit_raw(self, apdu: bytes, *, timeout: float | None = None) -> bytes:
        """Send raw APDU bytes and return the raw answer, with no 61xx/6Cxx handling."""
        seconds = self.timeout if timeout is None else check_timeout(timeout)
        self.apdu_count += 1
        return self.transport.transmit(apdu, timeout=seconds)

    def _send(self, command: Command, deadline: float, seconds: float, what: str) -> Response:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransportTimeout(
                f"{what} did not complete within {seconds:g} s "
                f"(stopped before sending {command.describe()})"
            )
        self.apdu_count += 1
        raw = self.transport.transmit(command.to_bytes(), timeout=remaining)
        if len(raw) < 2:
            raise RemoteProtocolError(
                f"the answer to {what} has {len(raw)} byte(s) ({raw.hex().upper() or 'empty'}); "
                "a response needs at least SW1 SW2",
                remedy="present the card again; if it keeps happening, the card or reader "
                "is faulty",
            )
        return Response(raw[:-2], raw[-2], raw[-1])
