"""Reader and card events from pcscd: readers added and removed, cards inserted and
removed, the service lost and restored.

:class:`PcscMonitor` runs one background thread around ``SCardGetStatusChange`` (with a
timeout, plus the ``\\\\?PnP?\\Notification`` pseudo-reader so a reader plugged in wakes it).
It first emits the current state (events with ``initial=True``), then every change, and
survives pcscd restarts: on losing the service it emits ``service_lost`` and removes what
it knew, retries with exponential backoff, and on reconnecting emits ``service_restored``
and the readers and cards it finds. Use it as an iterator or with callbacks::

    with PcscMonitor() as monitor:
        for event in monitor:
            print(event.kind.value, event.reader)

    monitor = PcscMonitor(callback=print)
    monitor.start()
    ...
    monitor.stop()

Callbacks run on the monitor thread; one that raises is logged and the monitor carries on.
An unexpected failure inside the monitor does not end it silently: iterating raises it
(:attr:`PcscMonitor.error` keeps it), and it is logged.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from smartcard import scard

from ..errors import ContactlessError, LocalProtocolError, ServiceUnavailable, TransportError
from .base import check_timeout
from .pcsc import reader_uri
from .pcsc_context import PNP_NOTIFICATION, CallAborted, PcscContext, ReaderState
from .pcsc_errors import (
    SCARD_E_CANCELLED,
    SCARD_E_TIMEOUT,
    SCARD_E_UNKNOWN_READER,
    SCARD_S_SUCCESS,
    code_name,
)

__all__ = ["EventKind", "PcscMonitor", "ReaderEvent"]

logger = logging.getLogger("contactless.transport.pcsc")

#: Longest single wait in SCardGetStatusChange (also how often the reader list is re-read
#: when the PnP notification is not supported).
POLL_SECONDS = 0.5
#: Backoff between attempts to reach pcscd: first delay, and the cap.
RETRY_MIN = 0.2
RETRY_MAX = 5.0
#: Seconds stop() waits for the thread.
STOP_TIMEOUT = 5.0


class EventKind(enum.Enum):
    """What happened."""

    READER_ADDED = "reader_added"
    READER_REMOVED = "reader_removed"
    CARD_INSERTED = "card_inserted"
    CARD_REMOVED = "card_removed"
    SERVICE_LOST = "service_lost"
    SERVICE_RESTORED = "service_restored"


@dataclass(frozen=True, slots=True)
class ReaderEvent:
    """One change. ``reader`` is ``None`` for service events; ``atr`` is set for
    ``card_inserted``; ``initial`` marks the events that describe the state found at start
    (or on reconnecting to pcscd)."""

    kind: EventKind
    reader: str | None = None
    atr: bytes | None = None
    initial: bool = False
    detail: str = ""

    @property
    def uri(self) -> str | None:
        """The ``pcsc:`` URI of the reader, for opening it."""
        return reader_uri(self.reader) if self.reader is not None else None

    def __str__(self) -> str:
        parts = [self.kind.value]
        if self.reader is not None:
            parts.append(repr(self.reader))
        if self.atr:
            parts.append(f"ATR {self.atr.hex().upper()}")
        if self.detail:
            parts.append(f"({self.detail})")
        return " ".join(parts)


#: Codes after which the context is useless: pcscd went away (or restarted).
_SERVICE_GONE = frozenset({0x8010001D, 0x8010001E, 0x80100013, 0x80100003, 0x0000006D, 0x6})

_Callback = Callable[[ReaderEvent], None]


class PcscMonitor:
    """Watch pcscd for reader and card changes on a background thread."""

    def __init__(
        self,
        *,
        callback: _Callback | None = None,
        poll: float = POLL_SECONDS,
        retry_min: float = RETRY_MIN,
        retry_max: float = RETRY_MAX,
    ) -> None:
        self._callbacks: list[_Callback] = [callback] if callback is not None else []
        self.poll = check_timeout(poll, "poll")
        self.retry_min = check_timeout(retry_min, "retry_min")
        self.retry_max = max(check_timeout(retry_max, "retry_max"), self.retry_min)
        self._queue: queue.Queue[ReaderEvent | None] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._context: PcscContext | None = None
        self._known: dict[str, ReaderState] = {}
        self._service_up: bool | None = None  # None: not looked yet
        self._use_pnp = True
        self._lock = threading.Lock()
        #: The unexpected error that ended the monitor, if any.
        self.error: ContactlessError | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start watching (the thread emits the current state first)."""
        if self._thread is not None:
            raise LocalProtocolError("this PcscMonitor was already started")
        self._thread = threading.Thread(target=self._run, name="contactless pcsc monitor")
        self._thread.daemon = True
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop watching and wait (up to ``timeout`` s) for the thread to end; iterators
        end once they have drained the events already emitted."""
        self._stopping.set()
        with self._lock:
            context = self._context
        if context is not None:
            context.cancel()  # wakes SCardGetStatusChange at once
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("the PC/SC monitor thread did not stop within %g s", timeout)

    @property
    def running(self) -> bool:
        """True while the monitor thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- consuming events -------------------------------------------------------------------

    def add_callback(self, callback: _Callback) -> None:
        """Call ``callback(event)`` for every later event (on the monitor thread)."""
        self._callbacks.append(callback)

    def get(self, timeout: float | None = None) -> ReaderEvent | None:
        """The next event, waiting up to ``timeout`` seconds (``None``: until the monitor
        stops); ``None`` when there is none. Raises the monitor's failure, if it failed.

        On a monitor that was never started nothing will ever arrive, so instead of
        waiting this raises :class:`~contactless.errors.LocalProtocolError` (events already
        emitted are still returned first)."""
        deadline = None if timeout is None else time.monotonic() + check_timeout(timeout)
        if self._thread is None:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                raise LocalProtocolError(
                    "this PcscMonitor is not running: start the monitor first "
                    "(monitor.start() or `with PcscMonitor() as monitor:`)"
                ) from None
            if event is not None:
                return event
        while True:
            wait = 0.1 if deadline is None else min(0.1, max(deadline - time.monotonic(), 0))
            try:
                event = self._queue.get(timeout=wait)
            except queue.Empty:
                event = None
            if event is not None:
                return event
            if self.error is not None:
                raise self.error
            # Stopped, or its thread ended (it only ends on stop() or a failure, but a
            # dead thread must never leave get() waiting for nothing).
            if not self.running or (deadline is not None and time.monotonic() >= deadline):
                return None

    def __iter__(self) -> Iterator[ReaderEvent]:
        """Yield events until the monitor is stopped (and its events drained); raises
        :class:`~contactless.errors.LocalProtocolError` on a monitor never started."""
        while True:
            event = self.get()
            if event is None:
                return
            yield event

    def wait_for(
        self,
        kind: EventKind,
        *,
        reader: str | None = None,
        timeout: float,
    ) -> ReaderEvent:
        """The next event of ``kind`` (on ``reader``, if given); events before it are
        consumed. Raises :class:`~contactless.errors.TransportTimeout` after ``timeout``."""
        from ..errors import TransportTimeout

        deadline = time.monotonic() + check_timeout(timeout)
        while True:
            remaining = deadline - time.monotonic()
            event = self.get(max(remaining, 0.001)) if remaining > 0 else None
            if event is None:
                where = f" on {reader!r}" if reader else ""
                raise TransportTimeout(f"no {kind.value} event{where} within {timeout:g} s")
            if event.kind is kind and (reader is None or event.reader == reader):
                return event

    def snapshot(self) -> dict[str, bool]:
        """Reader name -> card present, as the monitor last saw it."""
        with self._lock:
            return {name: state.present for name, state in self._known.items()}

    # --- the thread -------------------------------------------------------------------------

    def _emit(self, event: ReaderEvent) -> None:
        logger.debug("pcsc event: %s", event)
        self._queue.put(event)
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception:
                logger.exception("PC/SC monitor callback %r failed on %s", callback, event)

    def _run(self) -> None:
        try:
            self._watch()
        except Exception as error:
            failure = (
                error
                if isinstance(error, ContactlessError)
                else TransportError(
                    f"the PC/SC monitor failed: {type(error).__name__}: {error}",
                    remedy="this is a bug in contactless; please report it",
                )
            )
            logger.exception("the PC/SC monitor stopped on an unexpected error")
            self.error = failure
        finally:
            with self._lock:
                context, self._context = self._context, None
            if context is not None:
                context.release()
            self._queue.put(None)  # wakes a blocked get()

    def _watch(self) -> None:
        delay = self.retry_min
        while not self._stopping.is_set():
            try:
                context = PcscContext.establish(doing="watching PC/SC readers")
            except ServiceUnavailable as error:
                self._service_lost(str(error))
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, self.retry_max)
                continue
            delay = self.retry_min
            with self._lock:
                self._context = context
            restored = self._service_up is False
            initial = self._service_up is None or restored
            if restored:
                self._emit(ReaderEvent(EventKind.SERVICE_RESTORED, detail="pcscd is back"))
            self._service_up = True
            try:
                self._watch_context(context, initial=initial)
            finally:
                with self._lock:
                    self._context = None
                context.release()

    def _service_lost(self, detail: str) -> None:
        if self._service_up is False:
            return
        initial = self._service_up is None
        self._service_up = False
        self._emit(ReaderEvent(EventKind.SERVICE_LOST, initial=initial, detail=detail))
        for name in list(self._known):
            self._forget(name, detail="pcscd stopped")

    def _forget(self, name: str, *, detail: str) -> None:
        with self._lock:
            state = self._known.pop(name, None)
        if state is not None and state.present:
            self._emit(ReaderEvent(EventKind.CARD_REMOVED, name, detail=detail))
        self._emit(ReaderEvent(EventKind.READER_REMOVED, name, detail=detail))

    def _watch_context(self, context: PcscContext, *, initial: bool) -> None:
        """Follow changes on one context until pcscd goes away or the monitor stops."""
        pnp_state = scard.SCARD_STATE_UNAWARE
        relist = True
        while not self._stopping.is_set():
            deadline = time.monotonic() + self.poll + 5.0
            if relist:
                try:
                    names = context.list_readers(deadline=deadline)
                except (CallAborted, ServiceUnavailable) as error:
                    self._service_lost(str(error) or "pcscd did not answer")
                    return
                try:
                    self._sync_readers(names, context, initial=initial)
                except CallAborted:
                    self._service_lost("pcscd did not answer a status request")
                    return
                initial = False
                relist = False
            watched = [(name, self._current(name)) for name in self._known]
            if self._use_pnp:
                watched.append((PNP_NOTIFICATION, pnp_state))
            try:
                code, states = context.status_change(watched, self.poll)
            except CallAborted:
                self._service_lost("pcscd did not answer a status request")
                return
            if code in (SCARD_E_TIMEOUT, SCARD_E_CANCELLED):
                relist = relist or not self._use_pnp
                continue
            if code == SCARD_E_UNKNOWN_READER:
                relist = True  # a reader vanished between listing and watching it
                continue
            if code in _SERVICE_GONE:
                self._service_lost(f"pcscd went away [{code_name(code)}]")
                return
            if code != SCARD_S_SUCCESS:
                logger.warning("SCardGetStatusChange failed with %s; retrying", code_name(code))
                self._stopping.wait(self.retry_min)
                continue
            for state in states:
                if state.name == PNP_NOTIFICATION:
                    if state.event_state & scard.SCARD_STATE_UNKNOWN:
                        self._use_pnp = False  # not supported: re-list on every poll instead
                    elif state.event_state & scard.SCARD_STATE_CHANGED:
                        relist = True
                    pnp_state = state.event_state & ~scard.SCARD_STATE_CHANGED
                else:
                    self._update(state)

    def _current(self, name: str) -> int:
        return int(self._known[name].event_state & ~scard.SCARD_STATE_CHANGED)

    def _sync_readers(self, names: list[str], context: PcscContext, *, initial: bool) -> None:
        for name in [name for name in self._known if name not in names]:
            self._forget(name, detail="reader unplugged")
        added = [name for name in names if name not in self._known]
        if not added:
            return
        code, states = context.status_change(
            [(name, scard.SCARD_STATE_UNAWARE) for name in added], 0.0
        )
        if code not in (SCARD_S_SUCCESS, SCARD_E_TIMEOUT):
            logger.debug("reading new readers' states failed with %s", code_name(code))
            return  # picked up on the next listing
        for state in states:
            with self._lock:
                self._known[state.name] = state
            self._emit(ReaderEvent(EventKind.READER_ADDED, state.name, initial=initial))
            if state.present:
                self._emit(
                    ReaderEvent(EventKind.CARD_INSERTED, state.name, state.atr, initial=initial)
                )

    def _update(self, state: ReaderState) -> None:
        with self._lock:
            before = self._known.get(state.name)
            self._known[state.name] = state
        if before is None:
            return
        swapped = before.present and state.present and state.changes != before.changes
        if before.present and (not state.present or swapped):
            self._emit(ReaderEvent(EventKind.CARD_REMOVED, state.name))
        if state.present and (not before.present or swapped):
            self._emit(ReaderEvent(EventKind.CARD_INSERTED, state.name, state.atr))
