"""``nfc:PATH``: ISO 14443-4 cards through an nfcpy reader (extra ``nfc``).

``PATH`` is an nfcpy device path: ``nfc:usb``, ``nfc:usb:072f:2200``,
``nfc:tty:USB0:pn532``, ``nfc:udp:127.0.0.1:54321`` (nfcpy's simulated reader, which
``contactless emulate --nfc-udp`` answers). The backend senses for type A and B cards at
106 kbit/s, activates ISO-DEP itself (RATS or ATTRIB, so the ATS is kept and decoded with
:func:`contactless.atr.parse_ats`), then exchanges APDUs through nfcpy's own ISO-DEP
initiator (``nfc.tag.tt4.IsoDepInitiator``: chaining, R(NAK) retries, S(WTX)).

Every nfcpy exception is translated here, by the tables below; none leaks. nfcpy is
imported only when a reader is opened, and its global ``logging.captureWarnings(True)``
is undone if the application had not asked for it.
"""

from __future__ import annotations

import errno
import logging
import re
import select
import socket
import struct
import threading
import time
import warnings
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..atr import Atqb, Ats, atr_from_ats, contactless_atr, parse_atr, parse_ats
from ..errors import (
    AtrError,
    BackendUnavailable,
    CardRemoved,
    ConfigError,
    ContactlessError,
    NoCard,
    OpenError,
    PermissionDenied,
    ReaderBusy,
    ReaderNotFound,
    RemoteProtocolError,
    StatusWordError,
    TransportError,
    TransportTimeout,
)
from ..sw import StatusWord
from ..sw import lookup as sw_lookup
from . import nfc_diagnostics, nfc_logging
from .base import ReaderIdentity, ReaderInfo, Transport, describe_apdu

__all__ = [
    "EXCHANGE_ERRNO",
    "NFCPY_EXCEPTIONS",
    "OPEN_ERRNO",
    "TAG_ERRNO",
    "NfcTransport",
    "Translation",
    "check_device_path",
    "import_nfcpy",
    "translate_error",
]

logger = logging.getLogger("contactless.transport.nfc")

#: Technologies sensed, in order (nfcpy bit rate + type names).
SENSE_TARGETS = ("106A", "106B")
#: Seconds to wait for the ATS or the ATTRIB answer. nfcpy's own 30 ms is tight for its UDP
#: simulation on a loaded machine; a real card answers within 5 ms either way.
ACTIVATION_TIMEOUT = 0.1
#: Pause between sense attempts that found nothing (a real reader answers "no card" fast).
SENSE_INTERVAL = 0.05
#: How much of a transmit's time is kept back from sensing for a card.
SENSE_MARGIN = 0.1
#: How long a presence check may wait for an exchange in progress to finish.
PRESENCE_WAIT = 2.0
#: How long close() waits for a blocked exchange before closing the reader anyway.
CLOSE_WAIT = 2.0
#: SAK bit 6: the type A card is ISO 14443-4 compliant (it can take APDUs).
SAK_ISO_DEP = 0x20
#: RATS parameter: FSDI 8 (256-byte frames) or 7 (128) when the reader cannot take 256.
RATS_FSD_256, RATS_FSD_128 = 0x80, 0x70


# --- error translation (data) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Translation:
    """How one backend failure is reported: the error class, and a message and remedy
    formatted with ``where`` (the reader), ``what`` (the operation) and ``detail``."""

    error: type[ContactlessError]
    message: str
    remedy: str | None = None


_UDEV = "{permission_remedy}"
_BUSY = "{busy_remedy}"

#: OSError errno while opening the reader.
OPEN_ERRNO: dict[int, Translation] = {
    errno.ENODEV: Translation(
        ReaderNotFound,
        "no nfcpy reader at {where}",
        "check the cable and the path (usb, usb:VID:PID, tty:USB0:pn532, udp:HOST:PORT); "
        "`contactless readers` lists what is connected",
    ),
    errno.ENOENT: Translation(ReaderNotFound, "no device for {where}: {detail}"),
    errno.EACCES: Translation(PermissionDenied, "permission denied opening {where}", _UDEV),
    errno.EPERM: Translation(PermissionDenied, "permission denied opening {where}", _UDEV),
    errno.EBUSY: Translation(ReaderBusy, "{where} is busy: {detail}", _BUSY),
}

#: OSError errno during sensing or an exchange.
EXCHANGE_ERRNO: dict[int, Translation] = {
    # The UDP simulation: nobody listens on the card's port any more (ICMP unreachable).
    errno.ECONNREFUSED: Translation(
        CardRemoved, "the card left the field of {where} during {what}"
    ),
    errno.ENODEV: Translation(
        TransportError,
        "the reader {where} disappeared during {what}",
        "plug it back in and open it again",
    ),
    errno.ETIMEDOUT: Translation(TransportTimeout, "the reader {where} timed out during {what}"),
    errno.EIO: Translation(
        TransportError,
        "I/O error with the reader {where} during {what}",
        "replug the reader; if it keeps happening, try another USB port or cable",
    ),
    errno.EBUSY: Translation(ReaderBusy, "{where} became busy during {what}", _BUSY),
}

#: ``nfc.tag.TagCommandError.errno`` (nfcpy's ISO-DEP initiator gives up with these).
TAG_ERRNO: dict[int, Translation] = {
    0: Translation(
        TransportTimeout,
        "no answer from the card on {where} to {what} (nfcpy gave up after its retries)",
        "hold the card still on the reader; it may have left the field",
    ),
    -1: Translation(
        TransportError,
        "transmission errors with the card on {where} during {what}",
        "hold the card flat and still in the middle of the reader",
    ),
    -2: Translation(
        RemoteProtocolError,
        "the card on {where} broke the ISO-DEP protocol during {what}",
        "present the card again; if it keeps happening the card may be faulty",
    ),
}

#: nfcpy exception classes ("module:Class"), most specific first.
NFCPY_EXCEPTIONS: tuple[tuple[str, Translation], ...] = (
    ("nfc.clf:TimeoutError", Translation(TransportTimeout, "no answer on {where} to {what}")),
    ("nfc.clf:BrokenLinkError", Translation(CardRemoved, "the link to the card on {where} "
                                            "broke during {what}")),
    ("nfc.clf:TransmissionError", Translation(TransportError, "transmission error on {where} "
                                              "during {what}: {detail}")),
    ("nfc.clf:ProtocolError", Translation(RemoteProtocolError, "protocol error on {where} "
                                          "during {what}: {detail}")),
    ("nfc.clf:UnsupportedTargetError", Translation(TransportError, "the reader {where} cannot "
                                                   "{what}: {detail}")),
    ("nfc.clf:CommunicationError", Translation(TransportError, "communication error on "
                                               "{where} during {what}: {detail}")),
)  # fmt: skip

#: nfcpy indexes into short answers without checking their length (its ATS parser reads
#: bytes 1 and 3): the card sent something too short.
_SHORT_ANSWER = Translation(
    RemoteProtocolError,
    "the card on {where} sent a malformed answer to {what} ({detail})",
    "present the card again; if it keeps happening the card may be faulty",
)
_LIBUSB = Translation(
    BackendUnavailable,
    "the libusb-1.0 library cannot be loaded for {where} ({detail})",
    f"install it: sudo apt install {nfc_diagnostics.LIBUSB_PACKAGE}",
)
_MISSING_MODULE = Translation(
    BackendUnavailable,
    "nfcpy or one of its dependencies cannot be imported for {where} ({detail})",
    "install the extra: pip install 'contactless[nfc]'",
)
_UNEXPECTED = Translation(
    TransportError,
    "nfcpy failed on {where} during {what}: {detail}",
    "this may be an nfcpy bug; run with debug logging and report it",
)


def _nfcpy_class(spec: str) -> type[BaseException] | None:
    import importlib
    import sys

    module_name, _, name = spec.partition(":")
    if module_name not in sys.modules:  # never import nfcpy just to translate an error
        return None
    found = getattr(importlib.import_module(module_name), name, None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


#: A udp:HOST:PORT whose host name does not resolve (socket.gaierror): waiting won't help.
_UNRESOLVED_HOST = Translation(
    ConfigError,
    "the host in {where} does not resolve ({detail})",
    "give an IP address or a known host name, e.g. nfc:udp:127.0.0.1:54321",
)


def _rule_for(error: BaseException, phase: str) -> Translation:
    if nfc_diagnostics.libusb_missing(error):
        return _LIBUSB
    if isinstance(error, socket.gaierror):
        return _UNRESOLVED_HOST
    if isinstance(error, ImportError):
        return _MISSING_MODULE
    tag_error = _nfcpy_class("nfc.tag:TagCommandError")
    if tag_error is not None and isinstance(error, tag_error):
        return TAG_ERRNO.get(getattr(error, "errno", None) or 0, _UNEXPECTED)
    for spec, rule in NFCPY_EXCEPTIONS:
        cls = _nfcpy_class(spec)
        if cls is not None and isinstance(error, cls):
            return rule
    if isinstance(error, OSError) and error.errno is not None:
        table = OPEN_ERRNO if phase == "open" else EXCHANGE_ERRNO
        if error.errno in table:
            return table[error.errno]
    if isinstance(error, IndexError | struct.error):  # nfcpy unpacks answers unchecked
        return _SHORT_ANSWER
    return _UNEXPECTED


def _card_status_word(error: BaseException) -> StatusWord | None:
    """The card's status word behind an nfcpy TagCommandError, if that is what it carries.

    nfcpy's Type 4 Tag commands raise ``Type4TagCommandError(SW1 << 8 | SW2)`` when the card
    answers with an error status word; errno <= 0 are nfcpy's own failures (TAG_ERRNO).
    """
    tag_error = _nfcpy_class("nfc.tag:TagCommandError")
    if tag_error is None or not isinstance(error, tag_error):
        return None
    code = getattr(error, "errno", None)
    if not isinstance(code, int) or not 0 < code <= 0xFFFF:
        return None
    status = sw_lookup(code >> 8, code & 0xFF)
    return status if status.known else None


def translate_error(
    error: BaseException,
    *,
    where: str,
    what: str,
    phase: str = "exchange",
    context: dict[str, str] | None = None,
) -> ContactlessError:
    """The :class:`~contactless.errors.ContactlessError` for an exception raised by nfcpy
    (or the OS under it) while opening (``phase="open"``) or using a reader.

    ``context`` fills the remedy placeholders (``permission_remedy``, ``busy_remedy``).
    """
    if isinstance(error, ContactlessError):
        return error
    status = _card_status_word(error)
    if status is not None:  # the card's answer, not an nfcpy failure: report it as such
        error_class = status.error or StatusWordError  # a success word nfcpy still refused
        return error_class(
            status.sw1,
            status.sw2,
            status.meaning,
            command=f"{what} on {where}",
            remedy=status.remedy,
        )
    rule = _rule_for(error, phase)
    detail = getattr(error, "strerror", None) or str(error) or type(error).__name__
    values = {
        "where": where,
        "what": what,
        "detail": detail,
        "permission_remedy": nfc_diagnostics.permission_remedy(),
        "busy_remedy": nfc_diagnostics.busy_remedy(None),
        **(context or {}),
    }
    message = rule.message.format(**values)
    remedy = rule.remedy.format(**values) if rule.remedy else None
    return rule.error(message, remedy=remedy)


# --- importing nfcpy without its global side effects --------------------------------------

_import_lock = threading.Lock()


def import_nfcpy() -> ModuleType:
    """Import and return the ``nfc`` package (with ``nfc.clf`` and ``nfc.tag.tt4``).

    nfcpy calls ``logging.captureWarnings(True)`` on import, rerouting every warning of
    the host application into logging; that is undone unless the application had asked
    for it itself. nfcpy's loggers get the filter of :mod:`.nfc_logging`, which keeps card
    data out of its DEBUG frame log. Raises :class:`~contactless.errors.BackendUnavailable`
    when nfcpy (or its libusb1/pyserial dependencies) cannot be imported.
    """
    with _import_lock:
        capturing = warnings.showwarning is getattr(logging, "_showwarning", None)
        try:
            import nfc
            import nfc.clf
            import nfc.tag
            import nfc.tag.tt4
        except ImportError as error:
            raise BackendUnavailable(
                f"the nfc: backend needs nfcpy, which cannot be imported ({error})",
                remedy="install the extra: pip install 'contactless[nfc]'",
            ) from error
        finally:
            if not capturing:
                logging.captureWarnings(False)
        nfc_logging.install(nfc)
        module: ModuleType = nfc
        return module


# --- the transport ------------------------------------------------------------------------


@dataclass(slots=True)
class _ActiveCard:
    """What activation learned about the card in the field."""

    technology: str  # "A" or "B"
    uid: bytes
    dep: Any  # nfc.tag.tt4.IsoDepInitiator
    atqa: bytes | None = None
    sak: int | None = None
    ats: bytes | None = None
    ats_info: Ats | None = None
    atqb: bytes | None = None
    atqb_info: Atqb | None = None
    atr: bytes | None = None


class NfcTransport(Transport):
    """An ISO 14443-4 card on an nfcpy reader (``nfc:PATH``).

    After :meth:`wait_for_card` (or the first :meth:`transmit`, which activates a card
    itself) these describe the card: :attr:`uid`, :attr:`technology` (``"A"``/``"B"``),
    :attr:`atqa` and :attr:`sak` or :attr:`atqb`, :attr:`ats` with :attr:`ats_info` (FSC,
    FWI... decoded), :attr:`atqb_info`, and :attr:`atr` (the ATR a PC/SC reader would
    report). Closing turns the RF field off.
    """

    scheme = "nfc"
    # nfcpy's ISO-DEP retries and WTX can outlast any deadline: the base's watchdog
    # thread enforces it.
    enforces_deadline = False

    def __init__(self, uri: str, *, timeout: float | None = None) -> None:
        super().__init__(uri, timeout=timeout)
        scheme, _, path = uri.partition(":")
        if scheme.lower() != self.scheme:
            raise ConfigError(f"{uri!r} is not an nfc: URI")
        #: The nfcpy device path (``usb``, ``udp:127.0.0.1:54321``...).
        self.path = path.strip() or "usb"
        check_device_path(self.path, uri)
        self._clf: Any = None
        self._card: _ActiveCard | None = None
        # One nfcpy operation at a time: sensing runs on worker threads, exchanges on the
        # base's watchdog thread, and nfcpy's drivers are not reentrant.
        self._io_lock = threading.Lock()
        self._sensing: threading.Thread | None = None
        self._last_seen: str | None = None  # a card that was not ISO-DEP, for NoCard
        #: The OS layer the diagnosis of a failed open looks at (None: the real one).
        self.system_probe: nfc_diagnostics.SystemProbe | None = None

    # --- what the card told us ------------------------------------------------------------

    @property
    def technology(self) -> str | None:
        """``"A"`` or ``"B"`` for the active card, None without one."""
        return self._card.technology if self._card else None

    @property
    def atqa(self) -> bytes | None:
        """The type A card's ATQA (SENS_RES), as nfcpy received it."""
        return self._card.atqa if self._card else None

    @property
    def sak(self) -> int | None:
        """The type A card's SAK (SEL_RES)."""
        return self._card.sak if self._card else None

    @property
    def atqb(self) -> bytes | None:
        """The type B card's ATQB (SENSB_RES, starting with 50)."""
        return self._card.atqb if self._card else None

    @property
    def ats_info(self) -> Ats | None:
        """The decoded ATS of a type A card (FSC, FWI, FWT, historical bytes...)."""
        return self._card.ats_info if self._card else None

    @property
    def atqb_info(self) -> Atqb | None:
        """The decoded ATQB protocol info of a type B card (FSC, FWI...)."""
        return self._card.atqb_info if self._card else None

    # --- lifecycle ------------------------------------------------------------------------

    def _connect(self) -> None:
        nfc = import_nfcpy()
        clf = nfc.ContactlessFrontend()
        try:
            opened = clf.open(self.path)
        except Exception as error:
            raise self._open_error(error) from error
        if not opened:
            raise self._explain_not_found()
        self._clf = clf
        device = clf.device
        self.identity = ReaderIdentity(
            vendor=device.vendor_name or None,
            model=device.product_name or None,
            firmware=None,
            serial=None,
            driver=f"nfcpy {getattr(nfc, '__version__', '?')} "
            f"{getattr(device, 'chipset_name', '')} at {device.path}".replace("  ", " "),
        )
        logger.debug("%s: opened %s", self.uri, device)

    def _explain_not_found(self) -> OpenError:
        """Why nfcpy found nothing. For a partial USB path nfcpy skips devices it may not
        open (permission, busy) and just says "none"; the diagnosis says which and why."""
        if self.path.split(":")[0] == "usb":
            findings = nfc_diagnostics.diagnose(probe=self.system_probe, open_devices=False)
            for finding in findings:
                if finding.path and not _path_covers(self.path, finding):
                    continue
                error = _FINDING_ERRORS.get(finding.kind)
                if error is not None:
                    return error(f"{self.uri}: {finding.message}", remedy=finding.remedy)
        return ReaderNotFound(
            f"no nfcpy reader at {self.uri}",
            remedy="check the cable and the path (usb, usb:VID:PID, tty:USB0:pn532, "
            "udp:HOST:PORT); `contactless readers` lists what is connected",
        )

    def _open_error(self, error: BaseException) -> ContactlessError:
        context: dict[str, str] = {}
        vid_pid = _vid_pid(self.path)
        if vid_pid is not None:
            context["permission_remedy"] = nfc_diagnostics.permission_remedy(*vid_pid)
            known = nfc_diagnostics.SUPPORTED_USB.get(vid_pid)
            context["busy_remedy"] = nfc_diagnostics.busy_remedy(
                known.kernel_driver if known else None
            )
        detail_context = {
            **context,
            "detail": "a kernel driver or another program holds it"
            if getattr(error, "errno", None) == errno.EBUSY
            else (getattr(error, "strerror", None) or str(error)),
        }
        return translate_error(
            error, where=self.uri, what="open", phase="open", context=detail_context
        )

    def _disconnect(self) -> None:
        clf, self._clf, self._card = self._clf, None, None
        if clf is None:
            return
        # Closing mutes the reader: the RF field goes off (the UDP driver sends RFOFF).
        if self._io_lock.acquire(timeout=CLOSE_WAIT):
            try:
                self._close_clf(clf)
            finally:
                self._io_lock.release()
            return
        # An exchange is still blocked in nfcpy; close once it returns, without waiting.
        logger.warning("%s: an exchange is still running; the reader closes after it", self.uri)
        threading.Thread(
            target=self._close_when_free, args=(clf,), name=f"close {self.uri}", daemon=True
        ).start()

    def _close_when_free(self, clf: Any) -> None:
        with self._io_lock:
            self._close_clf(clf)

    def _close_clf(self, clf: Any) -> None:
        try:
            clf.close()
        except Exception as error:  # closing must not raise from nfcpy internals
            logger.debug("%s: error while closing: %s", self.uri, error)

    # --- sensing and activation -----------------------------------------------------------

    def _card_present(self) -> bool:
        return self._wait_for_card(time.monotonic() + SENSE_INTERVAL)

    def _still_there(self, card: _ActiveCard) -> bool:
        """nfcpy's presence check: an R(NAK) any card in the field answers; a card that
        does not answer is forgotten."""
        try:
            with self._locked(time.monotonic() + PRESENCE_WAIT, "presence check"):
                self._drop_stale_frames()
                card.dep.exchange(None)
            return True
        except TransportTimeout:
            raise
        except Exception as error:
            logger.debug("%s: presence check failed: %r", self.uri, error)
            self._forget_card()
            return False

    def _wait_for_card(self, deadline: float) -> bool:
        card = self._card
        if card is not None and self._still_there(card):
            return True
        while True:
            if self._card is not None:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            started = time.monotonic()
            if self._run_sense(deadline):
                return True
            pause = SENSE_INTERVAL - (time.monotonic() - started)
            if pause > 0:
                time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))

    def wait_for_card(self, timeout: float) -> bool:
        """Sense until an ISO 14443-4 card is activated; True, or
        :class:`~contactless.errors.NoCard` after ``timeout`` seconds."""
        try:
            return super().wait_for_card(timeout)
        except NoCard as error:
            if self._last_seen:
                raise NoCard(
                    f"{error.message}; only {self._last_seen}, which takes no APDUs",
                    remedy="present an ISO 14443-4 (EMV, Type 4) card",
                ) from None
            raise

    def _run_sense(self, deadline: float) -> bool:
        """One sense + activation on a worker thread; True when a card is active. A
        worker still running at the deadline carries on; its card is used next time."""
        previous = self._sensing
        if previous is not None and previous.is_alive():
            previous.join(max(deadline - time.monotonic(), 0.0))
            if previous.is_alive():
                return False
        outcome: list[BaseException] = []

        def run() -> None:
            try:
                self._sense_once()
            except BaseException as error:  # handed to the waiting thread
                outcome.append(error)

        worker = threading.Thread(target=run, name=f"sense {self.uri}", daemon=True)
        self._sensing = worker
        worker.start()
        worker.join(max(deadline - time.monotonic(), 0.0))
        if worker.is_alive():
            return False
        if outcome:
            raise outcome[0]
        return self._card is not None

    def _sense_once(self) -> None:
        if not self._io_lock.acquire(timeout=CLOSE_WAIT):
            return
        try:
            clf = self._clf
            if clf is None or self._card is not None:
                return
            import nfc.clf

            targets = [nfc.clf.RemoteTarget(brty) for brty in SENSE_TARGETS]
            try:
                target = clf.sense(*targets, iterations=1, interval=0)
            except OSError as error:
                if error.errno == errno.ECONNREFUSED:
                    return  # UDP simulation: no card is listening (yet)
                raise self._sense_error(error) from error
            except Exception as error:
                raise self._sense_error(error) from error
            if target is None:
                return
            self._watch_udp_peer()
            try:
                self._card = self._activate(clf, target)
            except ContactlessError:
                raise
            except Exception as error:
                # The card left or garbled its answer during activation: sense again.
                logger.debug("%s: activation failed: %r", self.uri, error)
                return
            if self._card is not None:
                self._publish(self._card)
        finally:
            self._io_lock.release()

    def _sense_error(self, error: BaseException) -> ContactlessError:
        return translate_error(error, where=self.uri, what="sensing for a card")

    def _activate(self, clf: Any, target: Any) -> _ActiveCard | None:
        import nfc.tag.tt4

        fsd_byte = RATS_FSD_256 if clf.max_recv_data_size >= 256 else RATS_FSD_128
        if target.brty.endswith("A"):
            sak = target.sel_res[0]
            if not sak & SAK_ISO_DEP:
                self._last_seen = f"a type A card with SAK {sak:02X} (not ISO 14443-4)"
                return None
            answer = bytes(clf.exchange(bytearray((0xE0, fsd_byte)), ACTIVATION_TIMEOUT))
            try:
                ats_info = parse_ats(answer)
            except AtrError as error:
                reason = f"the card's ATS {answer.hex().upper()} is malformed: {error.reason}"
                raise AtrError(reason, offset=error.offset) from None
            fsc, fwt = ats_info.fsc, ats_info.fwt
            card = _ActiveCard(
                "A",
                bytes(target.sdd_res),
                dep=None,
                atqa=bytes(target.sens_res),
                sak=sak,
                ats=ats_info.raw,
                ats_info=ats_info,
                atr=atr_from_ats(ats_info.raw),
            )
        else:
            atqb = bytes(target.sensb_res)
            pupi = atqb[1:5]
            attrib = b"\x1d" + pupi + bytes((0x00, fsd_byte >> 4, 0x01, 0x00))
            answer = bytes(clf.exchange(bytearray(attrib), ACTIVATION_TIMEOUT))
            mbli = answer[0] & 0xF0 if answer else 0
            atr = contactless_atr(atqb[5:12] + bytes((mbli,)))
            info = parse_atr(atr).contactless
            atqb_info = info.type_b if info is not None else None
            if atqb_info is None:
                raise RemoteProtocolError(f"the ATQB {atqb.hex().upper()} cannot be decoded")
            fsc, fwt = atqb_info.fsc, atqb_info.fwt
            card = _ActiveCard("B", pupi, dep=None, atqb=atqb, atqb_info=atqb_info, atr=atr)
        fsc = min(fsc, clf.max_send_data_size)
        card.dep = nfc.tag.tt4.IsoDepInitiator(clf, fsc, fwt)
        self._last_seen = None
        logger.debug(
            "%s: activated a type %s card, FSC %d, FWT %.1f ms",
            self.uri,
            card.technology,
            fsc,
            fwt * 1000,
        )
        return card

    def _publish(self, card: _ActiveCard) -> None:
        self.uid, self.ats, self.atr = card.uid, card.ats, card.atr

    def _forget_card(self) -> None:
        self._card = None
        self.uid = self.ats = self.atr = None

    # --- exchanges ------------------------------------------------------------------------

    def _transmit(self, apdu: bytes, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        what = describe_apdu(apdu)
        # Stop sensing a little before the deadline, so that "no card" is reported as
        # NoCard rather than as the watchdog's timeout.
        sense_until = deadline - min(SENSE_MARGIN, timeout / 5)
        if self._card is None and not self._wait_for_card(sense_until):
            raise NoCard(f"{what} not sent: no ISO 14443-4 card on {self.uri}")
        card = self._card
        if card is None:  # pragma: no cover - set by _wait_for_card above
            raise NoCard(f"{what} not sent: no card on {self.uri}")
        try:
            with self._locked(deadline, what):
                self._drop_stale_frames()
                response = card.dep.exchange(bytearray(apdu))
        except ContactlessError:
            self._forget_card()
            raise
        except Exception as error:
            # After a failed exchange nfcpy's block numbers may disagree with the card's:
            # the next exchange activates the card again.
            self._forget_card()
            raise translate_error(error, where=self.uri, what=what) from error
        if response is None or len(response) < 2:
            self._forget_card()
            raise RemoteProtocolError(
                f"the card on {self.uri} answered {what} with "
                f"{len(response or b'')} byte(s), not a response APDU"
            )
        return bytes(response)

    def _locked(self, deadline: float, what: str) -> _Locked:
        return _Locked(self._io_lock, deadline, f"{what} not sent: {self.uri} stayed busy")

    def _udp_socket(self) -> Any:
        """The socket of nfcpy's UDP driver, or None for any other device."""
        device = getattr(self._clf, "device", None)
        if type(device).__module__ != "nfc.clf.udp":
            return None
        return getattr(device, "socket", None)

    def _watch_udp_peer(self) -> None:
        """Connect the UDP simulation's socket to the card that answered (UDP only).

        The kernel reports "port unreachable" only to a connected UDP socket: connected,
        a card process that died shows up at once as ECONNREFUSED (CardRemoved) instead
        of as nfcpy's timeout after all its retries. The driver's sendto() to the same
        address keeps working; its next sense makes a new socket.
        """
        sock = self._udp_socket()
        address = getattr(getattr(self._clf, "device", None), "addr", None)
        if sock is None or address is None:
            return
        try:
            sock.connect(address)
        except OSError as error:
            logger.debug("%s: cannot connect the UDP socket: %s", self.uri, error)

    def _drop_stale_frames(self) -> None:
        """Discard datagrams left over from an earlier exchange (UDP simulation only).

        nfcpy's UDP driver never drains its socket: a frame that arrived after nfcpy gave up
        on it would be read as the answer to the next command.
        """
        sock = self._udp_socket()
        if sock is None:
            return
        while select.select([sock], [], [], 0)[0]:
            stale, _ = sock.recvfrom(1024)
            logger.debug("%s: dropped a stale frame of %d bytes", self.uri, len(stale))

    # --- discovery ------------------------------------------------------------------------

    @classmethod
    def detect(cls) -> list[ReaderInfo]:
        """The USB readers nfcpy supports, without opening them (``nfc:usb:BUS:ADDR``);
        unusable ones (permission, busy) are listed unavailable with the fix."""
        import_nfcpy()
        readers = []
        for finding in nfc_diagnostics.diagnose(open_devices=False):
            if finding.kind is nfc_diagnostics.FindingKind.NOT_FOUND:
                continue
            detail = finding.message + (f" ({finding.remedy})" if finding.remedy else "")
            readers.append(
                ReaderInfo(
                    uri=f"nfc:{finding.path}" if finding.path else "nfc:",
                    name=finding.device or "nfcpy reader",
                    card_present=None,
                    backend=cls.scheme,
                    detail="" if finding.ok else detail,
                    available=finding.ok,
                )
            )
        return readers


class _Locked:
    """``with`` block holding a lock acquired before a deadline, else TransportTimeout."""

    def __init__(self, lock: threading.Lock, deadline: float, message: str) -> None:
        self._lock = lock
        self._deadline = deadline
        self._message = message

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=max(self._deadline - time.monotonic(), 0.0)):
            raise TransportTimeout(self._message)

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


#: Diagnosis of a USB reader nfcpy skipped -> the error to raise for it.
_FINDING_ERRORS: dict[nfc_diagnostics.FindingKind, type[OpenError]] = {
    nfc_diagnostics.FindingKind.PERMISSION: PermissionDenied,
    nfc_diagnostics.FindingKind.BUSY: ReaderBusy,
    nfc_diagnostics.FindingKind.LIBUSB_MISSING: BackendUnavailable,
    nfc_diagnostics.FindingKind.NFCPY_MISSING: BackendUnavailable,
}


# --- device path syntax ---------------------------------------------------------------------
# nfcpy takes a malformed path for a missing device (or fails with a bare ValueError), so
# the syntax nfcpy accepts (nfc/clf/transport.py, nfc/clf/device.py) is checked up front.

#: usb, usb:VID[:PID] (hex), usb:BUS[:DEV] (decimal), as nfcpy's USB.find reads them.
_USB_PATH = re.compile(r"usb(:[0-9a-fA-F]{4}(:[0-9a-fA-F]{4})?|:[0-9]{1,3}(:[0-9]{1,3})?)?")
#: tty|com[:PORT[:DRIVER]], as nfcpy's TTY.find reads them.
_TTY_PATH = re.compile(r"(tty|com)(:[a-zA-Z0-9-]*)?(:[a-zA-Z0-9]*)?")
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def check_device_path(path: str, uri: str) -> None:
    """Check the syntax of an nfcpy device path for the kinds nfcpy knows (usb, tty/com,
    udp); raise :class:`~contactless.errors.ConfigError` naming the bad part. Other kinds
    are left to nfcpy, which finds no device for them (ReaderNotFound)."""
    kind = path.split(":", 1)[0].lower()
    if kind == "udp":
        _check_udp_path(path, uri)
    elif kind == "usb" and not _USB_PATH.fullmatch(path):
        raise ConfigError(
            f"{uri!r}: {path!r} is not a USB device path",
            remedy="write usb, usb:VID:PID (4 hex digits each) or usb:BUS:DEV (decimal)",
        )
    elif kind in ("tty", "com") and not _TTY_PATH.fullmatch(path):
        raise ConfigError(
            f"{uri!r}: {path!r} is not a serial device path",
            remedy="write tty:PORT:DRIVER, e.g. tty:USB0:pn532 or tty:S0:arygon",
        )


def _check_udp_path(path: str, uri: str) -> None:
    parts = path.split(":")
    if len(parts) > 3:
        raise ConfigError(
            f"{uri!r}: {path!r} has too many parts for udp:HOST:PORT",
            remedy="nfcpy's udp device takes an IPv4 address or a host name, not IPv6",
        )
    host = parts[1] if len(parts) > 1 else ""
    port = parts[2] if len(parts) > 2 else ""
    if host:
        problem = _host_problem(host)
        if problem:
            raise ConfigError(
                f"{uri!r}: host {host!r} {problem}", remedy="e.g. nfc:udp:127.0.0.1:54321"
            )
    if port and not (port.isdigit() and port.isascii() and 1 <= int(port) <= 65535):
        raise ConfigError(
            f"{uri!r}: port {port!r} is not a number from 1 to 65535",
            remedy="e.g. nfc:udp:127.0.0.1:54321",
        )


def _host_problem(host: str) -> str | None:
    """Why ``host`` is not an IPv4 address or a host name, or None when it is one."""
    labels = host.split(".")
    if all(label.isdigit() for label in labels):
        if len(labels) != 4:
            return "is not an IPv4 address (it needs 4 numbers)"
        too_big = [label for label in labels if int(label) > 255]
        if too_big:
            return f"is not an IPv4 address ({too_big[0]} is more than 255)"
        return None
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return "is not an IPv4 address or a host name"
    return None


def _path_covers(path: str, finding: nfc_diagnostics.Finding) -> bool:
    """Whether the nfcpy ``path`` (``usb``, ``usb:VID[:PID]``, ``usb:BUS[:DEV]``) names
    the device of ``finding`` (path ``usb:BUS:DEV``, device "... (usb VID:PID)")."""
    wanted = path.split(":")[1:]
    if not wanted:
        return True
    if len(wanted[0]) == 4:  # vendor (and product) ids in hex
        return f"usb {':'.join(wanted)}".lower() in (finding.device or "").lower()
    found = (finding.path or "").split(":")[1:]
    if not all(part.isdigit() for part in wanted + found):
        return False
    return all(int(w) == int(f) for w, f in zip(wanted, found, strict=False))


def _vid_pid(path: str) -> tuple[int, int] | None:
    """(vid, pid) from a ``usb:VID:PID`` path, else None."""
    parts = path.split(":")
    if len(parts) == 3 and parts[0] == "usb" and all(len(p) == 4 for p in parts[1:]):
        try:
            return int(parts[1], 16), int(parts[2], 16)
        except ValueError:
            return None
    return None
