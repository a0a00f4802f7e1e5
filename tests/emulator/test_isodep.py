"""The card side of ISO 14443-3/-4 (contactless.emulator.isodep), frame by frame.

Activation frames are checked against ISO 14443-3 (ATQA bits, cascade tags, BCC, SAK) and
against what nfcpy reads where (FSCI and FWI at fixed ATS positions). The block protocol is
checked two ways: rule by rule, and against nfcpy's own reader-side ISO-DEP initiator
(``nfc.tag.tt4.IsoDepInitiator``) wired to the card in memory, as h11 tests two peers.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

import pytest

from contactless.atr import FSC_TABLE, parse_ats
from contactless.emulator.isodep import (
    ISO_DEP_SAK,
    Execute,
    IsoDepCard,
    Picc,
    Reply,
    Silence,
    TypeACard,
    TypeBCard,
    atqa_for_uid,
    build_ats,
    fwt_seconds,
)
from contactless.errors import LocalProtocolError

nfc_clf = pytest.importorskip("nfc.clf")
tt4 = pytest.importorskip("nfc.tag.tt4")

UID7 = bytes.fromhex("04A1B2C3D4E5F6")
UID4 = bytes.fromhex("1A2B3C4D")
UID10 = bytes.fromhex("0102030405060708090A")
ATS = bytes.fromhex("0675778102 80")  # FSCI 5 (64), FWI 8, historical 80


def bcc(data: bytes) -> int:
    return functools.reduce(operator.xor, data, 0)


def activate(card: TypeACard, rats: bytes = b"\xe0\x80") -> bytes:
    """Run REQA, anticollision and select at every cascade level, then RATS; return ATS."""
    assert card.receive(b"\x26") == Reply(card.atqa)
    for sel in (0x93, 0x95, 0x97):
        reply = card.receive(bytes((sel, 0x20)))
        assert isinstance(reply, Reply)
        sak = card.receive(bytes((sel, 0x70)) + reply.frame)
        assert isinstance(sak, Reply)
        if not sak.frame[0] & 0x04:
            break
    reply = card.receive(rats)
    assert isinstance(reply, Reply)
    return reply.frame


# --- ISO 14443-3 type A activation --------------------------------------------------------


@pytest.mark.parametrize(("uid", "atqa"), [(UID4, "0400"), (UID7, "4400"), (UID10, "8400")])
def test_atqa_encodes_uid_size_and_is_not_a_type_1_tag(uid: bytes, atqa: str) -> None:
    value = atqa_for_uid(uid)
    assert value.hex().upper() == atqa
    assert value[0] & 0x1F != 0  # nfcpy reads b5..b1 = 0 as a Type 1 Tag


def test_atqa_rejects_a_uid_of_another_size() -> None:
    with pytest.raises(LocalProtocolError, match="4, 7 or 10"):
        atqa_for_uid(b"\x01\x02\x03")


def test_seven_byte_uid_cascades_with_ct_and_bcc() -> None:
    card = TypeACard(uid=UID7, ats=ATS)
    assert card.receive(b"\x26") == Reply(bytes.fromhex("4400"))
    cl1 = bytes.fromhex("88 04A1B2")
    assert card.receive(b"\x93\x20") == Reply(cl1 + bytes((bcc(cl1),)))
    # SAK with the cascade bit: the UID is not complete yet.
    assert card.receive(b"\x93\x70" + cl1 + bytes((bcc(cl1),))) == Reply(b"\x04")
    cl2 = bytes.fromhex("C3D4E5F6")
    assert card.receive(b"\x95\x20") == Reply(cl2 + bytes((bcc(cl2),)))
    assert card.receive(b"\x95\x70" + cl2 + bytes((bcc(cl2),))) == Reply(bytes((ISO_DEP_SAK,)))
    assert card.state == "active"


def test_ten_byte_uid_needs_three_cascade_levels() -> None:
    card = TypeACard(uid=UID10, ats=ATS)
    card.receive(b"\x26")
    frames = []
    for sel in (0x93, 0x95, 0x97):
        reply = card.receive(bytes((sel, 0x20)))
        assert isinstance(reply, Reply)
        frames.append(reply.frame)
        card.receive(bytes((sel, 0x70)) + reply.frame)
    assert [frame[:4].hex().upper() for frame in frames] == ["88010203", "88040506", "0708090A"]
    assert all(frame[4] == bcc(frame[:4]) for frame in frames)
    assert card.state == "active"


def test_sdd_req_with_known_bytes_returns_the_rest() -> None:
    card = TypeACard(uid=UID4, ats=ATS)
    card.receive(b"\x52")
    full = UID4 + bytes((bcc(UID4),))
    # NVB 0x40: two bytes of UID CL1 are known, the card sends the remaining three.
    assert card.receive(b"\x93\x40" + full[:2]) == Reply(full[2:])


def test_select_for_another_uid_is_ignored() -> None:
    card = TypeACard(uid=UID4, ats=ATS)
    card.receive(b"\x26")
    assert isinstance(card.receive(b"\x93\x70" + bytes(5)), Silence)
    assert card.state == "ready"


def test_halted_card_wakes_only_on_wupa() -> None:
    card = TypeACard(uid=UID4, ats=ATS)
    card.receive(b"\x26")
    card.receive(b"\x93\x70" + UID4 + bytes((bcc(UID4),)))
    assert isinstance(card.receive(b"\x50\x00"), Silence)
    assert card.state == "halt"
    assert isinstance(card.receive(b"\x26"), Silence)
    assert card.receive(b"\x52") == Reply(card.atqa)


def test_rats_answers_an_ats_with_ta_tb_tc_where_nfcpy_reads_them() -> None:
    card = TypeACard(uid=UID7, ats=ATS)
    ats = activate(card)
    assert ats == ATS  # already carries TA, TB and TC
    # nfcpy 1.0.4 (Type4ATag): FSCI = ats[1] & 0x0F, FWI = ats[3] >> 4.
    assert (ats[1] & 0x0F, ats[3] >> 4) == (5, 8)
    assert card.state == "protocol"


def test_fsci_and_fwi_overrides_keep_historical_bytes() -> None:
    card = TypeACard(uid=UID7, ats=bytes.fromhex("0A78807002 4A434F5034"), fsci=0, fwi=5)
    parsed = parse_ats(activate(card))
    assert (parsed.fsci, parsed.fsc, parsed.fwi) == (0, 16, 5)
    assert parsed.historical_bytes == bytes.fromhex("4A434F5034")
    assert card.fwt == pytest.approx(fwt_seconds(5))


def test_ats_without_ta_and_tb_gets_them() -> None:
    # T0 = 0x05 announces no interface bytes: the ATS sent still has TA, TB, TC.
    card = TypeACard(uid=UID4, ats=bytes.fromhex("0205"))
    ats = activate(card)
    assert ats[1] & 0x70 == 0x70
    assert parse_ats(ats).fsci == 5


def test_build_ats_checks_ranges() -> None:
    assert build_ats(fsci=8, fwi=14).hex().upper() == "057800E002"
    with pytest.raises(LocalProtocolError, match="FSCI 9"):
        build_ats(fsci=9, fwi=4)


def test_rats_with_cid_15_is_ignored() -> None:
    card = TypeACard(uid=UID4, ats=ATS)
    card.receive(b"\x26")
    card.receive(b"\x93\x70" + UID4 + bytes((bcc(UID4),)))
    assert isinstance(card.receive(b"\xe0\x8f"), Silence)


def test_pps_is_answered_once_after_rats() -> None:
    card = TypeACard(uid=UID4, ats=ATS)
    activate(card)
    assert card.receive(b"\xd0\x11\x00") == Reply(b"\xd0")


def test_power_off_and_a_new_reqa_start_over() -> None:
    card = TypeACard(uid=UID4, ats=ATS)
    activate(card)
    before = card.generation
    card.power_off()
    assert card.state == "idle"
    assert card.generation == before + 1
    activate(card)
    # A reader that died without RFOFF: its successor's REQA power-cycles the card.
    assert card.receive(b"\x26") == Reply(card.atqa)
    assert card.generation == before + 2


# --- ISO-DEP block rules (ISO 14443-4 7.5.4) ----------------------------------------------


def test_first_i_block_toggles_the_block_number_from_one() -> None:
    dep = IsoDepCard()
    assert dep.block_number == 1
    assert dep.receive(b"\x02\x00\xa4\x04\x00") == Execute(b"\x00\xa4\x04\x00")
    assert dep.block_number == 0
    assert dep.answer(b"\x90\x00") == b"\x02\x90\x00"


def test_chained_command_is_acked_then_executed() -> None:
    dep = IsoDepCard()
    assert dep.receive(b"\x12\x00\xa4") == Reply(b"\xa2")  # R(ACK), block 0
    assert dep.receive(b"\x03\x04\x00") == Execute(b"\x00\xa4\x04\x00")
    assert dep.answer(b"\x90\x00") == b"\x03\x90\x00"


def test_chained_response_continues_on_ack_with_the_other_number() -> None:
    dep = IsoDepCard(fsd=16)  # 13 INF bytes per block
    dep.receive(b"\x02\x00\xb2\x01\x0c\x00")
    response = bytes(range(30)) + b"\x90\x00"
    first = dep.answer(response)
    assert first == b"\x12" + response[:13]  # I(0) with chaining
    second = dep.receive(b"\xa3")  # R(ACK) block 1
    assert second == Reply(b"\x13" + response[13:26])
    third = dep.receive(b"\xa2")
    assert third == Reply(b"\x02" + response[26:])
    assert not dep.executing


def test_nak_with_current_number_retransmits_the_last_block() -> None:
    dep = IsoDepCard()
    dep.receive(b"\x02\x00\xca\x9f\x36\x00")
    sent = dep.answer(b"\x9f\x36\x02\x00\x01\x90\x00")
    assert dep.receive(b"\xb2") == Reply(sent)  # R(NAK) block 0 = current


def test_nak_with_other_number_is_answered_by_ack() -> None:
    dep = IsoDepCard()
    dep.receive(b"\x02\x00\x84\x00\x00\x08")
    dep.answer(b"\x90\x00")
    # nfcpy's presence check: R(NAK) with its next block number.
    assert dep.receive(b"\xb3") == Reply(b"\xa2")


def test_r_block_while_executing_before_any_block_is_silence() -> None:
    dep = IsoDepCard()
    dep.receive(b"\x02\x00\xa4\x04\x00")
    assert isinstance(dep.receive(b"\xb2"), Silence)
    assert dep.executing


def test_wtx_is_requested_acknowledged_and_retransmitted() -> None:
    dep = IsoDepCard()
    dep.receive(b"\x02\x80\xae\x80\x00")
    wtx = dep.request_wtx(3)
    assert wtx == b"\xf2\x03"
    assert dep.wtx_pending
    assert dep.receive(b"\xb2") == Reply(wtx)  # the reader missed it: again
    assert isinstance(dep.receive(b"\xf2\x03"), Silence)  # the reader's S(WTX) response
    assert not dep.wtx_pending
    assert dep.answer(b"\x90\x00") == b"\x02\x90\x00"


@pytest.mark.parametrize("wtxm", [0, 60])
def test_wtxm_out_of_range_is_refused(wtxm: int) -> None:
    dep = IsoDepCard()
    dep.receive(b"\x02\x00\xa4\x04\x00")
    with pytest.raises(LocalProtocolError, match="WTXM"):
        dep.request_wtx(wtxm)


def test_answer_without_a_command_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError, match="without a command"):
        IsoDepCard().answer(b"\x90\x00")


def test_deselect_halts_the_card() -> None:
    card = TypeACard(uid=UID4, ats=ATS)
    activate(card)
    assert card.receive(b"\xc2") == Reply(b"\xc2")
    assert card.state == "halt"
    assert isinstance(card.receive(b"\x02\x00\xa4\x04\x00"), Silence)


def test_cid_is_checked_and_echoed() -> None:
    dep = IsoDepCard(cid=3)
    assert isinstance(dep.receive(b"\x02\x00\xa4\x04\x00"), Silence)  # no CID: not for us
    assert isinstance(dep.receive(b"\x0a\x04\x00\xa4\x04\x00"), Silence)  # CID 4
    assert dep.receive(b"\x0a\x03\x00\xa4\x04\x00") == Execute(b"\x00\xa4\x04\x00")
    assert dep.answer(b"\x90\x00") == b"\x0a\x03\x90\x00"


def test_nad_is_stripped_from_the_first_block() -> None:
    dep = IsoDepCard()
    assert dep.receive(b"\x06\x21\x00\xa4\x04\x00") == Execute(b"\x00\xa4\x04\x00")


def test_frame_size_below_16_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="at least 16"):
        IsoDepCard(fsd=8)


# --- type B -------------------------------------------------------------------------------


def test_type_b_atqb_has_fsci_and_fwi_where_nfcpy_reads_them() -> None:
    card = TypeBCard(pupi=UID4, fsci=2, fwi=6)
    reply = card.receive(b"\x05\x00\x10")  # nfcpy's SENSB_REQ
    assert isinstance(reply, Reply)
    atqb = reply.frame
    assert len(atqb) == 12 and atqb[0] == 0x50 and atqb[1:5] == UID4
    # nfcpy 1.0.4 (Type4BTag): FSCI = sensb_res[10] >> 4, FWI = sensb_res[11] >> 4.
    assert (atqb[10] >> 4, atqb[11] >> 4) == (2, 6)
    assert atqb[10] & 0x0F == 0x01  # ISO 14443-4 compliant


def test_type_b_attrib_hltb_and_afi() -> None:
    card = TypeBCard(pupi=UID4, application_data=bytes.fromhex("21000000"))
    assert isinstance(card.receive(b"\x05\x30\x00"), Silence)  # another family
    assert isinstance(card.receive(b"\x05\x20\x00"), Reply)  # family 2, any sub-family
    assert isinstance(card.receive(b"\x1d" + bytes(4) + b"\x00\x08\x01\x00"), Silence)
    assert card.receive(b"\x1d" + UID4 + b"\x00\x08\x01\x00") == Reply(b"\x00")
    assert card.state == "protocol"
    assert card.receive(b"\x02\x00\xa4\x04\x00") == Execute(b"\x00\xa4\x04\x00")


def test_type_b_halt_needs_wupb() -> None:
    card = TypeBCard(pupi=UID4)
    card.receive(b"\x05\x00\x00")
    assert card.receive(b"\x50" + UID4) == Reply(b"\x00")
    assert isinstance(card.receive(b"\x05\x00\x00"), Silence)
    assert isinstance(card.receive(b"\x05\x00\x08"), Reply)  # WUPB


# --- against nfcpy's own ISO-DEP initiator ------------------------------------------------


class WiredFrontend:
    """Stands in for nfcpy's ContactlessFrontend: ``exchange`` hands each frame to the
    card and returns its answer, as the UDP driver would, or raises nfcpy's TimeoutError
    where the card stays silent (or a lost frame is simulated)."""

    def __init__(
        self,
        card: Picc,
        application: Callable[[bytes], bytes],
        *,
        wtx_rounds: int = 0,
        lose: frozenset[int] = frozenset(),
    ) -> None:
        self.card = card
        self.application = application
        self.wtx_rounds = wtx_rounds
        self.lose = lose
        self.sent: list[bytes] = []  # frames from the reader
        self.answered: list[bytes] = []  # frames from the card that arrived
        self._pending: bytes | None = None
        self._wtx_left = 0
        self._count = 0

    def exchange(self, data: bytes | bytearray, timeout: float) -> bytearray:
        frame = bytes(data)
        self.sent.append(frame)
        reaction = self.card.receive(frame)
        if isinstance(reaction, Execute):
            self._pending = self.application(reaction.apdu)
            self._wtx_left = self.wtx_rounds
            answer = self._next_answer()
        elif isinstance(reaction, Reply):
            answer = reaction.frame
        elif self.card.executing and not self.card.wtx_pending and self._pending is not None:
            answer = self._next_answer()  # the reader granted the WTX
        else:
            raise nfc_clf.TimeoutError("silence")
        self._count += 1
        if self._count in self.lose:
            raise nfc_clf.TimeoutError("lost")
        self.answered.append(answer)
        return bytearray(answer)

    def _next_answer(self) -> bytes:
        if self._wtx_left:
            self._wtx_left -= 1
            return self.card.request_wtx(1)
        assert self._pending is not None
        response, self._pending = self._pending, None
        return self.card.answer(response)


def echo_times(n: int) -> Callable[[bytes], bytes]:
    return lambda apdu: apdu * n + b"\x90\x00"


def initiator(wired: WiredFrontend, fsc: int, fwi: int = 8) -> Any:
    return tt4.IsoDepInitiator(wired, fsc, fwt_seconds(fwi))


def activated(fsci: int = 8) -> TypeACard:
    card = TypeACard(uid=UID7, ats=ATS, fsci=fsci)
    activate(card)
    return card


@pytest.mark.parametrize("fsci", [0, 2, 5, 8])
def test_nfcpy_chains_both_ways_at_every_frame_size(fsci: int) -> None:
    card = activated(fsci)
    wired = WiredFrontend(card, echo_times(3))
    dep = initiator(wired, FSC_TABLE[fsci])
    command = bytes(range(256))[:230]
    response = dep.exchange(bytearray(command))
    assert bytes(response) == command * 3 + b"\x90\x00"
    limit = FSC_TABLE[fsci] - 3  # PCB + INF within FSC minus the 2 CRC bytes
    assert all(len(frame) <= limit + 1 for frame in wired.sent + wired.answered)
    if fsci < 8:
        assert any(frame[0] & 0x10 for frame in wired.sent if frame[0] & 0xE2 == 0x02)
    assert any(frame[0] & 0x10 for frame in wired.answered if frame[0] & 0xE2 == 0x02)


def test_nfcpy_sequence_of_commands_keeps_block_numbers_in_step() -> None:
    card = activated()
    wired = WiredFrontend(card, echo_times(1))
    dep = initiator(wired, 256)
    for size in (5, 300, 1, 254, 20):
        command = bytes((size % 256,)) * size
        assert bytes(dep.exchange(bytearray(command))) == command + b"\x90\x00"


def test_nfcpy_presence_check_gets_an_ack() -> None:
    card = activated()
    wired = WiredFrontend(card, echo_times(1))
    dep = initiator(wired, 256)
    dep.exchange(bytearray(b"\x00\xa4\x04\x00"))
    dep.exchange(None)
    assert wired.sent[-1] == b"\xb3"  # R(NAK) with nfcpy's next block number (1)
    assert wired.answered[-1] == b"\xa2"  # R(ACK) with the card's current number (0)


def test_nfcpy_follows_wtx_requests() -> None:
    card = activated()
    wired = WiredFrontend(card, echo_times(2), wtx_rounds=3)
    dep = initiator(wired, 256)
    assert (
        bytes(dep.exchange(bytearray(b"\x80\xae\x80\x00"))) == b"\x80\xae\x80\x00" * 2 + b"\x90\x00"
    )
    assert wired.answered.count(b"\xf2\x01") == 3
    assert wired.sent.count(b"\xf2\x01") == 3  # nfcpy echoes each request as its response


@pytest.mark.parametrize("lost", [1, 2, 3, 5])
def test_nfcpy_recovers_lost_blocks_by_nak(lost: int) -> None:
    command = bytes(range(40))
    runs = []
    for lose in (frozenset(), frozenset({lost})):
        wired = WiredFrontend(activated(fsci=0), echo_times(2), lose=lose)
        dep = initiator(wired, 16)
        assert bytes(dep.exchange(bytearray(command))) == command * 2 + b"\x90\x00"
        runs.append(wired.sent)
    # One more frame from the reader: its R(NAK) (or repeated R(ACK)) for the lost block.
    assert len(runs[1]) == len(runs[0]) + 1
    assert runs[1][lost] in (runs[1][lost - 1], bytes((0xB2 | runs[1][lost][0] & 1,)))


def test_nfcpy_gives_up_on_a_silent_card_with_its_timeout_error() -> None:
    card = activated()
    wired = WiredFrontend(card, echo_times(1), lose=frozenset(range(1, 20)))
    dep = initiator(wired, 256)
    with pytest.raises(tt4.Type4TagCommandError) as caught:
        dep.exchange(bytearray(b"\x00\xa4\x04\x00"))
    assert caught.value.errno == 0  # nfc.tag.TIMEOUT_ERROR
