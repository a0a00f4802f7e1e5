"""PC/SC contexts with deadlines: the one module that calls pyscard's ``SCard*`` functions.

pcscd never times out a call into a reader driver: if the card (or a virtual card behind
vsmartcard's vpcd) stops answering, ``SCardTransmit`` blocks forever, and so does every
later call on that reader. ``SCardCancel`` only interrupts ``SCardGetStatusChange``. Two
ways out were tried against pcsc-lite 1.9.9:

* **abort the context's socket** (Linux, pcsc-lite): each context is one Unix socket to
  pcscd. At ``SCardEstablishContext`` we find that socket in ``/proc/self/fd`` and keep a
  duplicate of it; at the deadline a watchdog thread calls ``shutdown()`` on it. The
  blocked call then returns ``SCARD_F_COMM_ERROR`` at once, in the caller's own thread,
  and pcscd drops everything the context held when its reader call finally returns. The
  context is dead afterwards and is released. This costs nothing per call (the caller
  only publishes its deadline), which matters: a vpcd round trip is ~50 µs and handing
  every call to a worker thread adds ~15 µs.
* **a worker thread** (everywhere else, or if the socket cannot be identified): the call
  runs on a per-context thread and the caller waits with a timeout. At the deadline the
  context is abandoned; the worker releases it whenever the driver lets go.

Either way a deadline raises :class:`CallAborted` and leaves the context unusable: its
owner establishes a new one (see :class:`PcscTransport` for the state it then promises).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from smartcard import scard  # ImportError here -> BackendUnavailable in the registry

from ..errors import ContactlessError, TransportError
from .pcsc_errors import (
    SCARD_E_NO_READERS_AVAILABLE,
    SCARD_E_TIMEOUT,
    SCARD_S_SUCCESS,
    pcsc_error,
)

__all__ = [
    "PNP_NOTIFICATION",
    "CallAborted",
    "PcscContext",
    "ReaderState",
    "state_flags",
]

logger = logging.getLogger("contactless.transport.pcsc")

#: The pseudo-reader whose state changes when a reader is added or removed.
PNP_NOTIFICATION = "\\\\?PnP?\\Notification"

#: How often the watchdog looks at the calls in flight (the deadline's resolution).
WATCHDOG_TICK = 0.01
#: The watchdog sleeps (no ticks) after this long without a call in flight.
WATCHDOG_PARK_AFTER = 1.0

#: SCARD_STATE_* bits worth naming, for messages and ``state_flags``.
_STATE_NAMES: tuple[tuple[int, str], ...] = (
    (scard.SCARD_STATE_IGNORE, "ignore"),
    (scard.SCARD_STATE_CHANGED, "changed"),
    (scard.SCARD_STATE_UNKNOWN, "unknown"),
    (scard.SCARD_STATE_UNAVAILABLE, "unavailable"),
    (scard.SCARD_STATE_EMPTY, "empty"),
    (scard.SCARD_STATE_PRESENT, "present"),
    (scard.SCARD_STATE_ATRMATCH, "atrmatch"),
    (scard.SCARD_STATE_EXCLUSIVE, "exclusive"),
    (scard.SCARD_STATE_INUSE, "inuse"),
    (scard.SCARD_STATE_MUTE, "mute"),
    (scard.SCARD_STATE_UNPOWERED, "unpowered"),
)


def state_flags(event_state: int) -> tuple[str, ...]:
    """Names of the SCARD_STATE_* bits set in ``event_state`` (the counter ignored)."""
    return tuple(name for bit, name in _STATE_NAMES if event_state & bit)


class CallAborted(Exception):
    """A PC/SC call overran its deadline and was aborted; the context is now dead.

    Internal to the PC/SC backend: callers turn it into
    :class:`~contactless.errors.TransportTimeout` with a message of their own.
    """


@dataclass(frozen=True, slots=True)
class ReaderState:
    """A reader's state from ``SCardGetStatusChange``.

    ``event_state`` keeps the raw value, including pcsc-lite's event counter in the high
    16 bits (it grows on every card insertion and removal), so ``changes`` can tell that a
    card was swapped between two looks even if one is present both times.
    """

    name: str
    event_state: int
    atr: bytes

    @property
    def present(self) -> bool:
        """A card is in the field (and not mute)."""
        return bool(self.event_state & scard.SCARD_STATE_PRESENT) and not (
            self.event_state & scard.SCARD_STATE_MUTE
        )

    @property
    def unavailable(self) -> bool:
        """The reader is gone or not usable (unplugged, driver failed)."""
        return bool(self.event_state & (scard.SCARD_STATE_UNAVAILABLE | scard.SCARD_STATE_UNKNOWN))

    @property
    def exclusive(self) -> bool:
        """Another application holds the card exclusively."""
        return bool(self.event_state & scard.SCARD_STATE_EXCLUSIVE)

    @property
    def in_use(self) -> bool:
        """Some application is connected to the card."""
        return bool(self.event_state & scard.SCARD_STATE_INUSE)

    @property
    def changes(self) -> int:
        """pcsc-lite's card event counter (0 on platforms without one)."""
        return (self.event_state >> 16) & 0xFFFF

    @property
    def flags(self) -> tuple[str, ...]:
        """The state bits by name, e.g. ``("present", "inuse")``."""
        return state_flags(self.event_state)


# --- finding the context's socket -----------------------------------------------------------

_PROC_FD = "/proc/self/fd"
# Establishing contexts one at a time keeps the /proc/self/fd difference unambiguous.
_ESTABLISH_LOCK = threading.Lock()


def _socket_links() -> dict[int, str] | None:
    """fd -> "socket:[inode]" for this process's sockets; None where /proc is missing."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        names = os.listdir(_PROC_FD)
    except OSError:
        return None
    links: dict[int, str] = {}
    for name in names:
        try:
            link = os.readlink(f"{_PROC_FD}/{name}")
        except OSError:
            continue  # closed meanwhile, or the listdir's own fd
        if link.startswith("socket:"):
            links[int(name)] = link
    return links


def _new_unix_socket(before: dict[int, str] | None) -> socket.socket | None:
    """A duplicate of the one Unix socket opened since ``before``, or None if unsure."""
    if before is None:
        return None
    after = _socket_links()
    if after is None:
        return None
    found: list[socket.socket] = []
    for fd, link in after.items():
        if before.get(fd) == link:
            continue
        try:
            candidate = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        if candidate.family == socket.AF_UNIX:
            found.append(candidate)
        else:
            candidate.close()
    if len(found) == 1:
        return found[0]
    for candidate in found:
        candidate.close()
    return None


# --- the watchdog ---------------------------------------------------------------------------


class _Watchdog:
    """One thread per process that aborts calls whose deadline passed.

    A call only publishes its deadline on its context (an attribute write): no lock, no
    wake-up, so a guarded call costs what an unguarded one does. The thread ticks every
    :data:`WATCHDOG_TICK` while calls are in flight and parks after
    :data:`WATCHDOG_PARK_AFTER` without any.
    """

    def __init__(self) -> None:
        self._contexts: set[PcscContext] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # Not parked until the thread parks itself: a new thread starts ticking, so calls
        # need not wake it (a wake-up per APDU cost more than the rest of the guard).
        self.parked = False

    def register(self, context: PcscContext) -> None:
        with self._lock:
            self._contexts.add(context)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="contactless pcsc watchdog", daemon=True
                )
                self._thread.start()

    def unregister(self, context: PcscContext) -> None:
        with self._lock:
            self._contexts.discard(context)

    def wake(self) -> None:
        self._wake.set()

    def _snapshot(self) -> list[PcscContext]:
        with self._lock:
            return list(self._contexts)

    def _run(self) -> None:
        idle_since = time.monotonic()
        while True:
            try:
                time.sleep(WATCHDOG_TICK)
                now = time.monotonic()
                busy = False
                for context in self._snapshot():
                    deadline = context._deadline
                    if deadline is None:
                        continue
                    busy = True
                    if now >= deadline:
                        context._abort(deadline)
                if busy:
                    idle_since = now
                elif now - idle_since >= WATCHDOG_PARK_AFTER:
                    self._park()
                    idle_since = time.monotonic()
            except Exception:  # the watchdog must outlive any surprise
                logger.exception("PC/SC watchdog error (continuing)")

    def _park(self) -> None:
        self._wake.clear()
        self.parked = True
        # A call may have published its deadline before it could see `parked`.
        if any(context._deadline is not None for context in self._snapshot()):
            self.parked = False
            return
        self._wake.wait()
        self.parked = False


_WATCHDOG = _Watchdog()
_SCARD_TRANSMIT = scard.SCardTransmit


class _CallThread:
    """The portable fallback: one worker thread per context that runs its calls."""

    def __init__(self, name: str) -> None:
        self._request = threading.Lock()
        self._request.acquire()
        self._done = threading.Lock()
        self._done.acquire()
        self._job: tuple[Callable[..., Any], tuple[Any, ...]] | None = None
        self._result: tuple[bool, Any] = (True, None)
        self.abandoned = False
        self.on_abandoned_return: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._request.acquire()
            job = self._job
            if job is None:
                return  # closed
            function, args = job
            try:
                self._result = (True, function(*args))
            except BaseException as error:  # handed back to the caller
                self._result = (False, error)
            if self.abandoned:
                if self.on_abandoned_return is not None:
                    self.on_abandoned_return()
                return
            self._done.release()

    def call(self, function: Callable[..., Any], args: tuple[Any, ...], timeout: float) -> Any:
        self._job = (function, args)
        self._request.release()
        if not self._done.acquire(timeout=max(timeout, 0.0)):
            self.abandoned = True
            raise CallAborted
        ok, value = self._result
        if not ok:
            raise value
        return value

    def close(self) -> None:
        if not self.abandoned:
            self._job = None
            self._request.release()


# --- the context ----------------------------------------------------------------------------


class PcscContext:
    """One PC/SC context (``SCardEstablishContext``) whose calls all have a deadline.

    Create it with :meth:`establish`; call ``SCard*`` functions through :meth:`call`;
    release it with :meth:`release`. After :class:`CallAborted` it is dead
    (:attr:`alive` is false) and must be released and replaced.
    """

    def __init__(self, handle: int, abort_socket: socket.socket | None) -> None:
        self.handle = handle
        self._abort_socket = abort_socket
        self._abort_lock = threading.Lock()
        self._deadline: float | None = None
        self._aborted = False
        self._released = False
        self._worker: _CallThread | None = None
        if abort_socket is not None:
            _WATCHDOG.register(self)

    @classmethod
    def establish(cls, *, doing: str = "connecting to pcscd") -> PcscContext:
        """Open a context; raises :class:`~contactless.errors.ServiceUnavailable` when
        pcscd is not running."""
        with _ESTABLISH_LOCK:
            before = _socket_links()
            try:
                code, handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            except Exception as error:
                raise TransportError(f"{doing} failed inside pyscard: {error}") from error
            if code != SCARD_S_SUCCESS:
                raise pcsc_error(code, doing=doing)
            abort_socket = _new_unix_socket(before)
        if abort_socket is None:
            logger.debug("no abort socket for PC/SC context %#x: using a worker thread", handle)
        return cls(handle, abort_socket)

    @property
    def alive(self) -> bool:
        """False once a call was aborted or the context was released."""
        return not (self._aborted or self._released)

    @property
    def abortable_in_place(self) -> bool:
        """True when deadlines abort the blocked call itself (the socket method)."""
        return self._abort_socket is not None

    def call(self, function: Callable[..., Any], *args: Any, deadline: float) -> Any:
        """Run ``function(*args)`` (an ``SCard*`` function), aborting it at ``deadline``
        (a :func:`time.monotonic` time). Raises :class:`CallAborted` at the deadline and
        :class:`~contactless.errors.TransportError` for an exception inside pyscard."""
        if not self.alive:
            raise CallAborted
        try:
            if self._abort_socket is None:
                return self._call_on_worker(function, args, deadline)
            self._deadline = deadline
            if _WATCHDOG.parked:
                _WATCHDOG.wake()
            try:
                result = function(*args)
            finally:
                with self._abort_lock:
                    self._deadline = None
                    aborted = self._aborted
            if aborted:
                raise CallAborted
            return result
        except (CallAborted, ContactlessError):
            raise
        except Exception as error:  # pyscard's TypeError/SWIG errors must not leak
            name = getattr(function, "__name__", "an SCard call")
            raise TransportError(
                f"{name} failed inside pyscard: {type(error).__name__}: {error}",
                remedy="this is a bug in contactless or pyscard; please report it",
            ) from error

    def transmit(self, card: int, protocol: int, apdu: bytes, deadline: float) -> Any:
        """``SCardTransmit`` with the deadline: :meth:`call` with fewer steps, because this
        one runs for every APDU (the socket guard costs two attribute writes and a lock)."""
        if self._abort_socket is None or self._aborted or self._released:
            return self.call(scard.SCardTransmit, card, protocol, list(apdu), deadline=deadline)
        self._deadline = deadline
        if _WATCHDOG.parked:
            _WATCHDOG.wake()
        try:
            result = _SCARD_TRANSMIT(card, protocol, list(apdu))
        except Exception as error:  # pyscard's TypeError/SWIG errors must not leak
            raise TransportError(
                f"SCardTransmit failed inside pyscard: {type(error).__name__}: {error}",
                remedy="this is a bug in contactless or pyscard; please report it",
            ) from error
        finally:
            with self._abort_lock:
                self._deadline = None
                aborted = self._aborted
        if aborted:
            raise CallAborted
        return result

    def _call_on_worker(
        self, function: Callable[..., Any], args: tuple[Any, ...], deadline: float
    ) -> Any:
        if self._worker is None:
            self._worker = _CallThread(f"contactless pcsc {self.handle:#x}")
        try:
            return self._worker.call(function, args, deadline - time.monotonic())
        except CallAborted:
            self._aborted = True
            handle = self.handle
            # The worker still owns the blocked call; it releases the context on return.
            self._worker.on_abandoned_return = lambda: _release_quietly(handle)
            self._released = True
            raise

    def _abort(self, deadline: float) -> None:
        """Called by the watchdog: abort the call published with ``deadline``."""
        with self._abort_lock:
            if self._deadline != deadline or self._aborted:
                return
            self._aborted = True
            sock = self._abort_socket
        if sock is None:
            return
        with contextlib.suppress(OSError):  # already closed by the peer
            sock.shutdown(socket.SHUT_RDWR)
        logger.debug("aborted a PC/SC call on context %#x at its deadline", self.handle)

    def release(self) -> None:
        """Release the context (idempotent, never raises)."""
        if self._released and self._worker is None:
            return
        if not self._released:
            self._released = True
            if self._worker is not None and self._worker.abandoned:
                pass  # the worker releases it
            else:
                _release_quietly(self.handle)
        _WATCHDOG.unregister(self)
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        if self._abort_socket is not None:
            self._abort_socket.close()
            self._abort_socket = None

    def cancel(self) -> None:
        """Interrupt a blocked ``SCardGetStatusChange`` on this context (thread-safe)."""
        if self.alive:
            try:
                scard.SCardCancel(self.handle)
            except Exception:  # cancelling is best effort; the caller has a timeout anyway
                logger.debug("SCardCancel failed", exc_info=True)

    # --- conveniences used by the transport and the monitor ---------------------------------

    def list_readers(self, *, deadline: float) -> list[str]:
        """Reader names in pcscd's order; ``[]`` when there are none."""
        code, names = self.call(scard.SCardListReaders, self.handle, [], deadline=deadline)
        code &= 0xFFFFFFFF
        if code == SCARD_E_NO_READERS_AVAILABLE:
            return []
        if code != SCARD_S_SUCCESS:
            raise pcsc_error(code, doing="listing PC/SC readers")
        return [str(name) for name in names]

    def status_change(
        self,
        readers: Sequence[tuple[str, int]],
        timeout: float,
    ) -> tuple[int, list[ReaderState]]:
        """``SCardGetStatusChange`` for (name, current state) pairs, waiting up to
        ``timeout`` seconds. Returns (code, states); ``SCARD_E_TIMEOUT`` is a normal code
        here, not an error."""
        millis = max(int(timeout * 1000), 0)
        deadline = time.monotonic() + timeout + 5.0  # pcscd enforces the timeout itself
        code, states = self.call(
            scard.SCardGetStatusChange,
            self.handle,
            millis,
            [(name, current) for name, current in readers],
            deadline=deadline,
        )
        code &= 0xFFFFFFFF
        if code not in (SCARD_S_SUCCESS, SCARD_E_TIMEOUT):
            return code, []
        return code, [
            ReaderState(str(name), int(event) & 0xFFFFFFFF, bytes(atr))
            for name, event, atr in states
        ]


def _release_quietly(handle: int) -> None:
    try:
        scard.SCardReleaseContext(handle)
    except Exception:  # releasing a context whose service died must not raise
        logger.debug("SCardReleaseContext(%#x) failed", handle, exc_info=True)
