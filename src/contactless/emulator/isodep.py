"""The card side of ISO/IEC 14443: type A and B activation (part 3) and the ISO-DEP block
protocol (part 4), sans-I/O.

A :class:`TypeACard` or :class:`TypeBCard` is fed the frames a reader sends (without CRC,
as nfcpy's UDP driver carries them) and answers with a :data:`Reaction`:

* :class:`Reply`: send this frame back;
* :class:`Silence`: send nothing (a real card stays quiet on frames it does not expect);
* :class:`Execute`: a complete command APDU arrived (after chaining); run it, then hand the
  response to :meth:`Picc.answer`, which returns the first block to send. While the APDU
  runs, :meth:`Picc.request_wtx` asks the reader for more time (S(WTX)).

No sockets, clocks or threads live here (the h11 shape): the adapter in
:mod:`contactless.emulator.nfcudp` owns those, and the tests drive these classes frame by
frame. Block rules follow ISO/IEC 14443-4:2008 section 7.5.4 (rules for the PICC).

>>> card = TypeACard(uid=bytes.fromhex("04A1B2C3D4E5F6"), ats=bytes.fromhex("0675778102 80"))
>>> card.receive(b"\\x26")
Reply(frame=b'D\\x00')
"""

from __future__ import annotations

import enum
import functools
import operator
from abc import ABC, abstractmethod
from dataclasses import dataclass

from ..atr import FSC_TABLE, parse_ats
from ..errors import LocalProtocolError

__all__ = [
    "ISO_DEP_SAK",
    "Execute",
    "IsoDepCard",
    "Picc",
    "Reaction",
    "Reply",
    "Silence",
    "TypeACard",
    "TypeBCard",
    "atqa_for_uid",
    "build_ats",
    "fwt_seconds",
]


@dataclass(frozen=True, slots=True)
class Reply:
    """Send ``frame`` to the reader."""

    frame: bytes


@dataclass(frozen=True, slots=True)
class Silence:
    """Send nothing; ``reason`` says why (for debug logs)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Execute:
    """A complete command APDU: run it and pass the response to :meth:`Picc.answer`."""

    apdu: bytes


Reaction = Reply | Silence | Execute

# --- ISO 14443-4 7.1.1.1: the protocol control byte ---------------------------------------
# I-block 000C_CN1B, R-block 101A_C01B, S-block 11XX_C010 (C chaining/ACK-NAK/CID, N NAD,
# B block number, XX 00 DESELECT / 11 WTX).
_I_MASK, _I_BLOCK = 0xE2, 0x02
_R_MASK, _R_BLOCK = 0xE6, 0xA2
_S_MASK, _S_BLOCK = 0xC7, 0xC2
_CHAINING = 0x10
_NAK = 0x10
_CID_FOLLOWS = 0x08
_NAD_FOLLOWS = 0x04
_BLOCK_NUMBER = 0x01
_S_KIND = 0x30
_S_DESELECT = 0x00
_S_WTX = 0x30
#: WTXM is 1..59 (ISO 14443-4 7.3); the two high bits of the INF byte are the power level.
MAX_WTXM = 59
#: PCB, CRC_A (2): the bytes a block adds to its INF field, before any CID byte.
_BLOCK_OVERHEAD = 3
#: One carrier cycle count unit of FWT: 256 * 16 / fc seconds (ISO 14443-4 7.2).
_FWT_UNIT = 256 * 16 / 13.56e6


def fwt_seconds(fwi: int) -> float:
    """Frame waiting time in seconds for ``fwi`` (0..14; 15 is RFU and read as 4)."""
    return _FWT_UNIT * (1 << (4 if fwi >= 15 else fwi))


def _fsd(fsdi: int) -> int:
    # FSDI 9..F are RFU in ISO 14443-4:2008 and read as 256 bytes.
    return FSC_TABLE[min(fsdi, 8)]


class _Phase(enum.Enum):
    RECEIVING = "receiving"  # idle, or collecting a chained command
    EXECUTING = "executing"  # an APDU was handed out; no answer yet
    SENDING = "sending"  # sending a chained response, waiting for R(ACK)


class IsoDepCard:
    """The ISO-DEP (ISO 14443-4) half-duplex block protocol, as the card runs it.

    ``fsd`` is the largest frame the reader accepts (from RATS or ATTRIB), PCB and CRC
    included; ``cid`` the card identifier the reader assigned (0: none). ``fsc`` is the
    card's own frame size: it also sends no larger blocks (a card with small buffers
    chains its answers in small blocks; ISO 14443-4 only asks for at most FSD).
    """

    def __init__(self, *, fsd: int = 256, cid: int = 0, fsc: int = 256) -> None:
        if min(fsd, fsc) < 16:
            raise LocalProtocolError(f"FSD and FSC are at least 16 bytes, got {fsd}, {fsc}")
        self.fsd = fsd
        self.fsc = fsc
        self.cid = cid
        #: Rule A: the PICC block number starts at 1.
        self.block_number = 1
        self.deselected = False
        self._phase = _Phase.RECEIVING
        self._command = bytearray()
        self._pending = b""  # response bytes not yet sent (chaining)
        self._with_cid = False  # answer with a CID byte (the reader sent one)
        self._last_block: bytes | None = None
        self._wtx_pending = False

    @property
    def executing(self) -> bool:
        """True between :class:`Execute` and :meth:`answer`."""
        return self._phase is _Phase.EXECUTING

    @property
    def wtx_pending(self) -> bool:
        """True after :meth:`request_wtx` until the reader's S(WTX) response arrives."""
        return self._wtx_pending

    def max_inf(self) -> int:
        """The most INF bytes one block to the reader may carry."""
        return min(self.fsd, self.fsc) - _BLOCK_OVERHEAD - (1 if self._with_cid else 0)

    # --- frames in ------------------------------------------------------------------------

    def receive(self, frame: bytes) -> Reaction:
        """React to one block from the reader."""
        if not frame:
            return Silence("empty frame")
        pcb = frame[0]
        body = frame[1:]
        if pcb & _CID_FOLLOWS:
            if not body or body[0] & 0x0F != self.cid:
                return Silence("block for another CID")
            body = body[1:]
            self._with_cid = True
        elif self.cid != 0:
            return Silence(f"block without CID, but the card has CID {self.cid}")
        else:
            self._with_cid = False
        if pcb & _I_MASK == _I_BLOCK:
            return self._on_i_block(pcb, body)
        if pcb & _R_MASK == _R_BLOCK:
            return self._on_r_block(pcb)
        if pcb & _S_MASK == _S_BLOCK:
            return self._on_s_block(pcb, body)
        return Silence(f"not an ISO-DEP block: PCB {pcb:02X}")

    def _on_i_block(self, pcb: int, body: bytes) -> Reaction:
        if self._phase is _Phase.EXECUTING:
            return Silence("I-block while the previous command is still running")
        # Rule D: on any I-block, toggle the block number before sending a block.
        self.block_number ^= 1
        self._pending = b""
        self._phase = _Phase.RECEIVING
        if pcb & _NAD_FOLLOWS and not self._command:
            body = body[1:]  # the NAD byte rides only in the first block of a chain
        self._command += body
        if pcb & _CHAINING:
            return self._send(self._r_block(nak=False))
        apdu = bytes(self._command)
        self._command.clear()
        self._phase = _Phase.EXECUTING
        self._last_block = None  # nothing of this exchange has been sent yet
        self._wtx_pending = False
        return Execute(apdu)

    def _on_r_block(self, pcb: int) -> Reaction:
        number = pcb & _BLOCK_NUMBER
        if number == self.block_number:
            # Rule 11: the reader missed our last block; send it again.
            if self._last_block is None:
                return Silence("R-block while busy and nothing sent yet")
            return Reply(self._last_block)
        if pcb & _NAK:
            # Rule 12: R(NAK) with the other block number (nfcpy's presence check).
            if self._phase is _Phase.EXECUTING:
                return Silence("R(NAK) while the command is still running")
            return self._send(self._r_block(nak=False))
        if self._phase is _Phase.SENDING:
            # Rule 13: R(ACK) with the other block number continues our chain.
            self.block_number ^= 1
            return self._send(self._next_chunk())
        return Silence("R(ACK) outside response chaining")

    def _on_s_block(self, pcb: int, body: bytes) -> Reaction:
        kind = pcb & _S_KIND
        if kind == _S_DESELECT:
            self.deselected = True
            self._phase = _Phase.RECEIVING
            self._command.clear()
            self._pending = b""
            return Reply(self._s_block(_S_DESELECT, b""))
        if kind == _S_WTX and self._wtx_pending:
            # The reader granted the extension; keep working.
            self._wtx_pending = False
            return Silence("S(WTX) response")
        return Silence(f"unexpected S-block PCB {pcb:02X}")

    # --- frames out -----------------------------------------------------------------------

    def answer(self, response: bytes) -> bytes:
        """The first block carrying ``response`` (the card's R-APDU) to the reader.

        More blocks follow on R(ACK) when ``response`` exceeds the reader's frame size.
        """
        if self._phase is not _Phase.EXECUTING:
            raise LocalProtocolError("answer() without a command being executed")
        self._pending = bytes(response)
        self._wtx_pending = False
        return self._send_frame(self._next_chunk())

    def request_wtx(self, wtxm: int) -> bytes:
        """An S(WTX) request asking for ``wtxm`` (1..59) times the frame waiting time."""
        if self._phase is not _Phase.EXECUTING:
            raise LocalProtocolError("request_wtx() without a command being executed")
        if not 1 <= wtxm <= MAX_WTXM:
            raise LocalProtocolError(f"WTXM is 1..{MAX_WTXM}, got {wtxm}")
        self._wtx_pending = True
        return self._send_frame(self._s_block(_S_WTX, bytes((wtxm,))))

    def _next_chunk(self) -> bytes:
        size = self.max_inf()
        chunk, self._pending = self._pending[:size], self._pending[size:]
        more = bool(self._pending)
        self._phase = _Phase.SENDING if more else _Phase.RECEIVING
        pcb = _I_BLOCK | (_CHAINING if more else 0) | self.block_number
        return self._frame(pcb, chunk)

    def _r_block(self, *, nak: bool) -> bytes:
        return self._frame(_R_BLOCK | (_NAK if nak else 0) | self.block_number, b"")

    def _s_block(self, kind: int, inf: bytes) -> bytes:
        return self._frame(_S_BLOCK | kind, inf)

    def _frame(self, pcb: int, inf: bytes) -> bytes:
        if self._with_cid:
            return bytes((pcb | _CID_FOLLOWS, self.cid)) + inf
        return bytes((pcb,)) + inf

    def _send(self, frame: bytes) -> Reply:
        return Reply(self._send_frame(frame))

    def _send_frame(self, frame: bytes) -> bytes:
        self._last_block = frame
        return frame


# --- the card as a whole: activation, then ISO-DEP ----------------------------------------


class _State(enum.Enum):
    IDLE = "idle"
    READY = "ready"
    ACTIVE = "active"
    HALT = "halt"
    PROTOCOL = "protocol"  # ISO-DEP activated (after RATS or ATTRIB)


class Picc(ABC):
    """What both card types share: the ISO-DEP layer once activated, and power cycling.

    ``generation`` counts power cycles (field off, or a new reader starting over), so the
    adapter knows when to reset the application behind the card.
    """

    #: nfcpy's name for the bit rate and technology this card answers on.
    brty = "106A"

    def __init__(self, *, fwi: int) -> None:
        self.fwi = fwi
        self.generation = 0
        self._state = _State.IDLE
        self._dep: IsoDepCard | None = None

    @property
    def fwt(self) -> float:
        """The frame waiting time this card announced, in seconds."""
        return fwt_seconds(self.fwi)

    @property
    def state(self) -> str:
        """The activation state: idle, ready, active, halt or protocol."""
        return self._state.value

    @property
    def executing(self) -> bool:
        """True while an APDU handed out by :class:`Execute` awaits its answer."""
        return self._dep is not None and self._dep.executing

    @property
    def wtx_pending(self) -> bool:
        """True while an S(WTX) request waits for the reader's response."""
        return self._dep is not None and self._dep.wtx_pending

    def power_off(self) -> None:
        """The field dropped (nfcpy sends ``RFOFF``): back to IDLE, everything forgotten."""
        self._state = _State.IDLE
        self._dep = None
        self.generation += 1

    def receive(self, frame: bytes) -> Reaction:
        """React to one frame from the reader."""
        if self._is_wake_up(frame):
            return self._receive_activation(frame)
        if self._state is _State.PROTOCOL and self._dep is not None:
            reaction = self._receive_protocol(frame)
            if self._dep.deselected:
                self._state = _State.HALT
                self._dep = None
            return reaction
        return self._receive_activation(frame)

    def answer(self, response: bytes) -> bytes:
        """The first block of the response to the APDU handed out by :class:`Execute`."""
        return self._require_dep("answer").answer(response)

    def request_wtx(self, wtxm: int) -> bytes:
        """An S(WTX) request for ``wtxm`` times the FWT, while an APDU runs."""
        return self._require_dep("request_wtx").request_wtx(wtxm)

    def _require_dep(self, what: str) -> IsoDepCard:
        if self._dep is None:
            raise LocalProtocolError(f"{what}() before ISO-DEP activation")
        return self._dep

    def _receive_protocol(self, frame: bytes) -> Reaction:
        assert self._dep is not None
        return self._dep.receive(frame)

    @abstractmethod
    def _is_wake_up(self, frame: bytes) -> bool:
        """True for the frames that wake this card type (REQA/WUPA, REQB/WUPB)."""

    @abstractmethod
    def _receive_activation(self, frame: bytes) -> Reaction:
        """Handle a frame of this card type's activation (anticollision, RATS, ATTRIB...)."""

    def _start_over(self) -> None:
        # A wake-up from a state other than IDLE/HALT: the reader restarted without the
        # field dropping (a reader process that died sends no RFOFF). Treat it as a power
        # cycle so the application behind the card starts fresh too.
        if self._state not in (_State.IDLE, _State.HALT):
            self.power_off()


def atqa_for_uid(uid: bytes) -> bytes:
    """ATQA (SENS_RES) for a UID: UID size in b8-b7, bit-frame anticollision in b3.

    Bit frame anticollision must be non-zero: nfcpy reads b5-b1 all zero as a Type 1 Tag.
    """
    sizes = {4: 0x00, 7: 0x40, 10: 0x80}
    if len(uid) not in sizes:
        raise LocalProtocolError(f"a type A UID is 4, 7 or 10 bytes, got {len(uid)}")
    return bytes((sizes[len(uid)] | 0x04, 0x00))


#: SAK bit 6 (0x20): the card is ISO 14443-4 compliant; bit 3 (0x04): UID not complete.
ISO_DEP_SAK = 0x20
_CASCADE_BIT = 0x04
_CASCADE_TAG = 0x88
_SEL_CODES = (0x93, 0x95, 0x97)
_NVB_FULL = 0x70
_REQA, _WUPA, _HLTA, _RATS = 0x26, 0x52, 0x50, 0xE0
_PPS = 0xD0


def _bcc(data: bytes) -> int:
    return functools.reduce(operator.xor, data, 0)


def _cascade_levels(uid: bytes) -> list[bytes]:
    """UID CLn for each cascade level (ISO 14443-3 6.5.4): CT + 3 bytes until the last."""
    if len(uid) == 4:
        return [uid]
    if len(uid) == 7:
        return [bytes((_CASCADE_TAG,)) + uid[:3], uid[3:]]
    return [bytes((_CASCADE_TAG,)) + uid[:3], bytes((_CASCADE_TAG,)) + uid[3:6], uid[6:]]


def build_ats(
    *,
    fsci: int,
    fwi: int,
    sfgi: int = 0,
    ta: int = 0x00,
    tc: int = 0x02,
    historical: bytes = b"",
) -> bytes:
    """An ATS (TL first, no CRC) that always carries TA, TB and TC.

    nfcpy 1.0.4 reads FSCI from byte 1 and FWI from byte 3, so TA and TB must both be
    present for it to see the values announced here.
    """
    if not 0 <= fsci <= 8 or not 0 <= fwi <= 14 or not 0 <= sfgi <= 14:
        raise LocalProtocolError(
            f"ATS values out of range: FSCI {fsci} (0..8), FWI {fwi} (0..14), SFGI {sfgi}"
        )
    body = bytes((0x70 | fsci, ta, (fwi << 4) | sfgi, tc)) + historical
    if len(body) + 1 > 254:
        raise LocalProtocolError(f"an ATS is at most 254 bytes, got {len(body) + 1}")
    return bytes((len(body) + 1,)) + body


class TypeACard(Picc):
    """A type A ISO 14443-4 card: REQA/WUPA, anticollision and select by cascade level,
    HLTA, RATS -> ATS, then ISO-DEP.

    ``ats`` is the card's own ATS (TL first, with or without CRC); ``fsci`` and ``fwi``
    override its frame size and waiting time. The ATS sent always carries TA, TB and TC
    (see :func:`build_ats`).
    """

    brty = "106A"

    def __init__(
        self, *, uid: bytes, ats: bytes, fsci: int | None = None, fwi: int | None = None
    ) -> None:
        parsed = parse_ats(ats)
        fsci = min(parsed.fsci, 8) if fsci is None else fsci
        fwi = (4 if parsed.fwi == 15 else parsed.fwi) if fwi is None else fwi
        super().__init__(fwi=fwi)
        self.uid = bytes(uid)
        self.atqa = atqa_for_uid(self.uid)
        self.fsci = fsci
        self.ats = build_ats(
            fsci=fsci,
            fwi=fwi,
            sfgi=0 if parsed.sfgi == 15 else parsed.sfgi,
            ta=parsed.ta or 0x00,
            tc=0x02 if parsed.tc is None else parsed.tc,
            historical=parsed.historical_bytes,
        )
        self._cid_supported = parse_ats(self.ats).cid_supported
        self._levels = _cascade_levels(self.uid)
        self._level = 0
        self._pps_allowed = False

    def _is_wake_up(self, frame: bytes) -> bool:
        return frame in (bytes((_REQA,)), bytes((_WUPA,)))

    def _receive_activation(self, frame: bytes) -> Reaction:
        if self._is_wake_up(frame):
            if self._state is _State.HALT and frame[0] == _REQA:
                return Silence("REQA in HALT (only WUPA wakes a halted card)")
            self._start_over()
            self._state = _State.READY
            self._level = 0
            return Reply(self.atqa)
        if self._state is _State.READY and len(frame) >= 2 and frame[0] in _SEL_CODES:
            return self._anticollision(frame)
        if self._state is _State.ACTIVE:
            if frame == bytes((_HLTA, 0x00)):
                self._state = _State.HALT
                return Silence("HLTA")
            if len(frame) == 2 and frame[0] == _RATS:
                return self._rats(frame[1])
        return Silence(f"frame {frame.hex().upper()} not expected in state {self.state}")

    def _anticollision(self, frame: bytes) -> Reaction:
        level = _SEL_CODES.index(frame[0])
        if level != self._level or level >= len(self._levels):
            return Silence(f"SEL {frame[0]:02X} at cascade level {self._level + 1}")
        uid_cln = self._levels[level] + bytes((_bcc(self._levels[level]),))
        nvb = frame[1]
        if nvb == _NVB_FULL:
            if frame[2:] != uid_cln:
                return Silence("SEL_REQ for another UID")
            if level + 1 < len(self._levels):
                self._level += 1
                return Reply(bytes((_CASCADE_BIT,)))
            self._state = _State.ACTIVE
            return Reply(bytes((ISO_DEP_SAK,)))
        # SDD_REQ: NVB high nibble counts the bytes the reader already knows (2 + known).
        known = (nvb >> 4) - 2
        if nvb & 0x0F or not 0 <= known < 5 or frame[2:] != uid_cln[:known]:
            return Silence(f"SDD_REQ NVB {nvb:02X} not supported or not matching")
        return Reply(uid_cln[known:])

    def _rats(self, param: int) -> Reaction:
        cid = param & 0x0F
        if cid == 15:
            return Silence("RATS with CID 15 (RFU)")
        if cid and not self._cid_supported:
            return Silence(f"RATS assigns CID {cid} but the card does not support CID")
        self._dep = IsoDepCard(fsd=_fsd(param >> 4), cid=cid, fsc=FSC_TABLE[self.fsci])
        self._state = _State.PROTOCOL
        self._pps_allowed = True
        return Reply(self.ats)

    def _receive_protocol(self, frame: bytes) -> Reaction:
        assert self._dep is not None
        # PPS is allowed once, right after the ATS; the card keeps 106 kbit/s and says so.
        if self._pps_allowed and frame and frame[0] & 0xF0 == _PPS:
            self._pps_allowed = False
            if frame[0] & 0x0F != self._dep.cid:
                return Silence("PPS for another CID")
            return Reply(frame[:1])
        self._pps_allowed = False
        return self._dep.receive(frame)


_SENSB_APF = 0x05
_ATTRIB = 0x1D
_ATQB_CODE = 0x50
_ALLB_BIT = 0x08


class TypeBCard(Picc):
    """A type B ISO 14443-4 card: REQB/WUPB -> ATQB, ATTRIB, HLTB, then ISO-DEP.

    ``pupi`` is the 4-byte pseudo-unique identifier nfcpy reports as the card's UID;
    ``fsci`` and ``fwi`` go into the ATQB protocol info, where nfcpy reads them.
    """

    brty = "106B"

    def __init__(
        self, *, pupi: bytes, fsci: int = 8, fwi: int = 8, application_data: bytes = b"\0" * 4
    ) -> None:
        if len(pupi) != 4 or len(application_data) != 4:
            raise LocalProtocolError("PUPI and application data are 4 bytes each")
        if not 0 <= fsci <= 8 or not 0 <= fwi <= 14:
            raise LocalProtocolError(f"FSCI {fsci} (0..8) or FWI {fwi} (0..14) out of range")
        super().__init__(fwi=fwi)
        self.uid = bytes(pupi)
        self.fsci = fsci
        # Protocol info (ISO 14443-3 7.9.4): bit rates (106 kbit/s only), FSCI | protocol
        # type 1 (ISO 14443-4), FWI | ADC 00 | FO (CID supported).
        protocol_info = bytes((0x00, (fsci << 4) | 0x01, (fwi << 4) | 0x01))
        self.atqb = bytes((_ATQB_CODE,)) + self.uid + bytes(application_data) + protocol_info

    def _is_wake_up(self, frame: bytes) -> bool:
        return len(frame) == 3 and frame[0] == _SENSB_APF

    def _afi_matches(self, afi: int) -> bool:
        # ISO 14443-3 table 18: AFI 00 calls every card; otherwise the family (high nibble)
        # must match, and the sub-family too unless the request's is 0.
        mine = self.atqb[5]
        if afi == 0x00:
            return True
        if afi >> 4 and afi >> 4 != mine >> 4:
            return False
        return not afi & 0x0F or afi & 0x0F == mine & 0x0F

    def _receive_activation(self, frame: bytes) -> Reaction:
        if self._is_wake_up(frame):
            wake_up = bool(frame[2] & _ALLB_BIT)
            if self._state is _State.HALT and not wake_up:
                return Silence("REQB in HALT (only WUPB wakes a halted card)")
            if not self._afi_matches(frame[1]):
                return Silence(f"AFI {frame[1]:02X} does not match")
            self._start_over()
            self._state = _State.READY
            return Reply(self.atqb)
        if self._state is _State.READY and len(frame) >= 9 and frame[0] == _ATTRIB:
            if frame[1:5] != self.uid:
                return Silence("ATTRIB for another PUPI")
            cid = frame[8] & 0x0F
            self._dep = IsoDepCard(fsd=_fsd(frame[6] & 0x0F), cid=cid, fsc=FSC_TABLE[self.fsci])
            self._state = _State.PROTOCOL
            return Reply(bytes((cid,)))  # MBLI 0 (no limit announced) | CID
        if self._state is _State.READY and frame == bytes((_ATQB_CODE,)) + self.uid:
            self._state = _State.HALT
            return Reply(b"\x00")  # HLTB answer
        return Silence(f"frame {frame.hex().upper()} not expected in state {self.state}")
