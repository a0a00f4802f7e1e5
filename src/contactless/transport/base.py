"""The contract every reader backend fulfils: bytes in, bytes out, with a deadline.

:class:`Transport` is the one choke point between the library and a backend (pyscard,
nfcpy, the emulator, a recorded trace). Its public :meth:`Transport.transmit` checks the
call, enforces the deadline, translates stray backend exceptions, times the exchange and
feeds every tracer; subclasses only implement :meth:`Transport._transmit` (and, when they
hold resources, ``_connect`` / ``_disconnect``). This is pyscard's ``transmit ->
observers -> doTransmit`` shape, without its silent no-op base, list-of-int bytes and
camelCase.

A backend whose blocking call cannot honour a timeout (PC/SC's ``SCardTransmit`` has none)
keeps :attr:`Transport.enforces_deadline` false: the base then runs ``_transmit`` on a
watchdog thread and raises :class:`~contactless.errors.TransportTimeout` at the deadline,
so no caller ever hangs on a stuck reader.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Self

from ..apdu import Command, Response
from ..errors import (
    ContactlessError,
    LocalProtocolError,
    NoCard,
    OpenError,
    TransportError,
    TransportTimeout,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "ExchangeEvent",
    "ReaderIdentity",
    "ReaderInfo",
    "Tracer",
    "Transport",
    "check_timeout",
    "describe_apdu",
    "describe_response",
    "format_seconds",
]

#: Accepted APDU types (a tuple: building the union type per call costs more than the check).
_BYTES_LIKE = (bytes, bytearray, memoryview)

logger = logging.getLogger("contactless.transport")

#: Seconds one exchange may take when the caller does not say.
DEFAULT_TIMEOUT = 5.0

#: How often the default :meth:`Transport.wait_for_card` polls :meth:`Transport.card_present`.
CARD_POLL_INTERVAL = 0.05


@dataclass(frozen=True, slots=True)
class ReaderIdentity:
    """Who the reader is, as far as the backend can tell (``None`` when unknown)."""

    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None
    driver: str | None = None


@dataclass(frozen=True, slots=True)
class ExchangeEvent:
    """One command/response exchange, as seen by tracers.

    ``response`` is ``None`` and ``error`` set when the exchange failed; ``seconds`` is the
    time spent in the exchange either way.
    """

    command: bytes
    response: bytes | None
    seconds: float
    error: ContactlessError | None = None

    def __repr__(self) -> str:
        # No bytes: the response (and some commands) hold card data.
        what = describe_apdu(self.command, show_bytes=False)
        took = format_seconds(self.seconds)
        if self.error is not None or self.response is None:
            failure = type(self.error).__name__ if self.error is not None else "no answer"
            return f"<ExchangeEvent {what} failed ({failure}) after {took}>"
        return f"<ExchangeEvent {what} -> {describe_response(self.response)} in {took}>"


#: A tracer is called once per exchange, after it ends (successfully or not).
Tracer = Callable[[ExchangeEvent], None]


@dataclass(frozen=True, slots=True)
class ReaderInfo:
    """A reader found by :func:`contactless.transport.detect`.

    ``uri`` opens it; ``card_present`` is ``None`` when the backend cannot tell without
    connecting. ``available`` is false for an entry that stands for a backend with nothing
    to open (its extra is not installed, its service is down, it found no reader), with
    the reason in ``detail``.
    """

    uri: str
    name: str
    card_present: bool | None
    backend: str
    detail: str = ""
    available: bool = True


def describe_apdu(apdu: bytes, *, show_bytes: bool = True) -> str:
    """Name a command APDU for messages, e.g. ``READ RECORD SFI 1 record 2``; falls back to
    hex for bytes that do not parse as a command, or with ``show_bytes=False`` (for reprs,
    which show no data) to their length only."""
    try:
        return Command.from_bytes(apdu).describe()
    except ContactlessError:
        if show_bytes:
            return f"command {apdu.hex().upper()}"
        return f"malformed {len(apdu)}-byte command"


def describe_response(raw: bytes) -> str:
    """Name a raw answer by its status word and data length, never its data (which may hold
    a PAN), e.g. ``SW 9000, 65 data bytes``."""
    if len(raw) < 2:
        return f"{len(raw)}-byte answer without SW1 SW2"
    return Response.from_bytes(raw).describe()


def format_seconds(seconds: float) -> str:
    """A duration for messages, to 3 significant digits: ``"5 s"`` for 4.99999 (a deadline
    computed from the clock), ``"0.25 s"``, ``"1000 s"`` (never an exponent)."""
    if 0 < seconds < 0.001:
        return f"{seconds * 1000:.3g} ms"
    text = f"{seconds:.3g}"
    return f"{seconds:.0f} s" if "e" in text else f"{text} s"


def check_timeout(timeout: float, what: str = "timeout") -> float:
    """Return ``timeout`` as a float if it is a positive finite number of seconds, else raise
    :class:`~contactless.errors.LocalProtocolError`."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise LocalProtocolError(f"{what} must be a number of seconds, got {timeout!r}")
    if not math.isfinite(timeout) or timeout <= 0:
        raise LocalProtocolError(f"{what} must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


class Transport(ABC):
    """A connection to one reader (and the card on it), opened from a URI.

    Use it as a context manager, or call :meth:`connect` / :meth:`disconnect`::

        with contactless.transport.open("sim:visa") as reader:
            reader.wait_for_card(5)
            answer = reader.transmit(bytes.fromhex("00A404000E325041592E5359532E444446303100"))

    Subclasses set :attr:`atr`, :attr:`ats`, :attr:`uid` and :attr:`identity` when they
    learn them, and implement :meth:`_transmit` and :meth:`_card_present`.
    """

    #: The URI scheme this backend serves (``"pcsc"``, ``"sim"``...).
    scheme: ClassVar[str] = ""
    #: True when ``_transmit`` itself returns or raises by its ``timeout``; false makes the
    #: base run it on a watchdog thread.
    enforces_deadline: ClassVar[bool] = False

    def __init__(self, uri: str, *, timeout: float | None = None) -> None:
        self.uri = uri
        #: Default seconds per exchange when :meth:`transmit` is given none.
        self.timeout = DEFAULT_TIMEOUT if timeout is None else check_timeout(timeout)
        #: Answer to reset (PC/SC style; contactless readers synthesise one).
        self.atr: bytes | None = None
        #: ISO 14443-4 answer to select, when the backend sees it.
        self.ats: bytes | None = None
        #: The card's anti-collision UID, when known.
        self.uid: bytes | None = None
        self.identity = ReaderIdentity(driver=type(self).__module__)
        self._connected = False
        self._tracers: list[Tracer] = []
        self._lock = threading.Lock()
        # A watchdog thread still blocked in a backend call after its deadline passed.
        self._stuck: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True between :meth:`connect` and :meth:`disconnect`."""
        return self._connected

    def connect(self) -> None:
        """Open the reader. Does nothing when already connected.

        Raises an :class:`~contactless.errors.OpenError` subclass naming the reader.
        """
        if self._connected:
            return
        try:
            self._connect()
        except ContactlessError:
            raise
        except Exception as error:
            raise OpenError(
                f"cannot open {self.uri}: {type(error).__name__}: {error}",
                remedy="this is a bug in the backend; please report it with the message",
            ) from error
        self._connected = True

    def disconnect(self) -> None:
        """Release the reader. Safe to call more than once."""
        if not self._connected:
            return
        self._connected = False
        self.atr = self.ats = self.uid = None
        try:
            self._disconnect()
        except ContactlessError:
            raise
        except Exception as error:
            raise TransportError(
                f"error while closing {self.uri}: {type(error).__name__}: {error}"
            ) from error

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.disconnect()
            return
        # Already failing: a second error from closing must not hide the first one.
        try:
            self.disconnect()
        except ContactlessError as close_error:
            logger.warning("%s", close_error)

    def __repr__(self) -> str:
        state = "connected" if self._connected else "closed"
        return f"<{type(self).__name__} {self.uri!r} {state}>"

    # --- tracers --------------------------------------------------------------------------

    def add_tracer(self, tracer: Tracer) -> None:
        """Call ``tracer(event)`` after every exchange (see :class:`ExchangeEvent`)."""
        self._tracers.append(tracer)

    def remove_tracer(self, tracer: Tracer) -> None:
        """Stop calling ``tracer``; does nothing if it was not added."""
        if tracer in self._tracers:
            self._tracers.remove(tracer)

    def _notify(self, event: ExchangeEvent) -> None:
        for tracer in list(self._tracers):
            # A broken tracer must not lose a response the card has already committed to
            # (a GENERATE AC has moved the ATC): report it and carry on.
            try:
                tracer(event)
            except Exception:
                logger.exception("tracer %r failed on an exchange with %s", tracer, self.uri)

    # --- exchanges ------------------------------------------------------------------------

    def transmit(self, apdu: bytes, *, timeout: float | None = None) -> bytes:
        """Send one command APDU and return the raw response (data + SW1 SW2).

        ``timeout`` (seconds) defaults to :attr:`timeout`. Raises
        :class:`~contactless.errors.TransportTimeout` at the deadline,
        :class:`~contactless.errors.CardRemoved` / :class:`~contactless.errors.TransportError`
        when the exchange fails, and :class:`~contactless.errors.LocalProtocolError` when
        the transport is closed or ``apdu`` is not a command.
        """
        if type(apdu) is bytes:
            command = apdu
        elif isinstance(apdu, _BYTES_LIKE):
            command = bytes(apdu)
        else:
            raise LocalProtocolError(f"an APDU must be bytes, not {type(apdu).__name__}")
        if len(command) < 4:
            raise LocalProtocolError(
                f"a command APDU needs at least 4 bytes (CLA INS P1 P2), got {command.hex()!r}"
            )
        seconds = self.timeout if timeout is None else check_timeout(timeout)
        if not self._connected:
            raise LocalProtocolError(
                f"cannot send {describe_apdu(command)}: the transport {self.uri} is closed",
                remedy="call connect() first, or use contactless.open_reader() as a `with` block",
            )
        # This is the hot path of every reader: events and log lines are built only when
        # someone listens (tools/bench_transmit.py holds it within 10% of raw pyscard).
        start = time.perf_counter()
        try:
            response = self._exchange_with_deadline(command, seconds)
        except ContactlessError as error:
            if self._tracers:
                self._notify(ExchangeEvent(command, None, time.perf_counter() - start, error))
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s: %s failed: %s", self.uri, describe_apdu(command), error)
            raise
        elapsed = time.perf_counter() - start
        if self._tracers:
            self._notify(ExchangeEvent(command, response, elapsed, None))
        if logger.isEnabledFor(logging.DEBUG):
            # Only the status word is logged: response data may hold a PAN.
            logger.debug(
                "%s: %s -> %d byte(s), SW %s in %.1f ms",
                self.uri,
                describe_apdu(command),
                len(response),
                response[-2:].hex().upper(),
                elapsed * 1000,
            )
        return response

    def _exchange_with_deadline(self, command: bytes, seconds: float) -> bytes:
        lock = self._lock
        if lock.acquire(blocking=False):
            remaining = seconds
        else:
            # Another thread is mid-exchange on this reader; wait for it, but not forever.
            waited_from = time.monotonic()
            if not lock.acquire(timeout=seconds):
                raise TransportTimeout(
                    f"{describe_apdu(command)} not sent: {self.uri} stayed busy with another "
                    f"exchange for {format_seconds(seconds)}"
                )
            remaining = seconds - (time.monotonic() - waited_from)
            if remaining <= 0:
                lock.release()
                raise TransportTimeout(
                    f"{describe_apdu(command)} not sent: no time left of {format_seconds(seconds)}"
                )
        try:
            if self.enforces_deadline:
                raw = self._call_backend(command, remaining)
            else:
                raw = self._call_on_watchdog(command, time.monotonic() + remaining, seconds)
        finally:
            lock.release()
        if type(raw) is bytes:
            return raw
        if isinstance(raw, bytearray | memoryview):
            return bytes(raw)
        raise TransportError(
            f"{self.uri} answered {describe_apdu(command)} with "
            f"{type(raw).__name__} instead of bytes",
            remedy="this is a bug in the backend; please report it",
        )

    def _call_backend(self, command: bytes, timeout: float) -> bytes:
        """Call ``_transmit`` and translate anything that is not already ours."""
        try:
            return self._transmit(command, timeout)
        except ContactlessError:
            raise
        except Exception as error:
            raise TransportError(
                f"{self.uri} failed during {describe_apdu(command)}: "
                f"{type(error).__name__}: {error}"
            ) from error

    def _call_on_watchdog(self, command: bytes, deadline: float, seconds: float) -> bytes:
        # A previous call that overran its deadline still owns the backend; the backend is
        # not reentrant, so wait for it to come back (within this exchange's deadline).
        if self._stuck is not None:
            self._stuck.join(max(deadline - time.monotonic(), 0.0))
            if self._stuck.is_alive():
                raise TransportTimeout(
                    f"{describe_apdu(command)} not sent: an earlier exchange with {self.uri} "
                    "is still blocked in the backend",
                    remedy="disconnect and reconnect the reader",
                )
            self._stuck = None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransportTimeout(
                f"{describe_apdu(command)} not sent: no time left of {format_seconds(seconds)}"
            )
        outcome: list[bytes | BaseException] = []
        done = threading.Event()

        def run() -> None:
            try:
                outcome.append(self._call_backend(command, remaining))
            except BaseException as error:  # handed to the waiting thread below
                outcome.append(error)
            finally:
                done.set()

        worker = threading.Thread(target=run, name=f"contactless {self.uri}", daemon=True)
        worker.start()
        if not done.wait(remaining):
            self._stuck = worker
            raise TransportTimeout(
                f"no answer to {describe_apdu(command)} from {self.uri} "
                f"within {format_seconds(seconds)}"
            )
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        return result

    # --- card presence --------------------------------------------------------------------

    def card_present(self) -> bool:
        """True when a card is in the field and reachable (false when disconnected)."""
        if not self._connected:
            return False
        try:
            return self._card_present()
        except ContactlessError:
            raise
        except Exception as error:
            raise TransportError(
                f"cannot tell whether a card is on {self.uri}: {type(error).__name__}: {error}"
            ) from error

    def wait_for_card(self, timeout: float) -> bool:
        """Wait until a card is present; return True, or raise
        :class:`~contactless.errors.NoCard` when ``timeout`` seconds pass without one."""
        seconds = check_timeout(timeout)
        if not self._connected:
            raise LocalProtocolError(
                f"cannot wait for a card: the transport {self.uri} is closed",
                remedy="call connect() first, or use contactless.open_reader() as a `with` block",
            )
        if self._wait_for_card(time.monotonic() + seconds):
            return True
        raise NoCard(f"no card on {self.uri} after {format_seconds(seconds)}")

    def _wait_for_card(self, deadline: float) -> bool:
        """Return True once a card is present, False at ``deadline`` (a monotonic time).

        The default polls :meth:`card_present`; backends with a change notification
        (PC/SC ``SCardGetStatusChange``) override it.
        """
        while True:
            if self.card_present():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(CARD_POLL_INTERVAL, remaining))

    # --- backend hooks --------------------------------------------------------------------

    def _connect(self) -> None:  # noqa: B027 - optional hook, most backends override it
        """Open the backend's resources; on failure, release them and raise an OpenError."""

    def _disconnect(self) -> None:  # noqa: B027 - optional hook, most backends override it
        """Release the backend's resources."""

    @abstractmethod
    def _transmit(self, apdu: bytes, timeout: float) -> bytes:
        """Exchange one APDU within ``timeout`` seconds; raise only contactless errors."""

    @abstractmethod
    def _card_present(self) -> bool:
        """Whether a card is reachable now (called only while connected)."""

    @classmethod
    def detect(cls) -> list[ReaderInfo]:
        """The readers of this backend available on this machine (default: none)."""
        return []
