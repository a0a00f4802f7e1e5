"""Serve a virtual card to pcscd through vsmartcard's vpcd reader driver.

vpcd (``libifdvpcd.so``, Debian package ``vsmartcard-vpcd``) is a pcscd reader driver
whose "card" is a TCP peer. As its sources have it (``virtualsmartcard/src/vpcd/vpcd.c``
and ``ifd-vpcd.c``; the Python ``VirtualSmartcard.py`` is the reference client):

* vpcd **listens**: one port per slot, ``CHANNELID`` from its ``reader.conf`` entry for
  slot 0 (Debian: ``0x8C7B`` = 35963) and the next ports for the next slots (pcscd shows
  them as ``Virtual PCD 00 00``, ``Virtual PCD 00 01``). The card **connects**; a
  connection is a card on the reader, closing it takes the card away.
* Every message is a frame: a 2-byte big-endian length, then the payload.
* A 1-byte payload from vpcd is a control message (:class:`Control`): power off, power on,
  reset (no answer expected), or an ATR request (answer: a frame with the ATR). vpcd asks
  for the ATR on every presence poll (about every 400 ms), so it is answered at once.
* Any other payload is a command APDU; the answer is one frame with the response APDU.
  An empty answer frame makes vpcd drop the connection (the card is gone).

vpcd has no reader logic, so this bridge also plays the reader's part for PC/SC part 3
pseudo-APDUs (CLA ``FF``): GET DATA UID (``FF CA 00 00``), ATS historical bytes
(``FF CA 01 00``) and, when the ``firmware`` fault is set, the ACR122U firmware command
(``FF 00 48 00 00``, answered with the firmware text and no status word, as that reader
does). The ATR is the PC/SC contactless ATR built from the card's ATS.

Faults (:func:`contactless.emulator.faults.parse_faults`; APDUs counted from the last
power-up, reader pseudo-APDUs not counted):

==================  ==========================================================================
``latency_ms``      each APDU is answered this much later
``error_rate``      this share of answers is cut to 1 byte in transit (``seed`` repeats it)
``mute_after``      the card answers N APDUs, then none (vpcd and pcscd wait forever)
``hang_after``      the reader answers N APDUs, then nothing at all; the socket stays open
``remove_after``    the card leaves the field during APDU N+1: the connection closes
``firmware``        the reader's firmware text, for ``FF 00 48 00 00``
card options        passed to the card (``t0``, ``sw``, ``corrupt``, ``pin_tries``...)
==================  ==========================================================================

The protocol core (:class:`FrameDecoder`, :class:`VpcdEngine`) is sans-I/O; :class:`VpcdCard`
adds the socket. Set ``TCP_NODELAY`` and re-arm ``TCP_QUICKACK`` after every receive, or
delayed ACKs cost ~40 ms per APDU.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..atr import atr_from_ats
from ..errors import ConfigError, LocalProtocolError, ServiceUnavailable

if TYPE_CHECKING:
    from .faults import Faults

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_PAYLOAD",
    "Answer",
    "CardEngine",
    "Control",
    "FrameDecoder",
    "StopReason",
    "VpcdCard",
    "VpcdEngine",
    "encode_frame",
    "parse_address",
    "serve",
]

logger = logging.getLogger("contactless.emulator.vpcd")

DEFAULT_HOST = "127.0.0.1"
#: vpcd's port for slot 0 in the Debian configuration (/etc/reader.conf.d/vpcd).
DEFAULT_PORT = 35963
#: The length prefix is two bytes.
MAX_PAYLOAD = 0xFFFF
#: Seconds between attempts to reach vpcd (pcscd not started yet, or restarting).
RECONNECT_DELAY = 0.2
#: Longest wait between attempts when vpcd stays away.
RECONNECT_DELAY_MAX = 2.0

_STATUS_OK = b"\x90\x00"
_FUNCTION_NOT_SUPPORTED = b"\x6a\x81"


class Control(enum.IntEnum):
    """vpcd's 1-byte control messages."""

    POWER_OFF = 0
    POWER_ON = 1
    RESET = 2
    ATR = 4


class StopReason(enum.Enum):
    """Why :func:`serve` returned."""

    STOPPED = "stopped"  # the stop event was set
    REMOVED = "removed"  # the remove_after fault took the card away
    DISCONNECTED = "disconnected"  # vpcd closed the connection and reconnecting was off


class CardEngine(Protocol):
    """What the bridge needs from a card (a :class:`~.card.VirtualCard` fits)."""

    @property
    def uid(self) -> bytes: ...

    @property
    def ats(self) -> bytes: ...

    def process(self, apdu: bytes) -> bytes: ...

    def reset(self) -> None: ...


# --- framing (sans-I/O) ---------------------------------------------------------------------


def encode_frame(payload: bytes) -> bytes:
    """A vpcd frame: 2-byte big-endian length, then ``payload``."""
    if len(payload) > MAX_PAYLOAD:
        raise LocalProtocolError(
            f"a vpcd frame carries at most {MAX_PAYLOAD} bytes, not {len(payload)}"
        )
    return len(payload).to_bytes(2, "big") + payload


class FrameDecoder:
    """Splits a byte stream from vpcd into frame payloads; feed it any chunking."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the payloads completed by them, in order."""
        self._buffer += data
        payloads: list[bytes] = []
        while len(self._buffer) >= 2:
            length = int.from_bytes(self._buffer[:2], "big")
            if len(self._buffer) < 2 + length:
                break
            payloads.append(bytes(self._buffer[2 : 2 + length]))
            del self._buffer[: 2 + length]
        return payloads

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole frame."""
        return len(self._buffer)


# --- the card side of the protocol (sans-I/O) -----------------------------------------------


class Answer(enum.Enum):
    """What the engine wants done with a frame, besides an optional reply."""

    REPLY = "reply"  # send the reply (after the delay)
    NOTHING = "nothing"  # no reply (a control message, or a mute card)
    HANG = "hang"  # answer nothing any more, keep the connection open
    REMOVE = "remove"  # close the connection: the card left the field


@dataclass(frozen=True, slots=True)
class Outcome:
    """The engine's decision for one frame."""

    answer: Answer
    reply: bytes = b""
    delay: float = 0.0


class VpcdEngine:
    """The card's side of the vpcd protocol: frames in, decisions out, faults applied."""

    def __init__(self, card: CardEngine, faults: Faults | None = None) -> None:
        self.card = card
        self.faults = faults
        self.atr = atr_from_ats(card.ats)
        self.powered = False
        self.apdus = 0  # card APDUs since the last power-up
        self.hung = False
        self._rng = random.Random(faults.seed if faults else None)
        # Reader pseudo-APDUs (PC/SC part 3), the bridge's own answers: header -> answer.
        self._reader_commands: dict[bytes, Callable[[], bytes]] = {
            b"\xff\xca\x00\x00": lambda: self.card.uid + _STATUS_OK,
            b"\xff\xca\x01\x00": lambda: self._historical_bytes() + _STATUS_OK,
        }
        if faults is not None and faults.firmware:
            firmware = faults.firmware.encode("ascii", "replace")
            self._reader_commands[b"\xff\x00\x48\x00"] = lambda: firmware

    def _historical_bytes(self) -> bytes:
        # ATR: 3B 8n 80 01 <n historical bytes> TCK
        return self.atr[4:-1]

    def handle(self, payload: bytes) -> Outcome:
        """Decide what to do with one frame from vpcd."""
        if self.hung:
            return Outcome(Answer.HANG)
        if len(payload) == 1:
            return self._control(payload[0])
        if len(payload) >= 4 and payload[0] == 0xFF:
            return self._reader_command(payload)
        return self._apdu(payload)

    def _control(self, code: int) -> Outcome:
        if code == Control.ATR:
            return Outcome(Answer.REPLY, self.atr)
        if code in (Control.POWER_ON, Control.RESET):
            self.card.reset()
            self.powered = True
            self.apdus = 0
        elif code == Control.POWER_OFF:
            self.powered = False
        else:
            logger.warning("unknown vpcd control message %02X ignored", code)
        return Outcome(Answer.NOTHING)

    def _reader_command(self, payload: bytes) -> Outcome:
        answer = self._reader_commands.get(payload[:4])
        if answer is None:
            return Outcome(Answer.REPLY, _FUNCTION_NOT_SUPPORTED)
        data = answer()
        le = payload[4] if len(payload) == 5 else 0
        if le and data[-2:] == _STATUS_OK and le < len(data) - 2:
            return Outcome(Answer.REPLY, b"\x6c" + bytes([len(data) - 2]))
        return Outcome(Answer.REPLY, data)

    def _apdu(self, payload: bytes) -> Outcome:
        faults = self.faults
        self.apdus += 1
        if faults is None:
            return Outcome(Answer.REPLY, self.card.process(payload))
        if faults.remove_after is not None and self.apdus > faults.remove_after:
            return Outcome(Answer.REMOVE)
        if faults.hang_after is not None and self.apdus > faults.hang_after:
            self.hung = True
            return Outcome(Answer.HANG)
        if faults.mute_after is not None and self.apdus > faults.mute_after:
            return Outcome(Answer.NOTHING)
        response = self.card.process(payload)
        if faults.error_rate and self._rng.random() < faults.error_rate:
            response = response[:1]  # the frame was cut in transit
        return Outcome(Answer.REPLY, response, faults.latency_ms / 1000.0)


# --- the socket ---------------------------------------------------------------------------


def parse_address(text: str, *, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``"HOST:PORT"``, ``"HOST"``, ``":PORT"`` or ``"PORT"`` -> (host, port)."""
    text = text.strip()
    host, colon, port_text = text.rpartition(":")
    if not colon:
        host, port_text = (text, "") if not text.isdigit() else ("", text)
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ConfigError(
            f"{text!r} is not HOST:PORT", remedy=f"write it like {DEFAULT_HOST}:{DEFAULT_PORT}"
        ) from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"port {port} in {text!r} is not 1..65535")
    host = host.strip("[]")
    if any(char.isspace() or char in "/?#@" for char in host):
        raise ConfigError(
            f"host {host!r} in {text!r} is not a host name or IP address",
            remedy=f"write it like {DEFAULT_HOST}:{DEFAULT_PORT}",
        )
    return host or DEFAULT_HOST, port


class VpcdCard:
    """One connection to vpcd: a card on the reader, answering until removed or stopped."""

    def __init__(self, engine: VpcdEngine, host: str, port: int) -> None:
        self.engine = engine
        self.host = host
        self.port = port
        self._sock: socket.socket | None = None
        self._closed = threading.Event()

    def connect(self, timeout: float = 5.0) -> None:
        """Connect to vpcd (the card enters the field). Raises ServiceUnavailable when
        nothing listens there (pcscd not running, or vpcd not configured), and ConfigError
        when the host name does not resolve."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except socket.gaierror as error:
            # A name that does not resolve will not start resolving by waiting: fail now.
            raise ConfigError(
                f"vpcd host {self.host!r} does not resolve ({error.strerror or error})",
                remedy=f"give an IP address or a known host name, e.g. {DEFAULT_HOST}:{self.port}",
            ) from None
        except OSError as error:
            raise ServiceUnavailable(
                f"cannot reach vpcd at {self.host}:{self.port}: {error}",
                remedy="start pcscd with the vpcd driver (package vsmartcard-vpcd) and check "
                "the port in /etc/reader.conf.d/vpcd",
            ) from error
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock

    def close(self) -> None:
        """Take the card away (closes the connection); safe from any thread."""
        self._closed.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def serve_forever(self) -> StopReason | None:
        """Answer vpcd until the connection ends: REMOVED by a fault, STOPPED by
        :meth:`close`, or ``None`` when vpcd closed it (pcscd stopped)."""
        sock = self._sock
        if sock is None:
            raise LocalProtocolError("serve_forever() before connect()")
        decoder = FrameDecoder()
        quickack = getattr(socket, "TCP_QUICKACK", None)
        engine = self.engine
        while True:
            try:
                data = sock.recv(MAX_PAYLOAD + 2)
            except OSError:
                data = b""
            if not data:
                return StopReason.STOPPED if self._closed.is_set() else None
            if quickack is not None:
                # Linux leaves quick-ACK mode on its own; without re-arming it every
                # answer waits for a delayed ACK (~40 ms).
                sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
            for payload in decoder.feed(data):
                outcome = engine.handle(payload)
                if outcome.answer is Answer.REPLY:
                    if outcome.delay and self._closed.wait(outcome.delay):
                        return StopReason.STOPPED
                    try:
                        sock.sendall(encode_frame(outcome.reply))
                    except OSError:
                        return StopReason.STOPPED if self._closed.is_set() else None
                elif outcome.answer is Answer.REMOVE:
                    logger.info("card removed after %d APDUs (remove_after)", engine.apdus - 1)
                    self.close()
                    return StopReason.REMOVED
                elif outcome.answer is Answer.HANG:
                    logger.info("reader hangs after %d APDUs (hang_after)", engine.apdus - 1)
                    self._closed.wait()  # keep the socket open, answer nothing
                    return StopReason.STOPPED


def serve(
    card: CardEngine,
    address: tuple[str, int] | str = (DEFAULT_HOST, DEFAULT_PORT),
    *,
    faults: Faults | None = None,
    ready: Callable[[VpcdCard], None] | None = None,
    stop: threading.Event | None = None,
    reconnect: bool = True,
    connect_timeout: float | None = None,
    waiting: Callable[[str], None] | None = None,
) -> StopReason:
    """Put ``card`` on vpcd's reader at ``address`` and answer pcscd until ``stop`` is
    set, the ``remove_after`` fault removes the card, or (with ``reconnect=False``) vpcd
    closes the connection. With ``reconnect`` (the default) the card waits for pcscd to
    come back and enters the field again, powered up afresh.

    ``ready(connection)`` is called each time the card is on the reader.
    ``connect_timeout`` bounds the wait for vpcd on the first connection (``None``: wait
    until stopped); it raises :class:`~contactless.errors.ServiceUnavailable`. Only a
    refused or unreachable connection is waited for (vpcd not up yet): a host name that
    does not resolve raises :class:`~contactless.errors.ConfigError` at once.
    ``waiting(line)`` is called once, when the first attempt fails and the wait begins.
    The ``contactless emulate --vpcd HOST:PORT`` command calls this.
    """
    host, port = parse_address(address) if isinstance(address, str) else address
    engine = VpcdEngine(card, faults)
    stop = stop or threading.Event()
    first_deadline = None if connect_timeout is None else time.monotonic() + connect_timeout
    delay = RECONNECT_DELAY
    connected_once = said_waiting = False
    while not stop.is_set():
        connection = VpcdCard(engine, host, port)
        try:
            connection.connect()
        except ServiceUnavailable as error:
            gave_up = first_deadline is not None and time.monotonic() >= first_deadline
            if gave_up and not connected_once:
                raise
            if waiting is not None and not said_waiting:
                said_waiting = True
                limit = "" if connect_timeout is None else f" for up to {connect_timeout:g} s"
                waiting(
                    f"waiting{limit} for vpcd at {host}:{port} ({error.message}; is pcscd "
                    "running with the vpcd driver?)"
                )
            if stop.wait(delay):
                break
            delay = min(delay * 2, RECONNECT_DELAY_MAX)
            continue
        connected_once, delay = True, RECONNECT_DELAY
        engine.hung = False
        logger.info("card on vpcd at %s:%d", host, port)
        if ready is not None:
            ready(connection)
        # A small thread turns the stop event into a close(), which wakes the blocking recv
        # (so the serving loop costs no polling per APDU).
        watcher = threading.Thread(
            target=_close_when_set, args=(stop, connection), name="vpcd stop", daemon=True
        )
        watcher.start()
        try:
            reason = connection.serve_forever()
        finally:
            connection.close()
        if reason is not None:
            return reason
        logger.info("vpcd closed the connection (pcscd stopped?)")
        if not reconnect:
            return StopReason.DISCONNECTED
        card.reset()
    return StopReason.STOPPED


def _close_when_set(stop: threading.Event, connection: VpcdCard) -> None:
    while not stop.wait(0.5):
        if connection._closed.is_set():
            return
    connection.close()
