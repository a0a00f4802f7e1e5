"""The virtual EMV contactless card: a pure ``bytes -> bytes`` APDU handler.

:class:`VirtualCard` answers the commands a payment terminal sends (EMV Book 1 and 3,
ISO 7816-4) from a :class:`~contactless.emulator.profiles.Profile`:

====================  ==========================================================================
SELECT (00 A4 04)     by DF name; P2=00 first, P2=02 next occurrence; a prefix selects the first
                      name that starts with it. ``2PAY.SYS.DDF01`` answers the PPSE directory,
                      or 6A82 when the profile has no PPSE.
GET PROCESSING        83 template checked against the PDOL (length -> 6700, no 83 -> 6985);
OPTIONS (80 A8)       starts a transaction: ATC + 1. Format 1 (80) or 2 (77); qVSDC profiles
                      answer with Track 2 and the cryptogram in the GPO.
READ RECORD (00 B2)   P2 = SFI << 3 | 4; unknown SFI 6A82, unknown record 6A83.
GET DATA (80 CA)      9F36 ATC, 9F17 PIN try counter, 9F13 last online ATC, 9F4F log format.
GENERATE AC (80 AE)   AAC / TC / ARQC per P1 and the card's decision; CDOL1 (then CDOL2) length
                      checked; cryptogram from :mod:`.crypto`.
VERIFY (00 20 00 80)  offline plaintext PIN (format 2 PIN block): 63Cx, 6983 when blocked.
GET RESPONSE (00 C0)  the rest of a T=0 answer (``CardOptions.t0``).
====================  ==========================================================================

Anything else gets the ISO 7816-4 status word: 6E00 unknown class, 6D00 unknown
instruction, 6700 wrong length, 6A86 wrong P1/P2. No input raises: a malformed APDU is
answered like a real card would, and an internal fault answers 6F00.

The ATC, the PIN try counter, the last online ATC and the transaction log live in the
card's memory: :meth:`VirtualCard.reset` (a power cycle) keeps them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType

from ..apdu import Command
from ..errors import ConfigError, LocalProtocolError
from ..tlv import Item, decode, encode
from ..tlv.dol import parse_dol
from .crypto import application_cryptogram, icc_master_key
from .profiles import PPSE_NAME, Application, Profile

__all__ = ["CardOptions", "Status", "VirtualCard"]

log = logging.getLogger(__name__)


class Status(IntEnum):
    """The status words the card answers (ISO 7816-4, EMV Book 3 6.3.5)."""

    OK = 0x9000
    WRONG_LENGTH = 0x6700
    CHANNEL_NOT_SUPPORTED = 0x6881
    SECURE_MESSAGING_NOT_SUPPORTED = 0x6882
    AUTHENTICATION_BLOCKED = 0x6983
    CONDITIONS_NOT_SATISFIED = 0x6985
    WRONG_DATA = 0x6A80
    FILE_NOT_FOUND = 0x6A82
    RECORD_NOT_FOUND = 0x6A83
    WRONG_P1_P2 = 0x6A86
    DATA_NOT_FOUND = 0x6A88
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00


# Cryptogram Information Data (9F27) bits 8-7: the AC type.
AAC, TC, ARQC = 0x00, 0x40, 0x80
_AC_TYPE_BITS = {AAC: 0b00, TC: 0b01, ARQC: 0b10}
_SECOND_AC_NOT_REQUESTED = 0b10
#: Data objects of a GENERATE AC answer, in format 1 order (CID, ATC, AC, IAD).
_GENERATE_AC_TAGS = (b"\x9f\x27", b"\x9f\x36", b"\x9f\x26", b"\x9f\x10")


@dataclass(frozen=True)
class CardOptions:
    """Behaviour switches for one card (the ``sim:`` query string sets them).

    ``t0``: answers to case 3/4 commands come as ``61xx`` (fetch with GET RESPONSE), a
    case 1/2 command with the wrong Le gets ``6Cxx``; ``sw_override``: INS -> status word
    answered instead; ``corrupt_ins``: answers to these INS carry broken TLV (the last byte
    is cut, so a length runs past the end); ``pin_tries``: initial PIN try counter (``0``:
    PIN blocked, VERIFY 6983 and every cryptogram an AAC); ``expired``: the card's dates are
    ten years earlier, so it is past its expiry.
    """

    t0: bool = False
    sw_override: Mapping[int, int] = field(default_factory=dict)
    corrupt_ins: frozenset[int] = frozenset()
    pin_tries: int | None = None
    expired: bool = False

    def __post_init__(self) -> None:
        for ins, sw in self.sw_override.items():
            if not (0 <= ins <= 0xFF and 0 <= sw <= 0xFFFF):
                raise ConfigError(f"sw_override {ins!r}: {sw!r} is not INS (00-FF): SW (0000-FFFF)")
        object.__setattr__(self, "sw_override", MappingProxyType(dict(self.sw_override)))
        object.__setattr__(self, "corrupt_ins", frozenset(self.corrupt_ins))
        if any(not 0 <= ins <= 0xFF for ins in self.corrupt_ins):
            raise ConfigError(f"corrupt_ins {sorted(self.corrupt_ins)} holds a non-byte INS")
        if self.pin_tries is not None and not 0 <= self.pin_tries <= 15:
            raise ConfigError(f"pin_tries must be 0-15, not {self.pin_tries}")


@dataclass(frozen=True, slots=True)
class _Reply:
    data: bytes = b""
    sw: int = Status.OK


def _status(sw: int) -> _Reply:
    return _Reply(b"", sw)


class _AppState:
    """One application with its static data encoded once, plus its persistent log."""

    def __init__(self, app: Application, *, expired: bool) -> None:
        self.app = app
        self.objects = app.data_objects(expired=expired)
        self.records = {
            (record.sfi, record.number): encode(
                [(b"\x70", [(tag, self.objects[tag]) for tag in record.tags])]
            )
            for record in app.records
        }
        self.sfis = {sfi for sfi, _ in self.records}
        crypto = app.cryptogram
        self.master_key = (
            None
            if crypto is None
            else icc_master_key(
                crypto.issuer_master_key,
                app.pan,
                app.pan_sequence,
                crypto.method.master_key_derivation,
            )
        )
        log_entry = self.objects.get(b"\x9f\x4d")
        self.log_sfi = log_entry[0] if log_entry else None
        self.log_size = log_entry[1] if log_entry else 0
        self.log_format = parse_dol(self.objects.get(b"\x9f\x4f", b""))
        self.log: list[bytes] = []  # newest first: record 1 is the last transaction


@dataclass
class _Transaction:
    """What the card remembers between SELECT and the end of one transaction."""

    state: _AppState
    gpo_done: bool = False
    terminal_data: dict[bytes, bytes] = field(default_factory=dict)
    #: CID of the first cryptogram (GPO or first GENERATE AC), None before it.
    first_ac: int | None = None
    #: No more GENERATE AC: the card has given its final answer.
    completed: bool = False
    logged: bool = False


class VirtualCard:
    """An EMV contactless card built from a profile.

    >>> from contactless.emulator.profiles import load_profile
    >>> card = VirtualCard(load_profile("visa"))
    >>> card.process(bytes.fromhex("00A404000E325041592E5359532E444446303100"))[-2:].hex()
    '9000'
    """

    def __init__(self, profile: Profile, *, options: CardOptions | None = None) -> None:
        self.profile = profile
        self.options = options or CardOptions()
        self._apps = [_AppState(app, expired=self.options.expired) for app in profile.applications]
        # Dedicated files in selection order: the PPSE (when present), then the applications.
        self._files: list[tuple[bytes, _AppState | None]] = []
        if profile.ppse:
            self._files.append((PPSE_NAME, None))
        self._files += [(state.app.aid, state) for state in self._apps]
        self._atc = profile.atc
        self._pin_tries = (
            self.options.pin_tries if self.options.pin_tries is not None else profile.pin_try_limit
        )
        self._last_online_atc = profile.last_online_atc
        self._selected: int | None = None
        self._transaction: _Transaction | None = None
        self._pending = b""

    # --- identity and power ----------------------------------------------------------

    @property
    def atr(self) -> bytes:
        """The ATR a PC/SC reader reports for this card (``3B 8n 80 01`` + historical bytes)."""
        return self.profile.atr

    @property
    def ats(self) -> bytes:
        """The ISO 14443-4 Answer To Select (TL T0 TA TB TC + historical bytes)."""
        return self.profile.ats

    @property
    def uid(self) -> bytes:
        """The ISO 14443-3 UID."""
        return self.profile.uid

    @property
    def atc(self) -> int:
        """The Application Transaction Counter (incremented by every GPO)."""
        return self._atc

    @property
    def pin_tries(self) -> int:
        """PIN tries left."""
        return self._pin_tries

    def reset(self) -> None:
        """Power cycle: nothing selected, no transaction; counters and log are kept."""
        self._selected = None
        self._transaction = None
        self._pending = b""

    # --- the APDU handler ------------------------------------------------------------

    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU with response data + SW1 SW2. Never raises for bytes."""
        if not isinstance(apdu, bytes | bytearray | memoryview):
            raise LocalProtocolError(f"an APDU is bytes, not {type(apdu).__name__}")
        try:
            return self._process(bytes(apdu))
        except Exception:  # a card never crashes the terminal: it answers 6F00
            # Only the header is logged: the body may hold a PIN block or card data.
            header = bytes(apdu[:4]).hex().upper()
            log.exception("virtual card failed on APDU %s (%d bytes)", header, len(apdu))
            self._pending = b""
            return Status.NO_PRECISE_DIAGNOSIS.to_bytes(2, "big")

    def _process(self, raw: bytes) -> bytes:
        if len(raw) < 4:
            return Status.WRONG_LENGTH.to_bytes(2, "big")
        ins = raw[1]
        override = self.options.sw_override.get(ins)
        if override is not None:
            return override.to_bytes(2, "big")
        if ins != 0xC0:
            self._pending = b""  # any other command drops an unfetched T=0 answer
        try:
            command = Command.from_bytes(raw)
        except LocalProtocolError:
            return Status.WRONG_LENGTH.to_bytes(2, "big")
        reply = self._dispatch(command)
        data = reply.data
        if data and ins in self.options.corrupt_ins:
            data = data[:-1]  # the outer length now runs one byte past the end
        if self.options.t0 and ins != 0xC0:
            return self._t0_answer(command, data, reply.sw)
        return data + reply.sw.to_bytes(2, "big")

    def _dispatch(self, command: Command) -> _Reply:
        cla = command.cla
        if cla & 0xF0 not in (0x00, 0x80):
            return _status(Status.CLA_NOT_SUPPORTED)
        if cla & 0x0C:
            return _status(Status.SECURE_MESSAGING_NOT_SUPPORTED)
        if cla & 0x03:
            return _status(Status.CHANNEL_NOT_SUPPORTED)
        entry = _COMMANDS.get(command.ins)
        if entry is None:
            return _status(Status.INS_NOT_SUPPORTED)
        expected_cla, handler = entry
        if cla != expected_cla:
            return _status(Status.CLA_NOT_SUPPORTED)
        return handler(self, command)

    # --- T=0 --------------------------------------------------------------------------

    def _t0_answer(self, command: Command, data: bytes, sw: int) -> bytes:
        """Shape an answer the way a T=0 card must (ISO 7816-3/-4): data only when the
        command's Le asked for exactly that much, else 61xx/6Cxx."""
        if not data:
            return sw.to_bytes(2, "big")
        if command.data:
            # Case 3/4: the data waits for GET RESPONSE.
            self._pending = data
            return bytes((0x61, min(len(data), 256) & 0xFF))
        le = command.le
        if le == 256 and len(data) > 256:
            self._pending = data[256:]
            return data[:256] + bytes((0x61, min(len(self._pending), 256) & 0xFF))
        if le != len(data):
            return bytes((0x6C, min(len(data), 256) & 0xFF))
        return data + sw.to_bytes(2, "big")

    def _get_response(self, command: Command) -> _Reply:
        if command.p1 or command.p2:
            return _status(Status.WRONG_P1_P2)
        if command.data:
            return _status(Status.WRONG_LENGTH)
        pending = self._pending
        if not pending:
            return _status(Status.CONDITIONS_NOT_SATISFIED)
        le = command.le or 256
        if le > len(pending):
            return _status(0x6C00 | (min(len(pending), 256) & 0xFF))
        chunk, self._pending = pending[:le], pending[le:]
        if self._pending:
            return _Reply(chunk, 0x6100 | (min(len(self._pending), 256) & 0xFF))
        return _Reply(chunk)

    # --- SELECT -----------------------------------------------------------------------

    def _select(self, command: Command) -> _Reply:
        if command.p1 != 0x04 or command.p2 not in (0x00, 0x02):
            return _status(Status.WRONG_P1_P2)
        name = command.data
        if not 1 <= len(name) <= 16:
            return _status(Status.WRONG_LENGTH)
        matches = [i for i, (df_name, _) in enumerate(self._files) if df_name.startswith(name)]
        if command.p2 == 0x02 and self._selected in matches:
            later = matches[matches.index(self._selected) + 1 :]
            chosen = later[0] if later else None
        else:
            chosen = matches[0] if matches else None
        if chosen is None:
            return _status(Status.FILE_NOT_FOUND)
        self._selected = chosen
        _, state = self._files[chosen]
        if state is None:
            self._transaction = None
            return _Reply(self._ppse_fci())
        self._transaction = _Transaction(state)
        return _Reply(self._application_fci(state))

    def _ppse_fci(self) -> bytes:
        entries: list[Item] = []
        for state in self._apps:
            tags = [b"\x4f", b"\x50", b"\x87", *state.app.ppse_tags]
            entries.append((b"\x61", _present(state.objects, tags)))
        return encode([(b"\x6f", [(b"\x84", PPSE_NAME), (b"\xa5", [(b"\xbf\x0c", entries)])])])

    def _application_fci(self, state: _AppState) -> bytes:
        proprietary = _present(
            state.objects, [b"\x50", b"\x87", b"\x9f\x38", b"\x5f\x2d", b"\x9f\x11", b"\x9f\x12"]
        )
        if state.app.fci_tags:
            proprietary.append((b"\xbf\x0c", _present(state.objects, state.app.fci_tags)))
        return encode([(b"\x6f", [(b"\x84", state.app.aid), (b"\xa5", proprietary)])])

    # --- GET PROCESSING OPTIONS -----------------------------------------------------------

    def _get_processing_options(self, command: Command) -> _Reply:
        if command.p1 or command.p2:
            return _status(Status.WRONG_P1_P2)
        transaction = self._transaction
        if transaction is None or transaction.gpo_done:
            return _status(Status.CONDITIONS_NOT_SATISFIED)
        if not command.data:
            return _status(Status.WRONG_LENGTH)
        if command.data[0] != 0x83:
            return _status(Status.CONDITIONS_NOT_SATISFIED)  # no command template
        nodes = decode(command.data, strict=False)
        if nodes.error is not None or len(nodes) != 1 or nodes[0].padding or nodes.trailing:
            return _status(Status.WRONG_LENGTH)  # the 83 length disagrees with Lc
        app = transaction.state.app
        pdol = parse_dol(app.pdol or b"")
        values = nodes[0].value
        if len(values) != sum(length for _, length in pdol):
            return _status(Status.WRONG_LENGTH)
        terminal_data = _split(pdol, values)
        if app.gpo_cryptogram:
            # A qVSDC card: TTQ byte 1 bit 6 asks for qVSDC (cryptogram in the GPO answer),
            # bit 7 for contactless VSDC (full EMV: GENERATE AC follows); neither -> 6985.
            ttq = terminal_data.get(b"\x9f\x66") or b"\x00"
            quick = bool(ttq[0] & 0x20)
            if not quick and not ttq[0] & 0x40:
                return _status(Status.CONDITIONS_NOT_SATISFIED)
        else:
            quick = False
        if self._atc >= 0xFFFF:
            return _status(Status.CONDITIONS_NOT_SATISFIED)  # ATC exhausted: card blocked
        self._atc += 1
        transaction.gpo_done = True
        transaction.terminal_data = terminal_data
        if app.gpo_format == 1:
            return _Reply(encode([(b"\x80", app.aip + app.afl)]))
        items: list[Item] = [(b"\x82", app.aip), (b"\x94", app.afl)]
        if quick:
            dynamic = self._cryptogram(transaction, self._decide(ARQC, second=False, app=app))
            transaction.completed = True  # qVSDC: no GENERATE AC follows
            objects = transaction.state.objects
            items += [(tag, dynamic.get(tag) or objects[tag]) for tag in app.gpo_tags]
        return _Reply(encode([(b"\x77", items)]))

    # --- READ RECORD --------------------------------------------------------------------

    def _read_record(self, command: Command) -> _Reply:
        sfi, number = command.p2 >> 3, command.p1
        if number == 0 or command.p2 & 0x07 != 0x04 or sfi in (0, 31):
            return _status(Status.WRONG_P1_P2)
        if command.data:
            return _status(Status.WRONG_LENGTH)
        if self._selected is None:
            return _status(Status.CONDITIONS_NOT_SATISFIED)
        state = self._files[self._selected][1]
        if state is None:
            return _status(Status.FILE_NOT_FOUND)  # the PPSE has no records
        if sfi == state.log_sfi:
            if number > len(state.log):
                return _status(Status.RECORD_NOT_FOUND)
            return _Reply(state.log[number - 1])
        if sfi not in state.sfis:
            return _status(Status.FILE_NOT_FOUND)
        record = state.records.get((sfi, number))
        if record is None:
            return _status(Status.RECORD_NOT_FOUND)
        return _Reply(record)

    # --- GET DATA ------------------------------------------------------------------------

    def _get_data(self, command: Command) -> _Reply:
        if command.data:
            return _status(Status.WRONG_LENGTH)
        if self._transaction is None:
            return _status(Status.CONDITIONS_NOT_SATISFIED)
        tag = bytes((command.p1, command.p2))
        value: bytes | None = None
        if tag == b"\x9f\x36":
            value = self._atc.to_bytes(2, "big")
        elif tag == b"\x9f\x17" and self.profile.pin is not None:
            value = bytes((self._pin_tries,))
        elif tag == b"\x9f\x13" and self._last_online_atc is not None:
            value = self._last_online_atc.to_bytes(2, "big")
        elif tag == b"\x9f\x4f":
            value = self._transaction.state.objects.get(tag)
        if value is None:
            return _status(Status.DATA_NOT_FOUND)
        return _Reply(encode([(tag, value)]))

    # --- VERIFY ---------------------------------------------------------------------------

    def _verify(self, command: Command) -> _Reply:
        if command.p1 != 0x00 or command.p2 != 0x80:
            return _status(Status.WRONG_P1_P2)  # only the offline plaintext PIN
        if self._transaction is None:
            return _status(Status.CONDITIONS_NOT_SATISFIED)
        if self.profile.pin is None:
            return _status(Status.DATA_NOT_FOUND)
        if self._pin_tries == 0:
            return _status(Status.AUTHENTICATION_BLOCKED)
        if not command.data:  # no PIN: just report the tries left
            return _status(0x63C0 | self._pin_tries)
        if len(command.data) != 8:
            return _status(Status.WRONG_LENGTH)
        pin = _plaintext_pin(command.data)
        if pin is None:
            return _status(Status.WRONG_DATA)
        if pin == self.profile.pin:
            self._pin_tries = self.profile.pin_try_limit
            return _Reply()
        self._pin_tries -= 1
        return _status(0x63C0 | self._pin_tries)

    # --- GENERATE AC ------------------------------------------------------------------------

    def _generate_ac(self, command: Command) -> _Reply:
        requested = command.p1 & 0xC0
        if command.p2 or command.p1 & 0x2F or requested == 0xC0:
            return _status(Status.WRONG_P1_P2)  # 0x10 (CDA requested) is accepted, not done
        transaction = self._transaction
        if transaction is None or not transaction.gpo_done or transaction.completed:
            return _status(Status.CONDITIONS_NOT_SATISFIED)
        app = transaction.state.app
        second = transaction.first_ac is not None
        if not second and app.cdol1 is not None:
            dol = app.cdol1
        elif second and transaction.first_ac == ARQC and app.cdol2 is not None:
            if requested == ARQC:
                return _status(Status.WRONG_P1_P2)  # the second AC is a TC or an AAC
            dol = app.cdol2
        else:
            return _status(Status.CONDITIONS_NOT_SATISFIED)
        entries = parse_dol(dol)
        if len(command.data) != sum(length for _, length in entries):
            return _status(Status.WRONG_LENGTH)
        # CDOL2 data completes the CDOL1 data (UN, TVR... change; amounts stay).
        transaction.terminal_data.update(_split(entries, command.data))
        values = self._cryptogram(transaction, self._decide(requested, second=second, app=app))
        if second or values[b"\x9f\x27"][0] != ARQC:
            transaction.completed = True
        if second:
            self._last_online_atc = self._atc  # the issuer has seen this transaction
        if app.generate_ac_format == 1:
            body = b"".join(values[tag] for tag in _GENERATE_AC_TAGS)
            return _Reply(encode([(b"\x80", body)]))
        return _Reply(encode([(b"\x77", [(tag, values[tag]) for tag in _GENERATE_AC_TAGS])]))

    def _decide(self, requested: int, *, second: bool, app: Application) -> int:
        """Card risk management, reduced to what a test card needs."""
        if self.profile.pin is not None and self._pin_tries == 0:
            return AAC  # PIN blocked: the card declines
        if not second and requested == TC and not app.offline_approval:
            return ARQC  # an online-only card goes online instead of approving offline
        return requested

    def _cryptogram(self, transaction: _Transaction, answer: int) -> dict[bytes, bytes]:
        """Compute the AC of type ``answer`` (first or second of the transaction);
        returns the values of 9F27, 9F36, 9F26 and 9F10."""
        state = transaction.state
        config = state.app.cryptogram
        if config is None or state.master_key is None:  # ruled out when the profile loads
            raise ConfigError(f"application {state.app.aid.hex().upper()} has no [cryptogram]")
        iad = bytearray(config.iad)
        if transaction.first_ac is None:
            transaction.first_ac = answer
            second_bits = _SECOND_AC_NOT_REQUESTED
        else:
            second_bits = _AC_TYPE_BITS[answer]
        if config.ac_type_offset is not None:
            bits = (second_bits << 6) | (_AC_TYPE_BITS[transaction.first_ac] << 4)
            iad[config.ac_type_offset] = (iad[config.ac_type_offset] & 0x0F) | bits
        cryptogram = application_cryptogram(
            config.method,
            state.master_key,
            terminal_data=transaction.terminal_data,
            aip=state.app.aip,
            atc=self._atc,
            iad=bytes(iad),
            cvr=slice(config.cvr_offset, config.cvr_offset + config.cvr_length),
        )
        values = {
            b"\x9f\x27": bytes((answer,)),
            b"\x9f\x36": self._atc.to_bytes(2, "big"),
            b"\x9f\x26": cryptogram,
            b"\x9f\x10": bytes(iad),
        }
        if not transaction.logged:
            self._log_transaction(transaction, values)
        return values

    def _log_transaction(self, transaction: _Transaction, values: Mapping[bytes, bytes]) -> None:
        state = transaction.state
        if state.log_sfi is None or not state.log_format:
            return
        transaction.logged = True
        record = b""
        for tag, length in state.log_format:
            value = values.get(tag) or transaction.terminal_data.get(tag) or b""
            record += value[-length:].rjust(length, b"\x00")
        state.log.insert(0, record)
        del state.log[state.log_size :]


def _present(objects: Mapping[bytes, bytes], tags: list[bytes] | tuple[bytes, ...]) -> list[Item]:
    """(tag, value) pairs for the tags the application has, in the order given."""
    return [(tag, objects[tag]) for tag in tags if tag in objects]


def _split(entries: list[tuple[bytes, int]], data: bytes) -> dict[bytes, bytes]:
    """Cut DOL-formatted data into its values (the lengths were checked by the caller)."""
    values = {}
    pos = 0
    for tag, length in entries:
        values[tag] = data[pos : pos + length]
        pos += length
    return values


def _plaintext_pin(block: bytes) -> str | None:
    """The PIN in an ISO 9564 format 2 block (2N PP PP .. FF), or None if malformed."""
    control, length = block[0] >> 4, block[0] & 0x0F
    digits = block[1:].hex().upper()
    pin, filler = digits[:length], digits[length:]
    if control != 2 or not 4 <= length <= 12 or not pin.isdigit() or filler.strip("F"):
        return None
    return pin


_Handler = Callable[[VirtualCard, Command], _Reply]

#: INS -> (the CLA it needs, handler). GET RESPONSE is answered in ``_dispatch``.
_COMMANDS: Mapping[int, tuple[int, _Handler]] = MappingProxyType(
    {
        0xA4: (0x00, VirtualCard._select),
        0xA8: (0x80, VirtualCard._get_processing_options),
        0xB2: (0x00, VirtualCard._read_record),
        0xCA: (0x80, VirtualCard._get_data),
        0xAE: (0x80, VirtualCard._generate_ac),
        0x20: (0x00, VirtualCard._verify),
        0xC0: (0x00, VirtualCard._get_response),
    }
)
