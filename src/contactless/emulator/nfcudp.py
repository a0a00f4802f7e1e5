"""Serve an emulated card as an ISO 14443-4 card on nfcpy's UDP wire format.

nfcpy's ``udp`` driver (``nfc/clf/udp.py``) simulates the RF link with one UDP datagram
per frame, so ``nfc:udp:127.0.0.1:PORT`` reads this card through nfcpy's real reader
stack. The wire format, as that driver sends and parses it:

* a frame is ASCII ``"<brty> <hex>"``: the bit rate and technology (``106A``, ``106B``)
  and the frame bytes in hex, **without CRC** (the driver neither adds nor checks one);
* ``RFOFF`` alone means the reader dropped its field (sent when it mutes or closes);
* the driver reads with ``recvfrom(1024)``, so a frame is at most 509 bytes
  (``"106A "`` + 2 hex digits per byte); frames to it are answered to the address they
  came from, with the same ``brty``.

This is a plain UDP socket rather than nfcpy's own ``listen()``, which re-binds its socket
for every activation and loses frames under load. The card logic is sans-I/O
(:mod:`contactless.emulator.isodep`); this module adds the socket, a worker thread that
runs APDUs (so that a slow answer can be covered by S(WTX) requests), and the faults of
:func:`contactless.emulator.faults.parse_faults`:

=============  ==========================================================================
``latency_ms``  each APDU takes this long; past half the FWT the card sends S(WTX)
``error_rate``  this share of ISO-DEP blocks from the card is lost (the reader recovers
                with R(NAK), the card sends the block again); ``seed`` fixes the sequence
``mute_after``  the card runs N APDUs per power-up, then never answers another one
``hang_after``  after N APDUs the card answers nothing at all until the field drops
``remove_after`` the card leaves the field during APDU N+1: the socket closes (the reader
                 sees the port unreachable) and :func:`serve` returns
``firmware``    a reader property; a card has none, so it is ignored here
=============  ==========================================================================

Counters restart at every power-up (``RFOFF``), as ``sim:`` restarts them on reconnect.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import queue
import random
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from ..errors import ConfigError, LocalProtocolError, RemoteProtocolError
from .isodep import MAX_WTXM, Execute, Picc, Reply, TypeACard, TypeBCard

if TYPE_CHECKING:
    from .faults import Faults

__all__ = [
    "DEFAULT_PORT",
    "FIELD_OFF",
    "MAX_FRAME",
    "CardEngine",
    "CardSettings",
    "Frame",
    "NfcUdpCard",
    "StopReason",
    "decode_datagram",
    "encode_datagram",
    "parse_address",
    "parse_serving_address",
    "serve",
]

logger = logging.getLogger("contactless.emulator.nfcudp")

#: nfcpy's default port for ``udp`` device paths.
DEFAULT_PORT = 54321
#: The driver reads datagrams of at most 1024 bytes: "106A " + 2 hex digits per frame byte.
MAX_FRAME = (1024 - len("106A ")) // 2
#: The datagram nfcpy sends when it turns its field off.
FIELD_OFF = b"RFOFF"
#: How often the serving loop looks at its stop event, in seconds.
POLL_SECONDS = 0.2
#: Send S(WTX) once an APDU has run for this share of the (extended) frame waiting time.
WTX_AT = 0.5
#: A slow answer whose end is unknown asks for at least this much more time per S(WTX).
WTX_MIN_SECONDS = 0.1
#: Bit rates (nfcpy "brty") a card may be served on, by technology.
BRTY = {"A": "106A", "B": "106B"}


class CardEngine(Protocol):
    """What :class:`NfcUdpCard` needs from a card (a :class:`~.card.VirtualCard` fits)."""

    @property
    def uid(self) -> bytes: ...

    @property
    def ats(self) -> bytes: ...

    def process(self, apdu: bytes) -> bytes: ...

    def reset(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame as carried by nfcpy's UDP driver."""

    brty: str
    data: bytes


def encode_datagram(brty: str, data: bytes) -> bytes:
    """The datagram for ``data`` at bit rate ``brty``: ``b"106A e080"``.

    Raises :class:`~contactless.errors.LocalProtocolError` for an empty frame (the driver
    cannot parse one) or one longer than :data:`MAX_FRAME` bytes.
    """
    if not data:
        raise LocalProtocolError("nfcpy's UDP driver cannot carry an empty frame")
    if len(data) > MAX_FRAME:
        raise LocalProtocolError(
            f"a {len(data)}-byte frame exceeds the {MAX_FRAME} bytes nfcpy's UDP driver reads"
        )
    return brty.encode("ascii") + b" " + data.hex().encode("ascii")


def decode_datagram(datagram: bytes) -> Frame | None:
    """Parse a datagram from the reader: a :class:`Frame`, or ``None`` for ``RFOFF``.

    Raises :class:`~contactless.errors.RemoteProtocolError` for anything else.
    """
    if datagram.startswith(FIELD_OFF):
        return None
    parts = datagram.split()
    if len(parts) != 2:
        raise RemoteProtocolError(
            f"datagram of {len(datagram)} bytes is not '<brty> <hex>' or RFOFF: {datagram[:40]!r}"
        )
    try:
        brty = parts[0].decode("ascii")
        data = bytes.fromhex(parts[1].decode("ascii"))
    except (UnicodeDecodeError, ValueError) as error:
        raise RemoteProtocolError(
            f"malformed frame in datagram {datagram[:40]!r}: {error}"
        ) from None
    return Frame(brty, data)


def parse_address(text: str, *, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``"HOST:PORT"``, ``":PORT"`` or ``"PORT"`` -> ``(host, port)``; port 0 picks a free
    one. A bad value is a :class:`~contactless.errors.ConfigError`."""
    host, colon, port_text = text.strip().rpartition(":")
    if not colon:
        host, port_text = "", text.strip()
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(
            f"{text!r} is not HOST:PORT", remedy="write it like 127.0.0.1:54321"
        ) from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} in {text!r} is not 0..65535")
    return host.strip("[]") or default_host, port


@dataclass(frozen=True, slots=True)
class CardSettings:
    """How the card presents itself: ``technology`` ``"A"`` (REQA, anticollision, RATS)
    or ``"B"`` (REQB, ATTRIB); ``fsci`` (0..8) and ``fwi`` (0..14) override the frame size
    and frame waiting time of the card's own ATS."""

    technology: Literal["A", "B"] = "A"
    fsci: int | None = None
    fwi: int | None = None

    def __post_init__(self) -> None:
        if self.technology not in BRTY:
            raise ConfigError(f"card type {self.technology!r} is not A or B")
        if self.fsci is not None and not 0 <= self.fsci <= 8:
            raise ConfigError(f"fsci={self.fsci} is not 0..8 (16..256-byte frames)")
        if self.fwi is not None and not 0 <= self.fwi <= 14:
            raise ConfigError(f"fwi={self.fwi} is not 0..14")


#: Settings accepted after "?" in a serving address.
SETTING_KEYS = ("type", "fsci", "fwi")


def parse_serving_address(text: str) -> tuple[tuple[str, int], CardSettings]:
    """``"HOST:PORT[?type=A|B&fsci=N&fwi=N]"`` -> ``((host, port), settings)``.

    >>> parse_serving_address("127.0.0.1:0?fsci=2&fwi=5")
    (('127.0.0.1', 0), CardSettings(technology='A', fsci=2, fwi=5))
    """
    address, _, query = text.partition("?")
    values: dict[str, str] = {}
    for pair in filter(None, query.split("&")):
        key, sep, value = pair.partition("=")
        if not sep or key not in SETTING_KEYS:
            raise ConfigError(
                f"{pair!r} in {text!r} is not a card setting",
                remedy="use " + ", ".join(f"{key}=..." for key in SETTING_KEYS),
            )
        values[key] = value
    try:
        fsci = int(values["fsci"]) if "fsci" in values else None
        fwi = int(values["fwi"]) if "fwi" in values else None
    except ValueError:
        raise ConfigError(f"fsci and fwi in {text!r} must be integers") from None
    technology = values.get("type", "A").upper()
    if technology not in BRTY:
        raise ConfigError(f"type={technology} in {text!r} is not A or B")
    settings = CardSettings("A" if technology == "A" else "B", fsci, fwi)
    return parse_address(address), settings


class StopReason(enum.Enum):
    """Why :meth:`NfcUdpCard.serve_forever` returned."""

    STOPPED = "stopped"  # the stop event was set
    REMOVED = "removed"  # the remove_after fault took the card out of the field


@dataclass(slots=True)
class _Result:
    generation: int
    response: bytes


class _Worker:
    """Runs card operations one at a time on its own thread, so the serving loop stays
    free to send S(WTX) while a slow APDU runs. Results wake the loop through a socket."""

    def __init__(self, card: CardEngine, wake: socket.socket) -> None:
        self._card = card
        self._wake = wake
        self._jobs: queue.Queue[tuple[int, bytes | None, float] | None] = queue.Queue()
        self.results: queue.Queue[_Result] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="nfc-udp card", daemon=True)
        self._thread.start()

    def run_apdu(self, generation: int, apdu: bytes, delay: float) -> None:
        self._jobs.put((generation, apdu, delay))

    def reset(self, generation: int) -> None:
        self._jobs.put((generation, None, 0.0))

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            generation, apdu, delay = job
            if apdu is None:
                self._card.reset()
                continue
            if delay > 0:
                time.sleep(delay)
            try:
                response = self._card.process(apdu)
            except Exception:  # a card never crashes the terminal: it answers 6F00
                logger.exception("the card failed on an APDU")
                response = b"\x6f\x00"
            self.results.put(_Result(generation, response))
            with contextlib.suppress(OSError):
                self._wake.send(b"!")


class NfcUdpCard:
    """A card listening on ``host:port`` for nfcpy's UDP driver.

    ``settings`` chooses type A or B and may override the frame size and waiting time of
    the card's ATS (see :class:`CardSettings`). The socket is bound on construction, so
    :attr:`address` is known (and a port of 0 resolved) before serving starts.
    """

    def __init__(
        self,
        card: CardEngine,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        settings: CardSettings | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.settings = settings = settings or CardSettings()
        self.card = card
        self.faults = faults
        self.picc = self._make_picc(card, settings)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, port))
        except OSError as error:
            self._sock.close()
            raise ConfigError(
                f"cannot serve the card on udp {host}:{port}: {error.strerror or error}",
                remedy="pick another port (0 picks a free one) or stop what is using it",
            ) from None
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        self._wake_r, wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._worker = _Worker(card, wake_w)
        self._wake_w = wake_w
        self._rng = random.Random(faults.seed if faults else None)
        self._generation = self.picc.generation
        self._reader: tuple[str, int] | None = None
        self._apdus = 0
        self._hung = False
        self._muted = False
        self._removed = False
        self._wtx_due: float | None = None
        self._wtxm = 1
        self._busy_until = 0.0
        self._closed = False

    @staticmethod
    def _make_picc(card: CardEngine, settings: CardSettings) -> Picc:
        fsci, fwi = settings.fsci, settings.fwi
        if settings.technology == "A":
            return TypeACard(uid=card.uid, ats=card.ats, fsci=fsci, fwi=fwi)
        from ..atr import parse_ats

        own = parse_ats(card.ats)
        return TypeBCard(
            pupi=card.uid[:4],
            fsci=min(own.fsci, 8) if fsci is None else fsci,
            fwi=(4 if own.fwi == 15 else own.fwi) if fwi is None else fwi,
        )

    @property
    def uri(self) -> str:
        """The reader URI that reads this card: ``nfc:udp:HOST:PORT``."""
        return f"nfc:udp:{self.address[0]}:{self.address[1]}"

    def close(self) -> None:
        """Stop the worker and release the socket (the card leaves the field)."""
        if self._closed:
            return
        self._closed = True
        self._worker.stop()
        for sock in (self._sock, self._wake_r, self._wake_w):
            sock.close()

    def __enter__(self) -> NfcUdpCard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the serving loop -----------------------------------------------------------------

    def serve_forever(self, stop: threading.Event | None = None) -> StopReason:
        """Answer the reader until ``stop`` is set or the card is removed by a fault."""
        if self._closed:
            raise LocalProtocolError("serve_forever() on a closed NfcUdpCard")
        while not (stop is not None and stop.is_set()):
            wait = POLL_SECONDS
            if self._wtx_due is not None:
                wait = min(wait, max(self._wtx_due - time.monotonic(), 0.0))
            readable, _, _ = select.select([self._sock, self._wake_r], [], [], wait)
            if self._wake_r in readable:
                self._deliver_results()
            if self._sock in readable:
                self._read_datagram()
            if self._removed:
                self.close()
                return StopReason.REMOVED
            self._send_wtx_when_due()
        return StopReason.STOPPED

    def _read_datagram(self) -> None:
        try:
            datagram, address = self._sock.recvfrom(2048)
        except OSError as error:
            # Linux reports "port unreachable" for an earlier send to a reader that went
            # away as an error on the next receive; that reader is gone, nothing to do.
            logger.debug("receive error ignored: %s", error)
            return
        try:
            frame = decode_datagram(datagram)
        except RemoteProtocolError as error:
            logger.debug("ignored from %s:%d: %s", *address, error)
            return
        if frame is None:
            logger.debug("field off (RFOFF from %s:%d)", *address)
            self.picc.power_off()
            self._after_power_cycle()
            return
        if frame.brty != self.picc.brty or self._hung:
            return
        self._reader = address
        was_pending = self.picc.wtx_pending
        # Activation frames (ATQA, UID, SAK, ATS) are never lost: only ISO-DEP blocks are.
        was_protocol = self.picc.state == "protocol"
        reaction = self.picc.receive(frame.data)
        if self.picc.generation != self._generation:
            self._after_power_cycle()
        if isinstance(reaction, Reply):
            self._send(reaction.frame, iso_dep=was_protocol)
        elif isinstance(reaction, Execute):
            self._execute(reaction.apdu)
        else:
            logger.debug("silent: %s", reaction.reason)
            if was_pending and not self.picc.wtx_pending and self.picc.executing:
                # The reader granted WTXM x FWT more; ask again before half of it is used.
                self._wtx_due = time.monotonic() + WTX_AT * self._wtxm * self.picc.fwt

    def _after_power_cycle(self) -> None:
        self._generation = self.picc.generation
        self._apdus = 0
        self._hung = self._muted = False
        self._wtx_due = None
        self._worker.reset(self._generation)

    def _execute(self, apdu: bytes) -> None:
        faults = self.faults
        self._apdus += 1
        if faults is not None:
            if faults.remove_after is not None and self._apdus > faults.remove_after:
                logger.info("card removed from the field during APDU %d", self._apdus)
                self._removed = True
                return
            if faults.hang_after is not None and self._apdus > faults.hang_after:
                logger.info("card hangs from APDU %d on", self._apdus)
                self._hung = True
                return
            if faults.mute_after is not None and self._apdus > faults.mute_after:
                self._muted = True
        if self._muted:
            return
        delay = (faults.latency_ms / 1000.0) if faults is not None else 0.0
        now = time.monotonic()
        self._busy_until = now + delay
        self._wtx_due = now + WTX_AT * self.picc.fwt
        self._worker.run_apdu(self._generation, apdu, delay)

    def _deliver_results(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(256):
                pass
        while True:
            try:
                result = self._worker.results.get_nowait()
            except queue.Empty:
                return
            if result.generation != self._generation or not self.picc.executing:
                continue  # answer to a command from before the field dropped
            self._wtx_due = None
            self._send(self.picc.answer(result.response), iso_dep=True)

    def _send_wtx_when_due(self) -> None:
        due = self._wtx_due
        if due is None or time.monotonic() < due:
            return
        if not self.picc.executing or self.picc.wtx_pending:
            self._wtx_due = None
            return
        fwt = self.picc.fwt
        remaining = max(self._busy_until - time.monotonic(), WTX_MIN_SECONDS)
        self._wtxm = max(1, min(MAX_WTXM, math.ceil(remaining / fwt) + 1))
        self._wtx_due = None  # the next one waits for the reader's S(WTX) response
        self._send(self.picc.request_wtx(self._wtxm), iso_dep=True)

    def _send(self, frame: bytes, *, iso_dep: bool) -> None:
        if self._reader is None:
            return
        faults = self.faults
        lost = iso_dep and faults is not None and self._rng.random() < faults.error_rate
        if lost:
            logger.debug("block lost (error_rate)")
            return
        try:
            self._sock.sendto(encode_datagram(self.picc.brty, frame), self._reader)
        except OSError as error:
            logger.debug("send to %s:%d failed: %s", *self._reader, error)


def serve(
    card: CardEngine,
    address: tuple[str, int] | str = ("127.0.0.1", DEFAULT_PORT),
    *,
    settings: CardSettings | None = None,
    faults: Faults | None = None,
    ready: Callable[[NfcUdpCard], None] | None = None,
    stop: threading.Event | None = None,
) -> StopReason:
    """Serve ``card`` on nfcpy's UDP wire format until ``stop`` is set, the card is removed
    by the ``remove_after`` fault, or KeyboardInterrupt.

    ``address`` is ``(host, port)`` or ``"HOST:PORT[?type=A|B&fsci=N&fwi=N]"`` (port 0
    picks a free one; settings in the address override ``settings``);
    ``ready(server)`` is called once the socket is bound (``server.uri`` is the reader
    URI). The ``contactless emulate --nfc-udp HOST:PORT`` command calls this.
    """
    if isinstance(address, str):
        (host, port), parsed = parse_serving_address(address)
        if "?" in address:
            settings = parsed
    else:
        host, port = address
    with NfcUdpCard(card, host, port, settings=settings, faults=faults) as server:
        if faults is not None and faults.firmware:
            logger.info("firmware=%s is a reader fault; a card ignores it", faults.firmware)
        if ready is not None:
            ready(server)
        return server.serve_forever(stop)
