"""``pcsc:``: PC/SC readers through pcscd (or WinSCard), with pyscard's low-level API.

Reader URIs::

    pcsc:                     the first reader with a card (else the first reader)
    pcsc:1                    the second reader, in pcscd's order
    pcsc:ACS ACR122U          the first reader whose name starts with this (URL-decoded,
    pcsc:ACS%20ACR122U        so pcsc:Name%3Fwith%3Fmarks works too)
    pcsc:?mode=exclusive&protocol=T1&disconnect=reset

Query keys (see :data:`QUERY_KEYS`): ``mode`` shared | exclusive | direct (no card
session, for control commands only), ``protocol`` any | T0 | T1, ``disconnect`` leave |
reset | unpower | eject (what happens to the card on :meth:`PcscTransport.disconnect`).

Opening the transport binds a reader and, if a card is there, opens a card session;
:meth:`~contactless.transport.base.Transport.wait_for_card` waits (with
``SCardGetStatusChange``) for one otherwise. Every pyscard/pcsc-lite failure becomes a
contactless error with a remedy (table in :mod:`.pcsc_errors`); nothing from pyscard
leaks out.

Deadlines: pcscd never times out a card that stops answering, so every call carries a
deadline enforced by :mod:`.pcsc_context`. After a :class:`~contactless.errors.
TransportTimeout` the transport is in this documented state: the card session and its
PC/SC context are gone (pcscd drops them once the reader driver returns), the reader
stays bound, and the next :meth:`transmit`, :meth:`reconnect` or ``wait_for_card`` opens a
new context and a new session **and resets the card**, so nothing ever talks to a card
left half-way through a command. A card that stays hung keeps the reader blocked inside
pcscd; those calls then time out too, until the card is removed.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, unquote

from smartcard import scard

from ..errors import (
    CardRemoved,
    ConfigError,
    ContactlessError,
    LocalProtocolError,
    NoCard,
    ReaderNotFound,
    ServiceUnavailable,
    TransportError,
    TransportTimeout,
)
from .base import ReaderIdentity, ReaderInfo, Transport, check_timeout, describe_apdu
from .pcsc_context import CallAborted, PcscContext, ReaderState
from .pcsc_errors import (
    AMBIGUOUS_CODES,
    SCARD_E_NO_SMARTCARD,
    SCARD_E_TIMEOUT,
    SCARD_F_COMM_ERROR,
    SCARD_S_SUCCESS,
    SCARD_W_REMOVED_CARD,
    SCARD_W_RESET_CARD,
    code_name,
    lookup,
    pcsc_error,
)

__all__ = [
    "GET_UID",
    "QUERY_KEYS",
    "PcscTransport",
    "PcscUri",
    "reader_uri",
]

logger = logging.getLogger("contactless.transport.pcsc")

_MASK = 0xFFFFFFFF

#: PC/SC part 3 pseudo-APDU: the reader answers with the card's UID.
GET_UID = bytes.fromhex("FFCA000000")

#: Seconds given to pcscd to notice a removal before an ambiguous failure is called a
#: transmission error (pcscd polls readers without hotplug interrupts every 400 ms).
REMOVAL_GRACE = 1.5
#: Seconds for calls that only talk to pcscd (list readers, status), not to a card.
SERVICE_CALL_TIMEOUT = 5.0
#: Longest single SCardGetStatusChange wait, so a dead service is noticed promptly.
STATUS_POLL = 0.5

_SHARE_MODES: dict[str, int] = {
    "shared": scard.SCARD_SHARE_SHARED,
    "exclusive": scard.SCARD_SHARE_EXCLUSIVE,
    "direct": scard.SCARD_SHARE_DIRECT,
}
_PROTOCOLS: dict[str, int] = {
    "any": scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
    "t0": scard.SCARD_PROTOCOL_T0,
    "t1": scard.SCARD_PROTOCOL_T1,
}
_PROTOCOL_NAMES: dict[int, str] = {scard.SCARD_PROTOCOL_T0: "T0", scard.SCARD_PROTOCOL_T1: "T1"}
_DISPOSITIONS: dict[str, int] = {
    "leave": scard.SCARD_LEAVE_CARD,
    "reset": scard.SCARD_RESET_CARD,
    "unpower": scard.SCARD_UNPOWER_CARD,
    "eject": scard.SCARD_EJECT_CARD,
}

#: Query keys of a pcsc: URI and their allowed values.
QUERY_KEYS: dict[str, tuple[str, ...]] = {
    "mode": tuple(_SHARE_MODES),
    "protocol": ("any", "T0", "T1"),
    "disconnect": tuple(_DISPOSITIONS),
}

# pcsc-lite appends "<reader index> <slot>" (two hex bytes) to every reader name.
_SLOT_SUFFIX = re.compile(r"\s+[0-9A-Fa-f]{2}\s+[0-9A-Fa-f]{2}$")
# Characters left as they are in the URIs detect() prints (reader names are mostly words).
_URI_SAFE = " ()[]-_.,:;@!+*'/"


def reader_uri(name: str) -> str:
    """The ``pcsc:`` URI that opens the reader called ``name``."""
    return "pcsc:" + quote(name, safe=_URI_SAFE)


@dataclass(frozen=True, slots=True)
class PcscUri:
    """A parsed ``pcsc:`` URI: which reader, and how to connect to its card."""

    #: Reader name prefix ("" for any reader); ``None`` when an index is given.
    name: str | None = ""
    index: int | None = None
    mode: str = "shared"
    protocol: str = "any"
    disconnect: str = "leave"

    @classmethod
    def parse(cls, uri: str) -> PcscUri:
        """Parse ``pcsc:[INDEX|NAME][?key=value&...]``; bad input raises ConfigError."""
        scheme, colon, rest = uri.partition(":")
        if not colon or scheme.strip().lower() != "pcsc":
            raise ConfigError(f"{uri!r} is not a pcsc: URI", remedy="write it as pcsc:[READER]")
        selector, _, query = rest.partition("?")
        options: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            key = key.strip().lower()
            allowed = QUERY_KEYS.get(key)
            if allowed is None:
                raise ConfigError(
                    f"unknown option {key!r} in {uri!r}",
                    remedy="valid options: " + ", ".join(sorted(QUERY_KEYS)),
                )
            value = value.strip().lower()
            if value not in (item.lower() for item in allowed):
                raise ConfigError(
                    f"bad value {value!r} for {key} in {uri!r}",
                    remedy=f"use one of {', '.join(allowed)}",
                )
            options[key] = value
        selector = unquote(selector).strip()
        index: int | None = None
        name: str | None = selector
        if selector.isdigit():
            index, name = int(selector), None
        return cls(
            name=name,
            index=index,
            mode=options.get("mode", "shared"),
            protocol=options.get("protocol", "any"),
            disconnect=options.get("disconnect", "leave"),
        )

    def describe(self) -> str:
        """Which reader this selects, in words, for messages."""
        if self.index is not None:
            return f"reader #{self.index}"
        return f"a reader named {self.name!r}..." if self.name else "any reader"


def _decode_text(raw: bytes) -> str | None:
    text = raw.split(b"\x00", 1)[0].decode("ascii", "replace").strip()
    return text or None


def _decode_ifd_version(raw: bytes) -> str | None:
    # SCARD_ATTR_VENDOR_IFD_VERSION: DWORD 0xMMmmbbbb (major, minor, build), little-endian.
    if len(raw) < 4:
        return None
    value = int.from_bytes(raw[:4], "little")
    return f"{value >> 24}.{(value >> 16) & 0xFF}.{value & 0xFFFF}"


#: Reader attributes read for :attr:`Transport.identity`: field -> (attribute, decoder).
_IDENTITY_ATTRIBUTES: dict[str, tuple[int, Callable[[bytes], str | None]]] = {
    "vendor": (scard.SCARD_ATTR_VENDOR_NAME, _decode_text),
    "model": (scard.SCARD_ATTR_VENDOR_IFD_TYPE, _decode_text),
    "firmware": (scard.SCARD_ATTR_VENDOR_IFD_VERSION, _decode_ifd_version),
    "serial": (scard.SCARD_ATTR_VENDOR_IFD_SERIAL_NO, _decode_text),
}


class PcscTransport(Transport):
    """A PC/SC reader, and the card on it, through pcscd."""

    scheme: ClassVar[str] = "pcsc"
    # _transmit enforces its own deadline (see pcsc_context): no watchdog thread per call.
    enforces_deadline: ClassVar[bool] = True

    def __init__(self, uri: str, *, timeout: float | None = None) -> None:
        super().__init__(uri, timeout=timeout)
        self.options = PcscUri.parse(uri)
        #: The bound reader's name (set by connect()).
        self.reader: str | None = None
        #: The active protocol, "T0" or "T1", while a card session is open.
        self.protocol: str | None = None
        self._context: PcscContext | None = None
        self._card: int | None = None  # SCARDHANDLE of the card session
        self._active_protocol = 0
        self._direct: int | None = None  # SCARDHANDLE in direct mode, for control()
        self._candidates: list[str] = []  # readers that match the URI (for wait_for_card)
        self._reset_on_open = False  # the last session ended in a timeout
        self._state_at_open = scard.SCARD_STATE_UNAWARE

    # --- helpers ----------------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return self.reader or self.uri

    def _ensure_context(self) -> PcscContext:
        if self._context is None or not self._context.alive:
            if self._context is not None:
                self._context.release()
            self._context = None
            self._context = PcscContext.establish(doing=f"opening {self.uri}")
        return self._context

    def _drop_context(self) -> None:
        """Forget the context and everything opened in it (pcscd cleans up after it)."""
        context, self._context = self._context, None
        self._card = self._direct = None
        self.protocol = None
        self.atr = self.uid = None
        if context is not None:
            context.release()

    def _call(self, function: Callable[..., Any], *args: Any, deadline: float, doing: str) -> Any:
        """A guarded call in the current context; a deadline becomes TransportTimeout."""
        context = self._ensure_context()
        try:
            return context.call(function, *args, deadline=deadline)
        except CallAborted:
            self._timed_out()
            raise TransportTimeout(
                f"{doing} on {self._where} got no answer in time; the card session was "
                "closed and the next exchange starts a new one with a card reset",
                remedy="present the card again; if the reader keeps hanging, unplug and replug it",
            ) from None

    def _states(self, names: Sequence[str], timeout: float = 0.0) -> list[ReaderState]:
        context = self._ensure_context()
        try:
            code, states = context.status_change(
                [(name, scard.SCARD_STATE_UNAWARE) for name in names], timeout
            )
        except CallAborted:
            self._drop_context()
            raise ServiceUnavailable(
                f"pcscd did not answer a status request for {self._where}",
                remedy="restart pcscd",
            ) from None
        if code not in (SCARD_S_SUCCESS, SCARD_E_TIMEOUT):
            self._fail_service(code, doing="reading the reader state")
        return states

    def _fail_service(self, code: int, *, doing: str) -> None:
        """Raise the error for a failed service call (dropping a dead context)."""
        row = lookup(code)
        if row is not None and row.error is ServiceUnavailable:
            self._drop_context()
        raise pcsc_error(code, doing=doing, reader=self._where)

    # --- connect / disconnect -----------------------------------------------------------------

    def _connect(self) -> None:
        deadline = time.monotonic() + SERVICE_CALL_TIMEOUT
        context = self._ensure_context()
        try:
            names = context.list_readers(deadline=deadline)
        except CallAborted:
            self._drop_context()
            raise ServiceUnavailable(f"pcscd did not list its readers for {self.uri}") from None
        except ContactlessError:
            self._drop_context()
            raise
        try:
            self._candidates = self._select_readers(names)
            states = {state.name: state for state in self._states(self._candidates)}
            with_card = [name for name in self._candidates if states[name].present]
            self.reader = (with_card or self._candidates)[0]
            self.identity = ReaderIdentity(model=_SLOT_SUFFIX.sub("", self.reader), driver=__name__)
            if self.options.mode == "direct":
                self._open_direct(deadline)
            elif with_card:
                try:
                    self._open_card(time.monotonic() + self.timeout)
                except (NoCard, CardRemoved):
                    self._lose_session()  # it left meanwhile: wait_for_card() will see
            self._read_identity(deadline)
        except BaseException:
            self._drop_context()
            raise

    def _select_readers(self, names: list[str]) -> list[str]:
        """The readers this URI may bind, best first; raises ReaderNotFound for none."""
        options = self.options
        if not names:
            raise ReaderNotFound(
                f"no PC/SC reader is connected (looking for {options.describe()} for {self.uri})",
                remedy="plug in the reader and check that its driver loaded "
                "(pcscd --foreground --debug shows it)",
            )
        if options.index is not None:
            if options.index >= len(names):
                raise ReaderNotFound(
                    f"{self.uri}: there is no reader #{options.index}; the readers are: "
                    + "; ".join(f"#{i} {name}" for i, name in enumerate(names)),
                    remedy="run `contactless readers` and use an index from its list",
                )
            return [names[options.index]]
        prefix = options.name or ""
        exact = [name for name in names if name == prefix]
        matches = exact or [name for name in names if name.startswith(prefix)]
        if not matches:
            raise ReaderNotFound(
                f"{self.uri}: no reader name starts with {prefix!r}; the readers are: "
                + "; ".join(names),
                remedy="run `contactless readers` and copy the URI it prints",
            )
        return matches

    def _disconnect(self) -> None:
        disposition = _DISPOSITIONS[self.options.disconnect]
        context = self._context
        try:
            if context is not None and context.alive:
                deadline = time.monotonic() + SERVICE_CALL_TIMEOUT
                for handle in (self._card, self._direct):
                    if handle is None:
                        continue
                    try:
                        context.call(scard.SCardDisconnect, handle, disposition, deadline=deadline)
                    except (CallAborted, ContactlessError):
                        break  # the context is released below either way
        finally:
            self._drop_context()
            self.reader = None
            self._candidates = []

    # --- the card session ---------------------------------------------------------------------

    def _open_card(self, deadline: float) -> None:
        """Connect to the card on the bound reader and learn its ATR and UID."""
        if self.options.mode == "direct":
            raise LocalProtocolError(
                f"{self.uri} is open in direct mode: there is no card session",
                remedy="use control() for reader commands, or drop ?mode=direct",
            )
        reader = self._where
        share = _SHARE_MODES[self.options.mode]
        protocols = _PROTOCOLS[self.options.protocol]
        context = self._ensure_context()
        code, handle, active = self._call(
            scard.SCardConnect, context.handle, reader, share, protocols,
            deadline=deadline, doing="connecting to the card",
        )  # fmt: skip
        code &= _MASK
        if code != SCARD_S_SUCCESS:
            self._fail_service(code, doing="connecting to the card")
        self._card, self._active_protocol = handle, int(active)
        if self._reset_on_open:
            self._reconnect_handle(scard.SCARD_RESET_CARD, deadline)
            self._reset_on_open = False
        self._after_open(deadline)

    def _after_open(self, deadline: float) -> None:
        self.protocol = _PROTOCOL_NAMES.get(self._active_protocol)
        code, _name, _state, _protocol, atr = self._call(
            scard.SCardStatus, self._card, deadline=deadline, doing="reading the card status"
        )
        if code & _MASK != SCARD_S_SUCCESS:
            self._lose_session()
            raise pcsc_error(code, doing="reading the card status", reader=self._where)
        self.atr = bytes(atr) or None
        [state] = self._states([self._where])
        self._state_at_open = state.event_state & ~scard.SCARD_STATE_CHANGED
        self.uid = self._read_uid(deadline)

    def _read_uid(self, deadline: float) -> bytes | None:
        # The reader answers this pseudo-APDU itself; a card or reader without PC/SC part 3
        # support answers an error status word, which just means "UID unknown".
        response = self._exchange(GET_UID, deadline, "GET DATA (UID)")
        if len(response) > 2 and response[-2:] == b"\x90\x00":
            return response[:-2]
        return None

    def _open_direct(self, deadline: float) -> int:
        if self._direct is None:
            context = self._ensure_context()
            code, handle, _protocol = self._call(
                scard.SCardConnect, context.handle, self._where, scard.SCARD_SHARE_DIRECT, 0,
                deadline=deadline, doing="opening the reader in direct mode",
            )  # fmt: skip
            if code & _MASK != SCARD_S_SUCCESS:
                self._fail_service(code & _MASK, doing="opening the reader in direct mode")
            self._direct = handle
        return self._direct

    def _read_identity(self, deadline: float) -> None:
        """Fill :attr:`identity` from SCardGetAttrib, where the driver answers."""
        handle = self._card if self._card is not None else self._direct
        if handle is None:
            return
        found: dict[str, str | None] = {}
        for field, (attribute, decode) in _IDENTITY_ATTRIBUTES.items():
            try:
                code, value = self._call(
                    scard.SCardGetAttrib, handle, attribute,
                    deadline=deadline, doing="reading a reader attribute",
                )  # fmt: skip
            except TransportError:
                continue
            if code & _MASK == SCARD_S_SUCCESS and value:
                found[field] = decode(bytes(value))
        current = self.identity
        self.identity = ReaderIdentity(
            vendor=found.get("vendor") or current.vendor,
            model=found.get("model") or current.model,
            firmware=found.get("firmware") or current.firmware,
            serial=found.get("serial") or current.serial,
            driver=current.driver,
        )

    def _lose_session(self) -> None:
        """The card session is over (card gone, reset elsewhere): forget its handle."""
        handle, self._card = self._card, None
        self.atr = self.uid = None
        self.protocol = None
        context = self._context
        if handle is not None and context is not None and context.alive:
            try:
                context.call(
                    scard.SCardDisconnect, handle, scard.SCARD_LEAVE_CARD,
                    deadline=time.monotonic() + SERVICE_CALL_TIMEOUT,
                )  # fmt: skip
            except (CallAborted, ContactlessError):
                self._drop_context()

    def _reconnect_handle(self, initialization: int, deadline: float) -> None:
        code, active = self._call(
            scard.SCardReconnect, self._card, _SHARE_MODES[self.options.mode],
            _PROTOCOLS[self.options.protocol], initialization,
            deadline=deadline, doing="reconnecting to the card",
        )  # fmt: skip
        code &= _MASK
        if code != SCARD_S_SUCCESS:
            self._lose_session()
            self._fail_service(code, doing="reconnecting to the card")
        self._active_protocol = int(active)

    def reconnect(self, *, reset: bool = False, timeout: float | None = None) -> None:
        """Reconnect to the card (``SCardReconnect``), resetting it if ``reset``.

        Opens a new session when there is none (after a removal or a timeout). Raises
        :class:`~contactless.errors.NoCard` when no card is on the reader.
        """
        seconds = self.timeout if timeout is None else check_timeout(timeout)
        self._require_open("reconnect")
        deadline = time.monotonic() + seconds
        with self._lock:
            if self._card is None:
                self._open_card(deadline)
                return
            self._reconnect_handle(
                scard.SCARD_RESET_CARD if reset else scard.SCARD_LEAVE_CARD, deadline
            )
            self._after_open(deadline)

    def reset(self, *, timeout: float | None = None) -> None:
        """Reset the card (a warm reset; contactless readers re-activate it)."""
        self.reconnect(reset=True, timeout=timeout)

    def _require_open(self, action: str) -> None:
        if not self.connected:
            raise LocalProtocolError(
                f"cannot {action}: the transport {self.uri} is closed",
                remedy="call connect() first, or use contactless.open_reader() as a `with` block",
            )

    # --- exchanges ----------------------------------------------------------------------------

    def _transmit(self, apdu: bytes, timeout: float) -> bytes:
        # The hot path: kept short, since it runs for every APDU (see tools/bench_transmit.py).
        deadline = time.monotonic() + timeout
        context, card = self._context, self._card
        if card is None or context is None:
            self._open_card(deadline)
            context, card = self._context, self._card
            assert context is not None and card is not None
        try:
            code, response = context.transmit(card, self._active_protocol, apdu, deadline)
        except CallAborted:
            self._timed_out()
            raise TransportTimeout(
                f"no answer to {describe_apdu(apdu)} from {self._where} in time; the card "
                "session was closed and the next exchange starts a new one with a card reset",
                remedy="present the card again; if the reader keeps hanging, unplug and replug it",
            ) from None
        if code == SCARD_S_SUCCESS and len(response) >= 2:
            return bytes(response)
        return self._failed_exchange(code & _MASK, bytes(response), describe_apdu(apdu))

    def _exchange(self, apdu: bytes, deadline: float, what: str) -> bytes:
        """One exchange inside the backend (not traced): the UID pseudo-APDU."""
        context, card = self._context, self._card
        if context is None or card is None:
            raise CardRemoved(f"{what} not sent: no card session")
        try:
            code, response = context.transmit(card, self._active_protocol, apdu, deadline)
        except CallAborted:
            self._timed_out()
            raise TransportTimeout(f"no answer to {what} from {self._where} in time") from None
        if code == SCARD_S_SUCCESS and len(response) >= 2:
            return bytes(response)
        return self._failed_exchange(code & _MASK, bytes(response), what)

    def _timed_out(self) -> None:
        """A call overran its deadline: the context is dead; reset the card next time."""
        self._reset_on_open = True
        self._drop_context()

    def _failed_exchange(self, code: int, response: bytes, what: str) -> bytes:
        """Raise the right error for a failed SCardTransmit (never returns)."""
        where = self._where
        if code == SCARD_S_SUCCESS:
            # vpcd and some drivers hand back an empty frame when the card left mid-exchange.
            if self._card_gone():
                self._lose_session()
                raise CardRemoved(f"the card left {where} during {what} (empty answer)")
            raise TransportError(
                f"{where} answered {what} with {len(response)} byte(s), too short for a "
                "status word",
                remedy="hold the card still on the reader and try again",
            )
        if code in (SCARD_W_REMOVED_CARD, SCARD_E_NO_SMARTCARD):
            self._lose_session()
            raise CardRemoved(f"the card left {where} during {what} [{code_name(code)}]")
        if code == SCARD_F_COMM_ERROR and not self._service_running():
            self._drop_context()
            raise ServiceUnavailable(f"pcscd stopped during {what} on {where} [{code_name(code)}]")
        if code in AMBIGUOUS_CODES:
            if self._card_gone():
                self._lose_session()
                raise CardRemoved(f"the card left {where} during {what} [{code_name(code)}]")
            raise pcsc_error(code, doing=what, reader=where)
        row = lookup(code)
        if row is not None and row.error is ServiceUnavailable:
            self._drop_context()
        elif code == SCARD_W_RESET_CARD:
            self._lose_session()  # another application reset the card: start a new session
        raise pcsc_error(code, doing=what, reader=where)

    def _service_running(self) -> bool:
        try:
            probe = PcscContext.establish(doing="checking pcscd")
        except ServiceUnavailable:
            return False
        except ContactlessError:
            return True
        probe.release()
        return True

    def _card_gone(self) -> bool:
        """After an ambiguous failure: did the card leave (or change) since the session
        opened? Waits up to :data:`REMOVAL_GRACE` for pcscd to notice."""
        reader = self._where
        opened_changes = (self._state_at_open >> 16) & 0xFFFF
        known = self._state_at_open
        until = time.monotonic() + REMOVAL_GRACE
        try:
            context = self._ensure_context()
            while True:
                remaining = max(until - time.monotonic(), 0.0)
                code, states = context.status_change([(reader, known)], remaining)
                if code != SCARD_S_SUCCESS or not states:
                    return False  # nothing changed in time (or pcscd cannot tell): still there
                [state] = states
                if not state.present or state.changes != opened_changes:
                    return True
                known = state.event_state & ~scard.SCARD_STATE_CHANGED
                if remaining <= 0:
                    return False
        except (CallAborted, ContactlessError):
            return False

    # --- card presence ------------------------------------------------------------------------

    def _card_present(self) -> bool:
        [state] = self._states([self._where])
        return state.present

    def _wait_for_card(self, deadline: float) -> bool:
        """Wait with SCardGetStatusChange for a card on any candidate reader, then open a
        session to it. A reader whose state is stale (the card just left) is retried."""
        if self.options.mode == "direct":
            raise LocalProtocolError(f"{self.uri} is open in direct mode: no card session")
        if self._card is not None:
            [state] = self._states([self._where])
            opened = (self._state_at_open >> 16) & 0xFFFF
            if state.present and state.changes == opened:
                return True  # the session's card is still there
        names = self._candidates or [self._where]
        known = {name: scard.SCARD_STATE_UNAWARE for name in names}
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            context = self._ensure_context()
            try:
                code, states = context.status_change(
                    list(known.items()), min(remaining, STATUS_POLL)
                )
            except CallAborted:
                self._drop_context()
                continue
            if code == SCARD_E_TIMEOUT:
                continue
            if code != SCARD_S_SUCCESS:
                self._fail_service(code, doing="waiting for a card")
            for state in states:
                known[state.name] = state.event_state & ~scard.SCARD_STATE_CHANGED
            ready = [state.name for state in states if state.present]
            if not ready:
                if all(state.unavailable for state in states):
                    raise ReaderNotFound(f"{self._where} went away while waiting for a card")
                continue
            with self._lock:
                self._lose_session()
                self.reader = ready[0]
                try:
                    self._open_card(deadline)
                    return True
                except TransportTimeout:
                    if time.monotonic() >= deadline:
                        return False
                except (NoCard, CardRemoved, TransportError) as error:
                    # pcscd's view was stale (the card just left): wait for the next change.
                    logger.debug("card on %s not usable yet: %s", self.reader, error)
                    self._lose_session()

    # --- reader commands ----------------------------------------------------------------------

    def control(self, code: int, data: bytes = b"", *, timeout: float | None = None) -> bytes:
        """Send a reader control command (``SCardControl``) and return its answer.

        Uses the card session, or a direct connection to the reader when there is no card
        (drivers accept escape commands without a card only in direct mode). See
        :mod:`.pcsc_features` for the control codes.
        """
        seconds = self.timeout if timeout is None else check_timeout(timeout)
        self._require_open("send a control command")
        deadline = time.monotonic() + seconds
        with self._lock:
            handle = self._card if self._card is not None else self._open_direct(deadline)
            result, answer = self._call(
                scard.SCardControl, handle, code, list(data),
                deadline=deadline, doing=f"control command 0x{code:08X}",
            )  # fmt: skip
        result &= _MASK
        if result != SCARD_S_SUCCESS:
            raise pcsc_error(result, doing=f"control command 0x{code:08X}", reader=self._where)
        return bytes(answer)

    def get_attribute(self, attribute: int, *, timeout: float | None = None) -> bytes | None:
        """A reader attribute (``SCardGetAttrib``), or ``None`` when the driver has none."""
        seconds = self.timeout if timeout is None else check_timeout(timeout)
        self._require_open("read a reader attribute")
        deadline = time.monotonic() + seconds
        with self._lock:
            handle = self._card if self._card is not None else self._open_direct(deadline)
            result, value = self._call(
                scard.SCardGetAttrib, handle, attribute,
                deadline=deadline, doing=f"reading attribute 0x{attribute:X}",
            )  # fmt: skip
        if result & _MASK != SCARD_S_SUCCESS:
            return None
        return bytes(value)

    # --- discovery ----------------------------------------------------------------------------

    @classmethod
    def detect(cls) -> list[ReaderInfo]:
        """Every PC/SC reader, with whether a card is on it. Raises ServiceUnavailable
        when pcscd is not running."""
        context = PcscContext.establish(doing="listing PC/SC readers")
        try:
            deadline = time.monotonic() + SERVICE_CALL_TIMEOUT
            try:
                names = context.list_readers(deadline=deadline)
                if not names:
                    return []
                code, states = context.status_change(
                    [(name, scard.SCARD_STATE_UNAWARE) for name in names], 0.0
                )
            except CallAborted:
                raise ServiceUnavailable("pcscd did not answer in time") from None
            if code not in (SCARD_S_SUCCESS, SCARD_E_TIMEOUT):
                raise pcsc_error(code, doing="reading reader states")
            return [
                ReaderInfo(
                    uri=reader_uri(state.name),
                    name=state.name,
                    card_present=None if state.unavailable else state.present,
                    backend=cls.scheme,
                    detail=_describe_state(state),
                )
                for state in states
            ]
        finally:
            context.release()


def _describe_state(state: ReaderState) -> str:
    if state.unavailable:
        return "reader unavailable (driver failed or unplugged)"
    if not state.present:
        return "mute card (no answer to reset)" if "mute" in state.flags else "no card"
    parts = [f"ATR {state.atr.hex().upper()}"] if state.atr else []
    if state.exclusive:
        parts.append("held exclusively by another program")
    elif state.in_use:
        parts.append("in use")
    return ", ".join(parts) or "card present"
