"""Card sessions: 61xx GET RESPONSE loops, 6Cxx re-issue, deadlines, tracers, short answers.

The card side is a tiny scripted Transport: each step is (command the session must send,
bytes the card answers), written out by hand in ISO 7816-4 T=0 terms.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from contactless.apdu import Command
from contactless.errors import (
    CardRemoved,
    LocalProtocolError,
    RemoteProtocolError,
    TransportTimeout,
)
from contactless.session import MAX_GET_RESPONSE_ROUNDS, Card
from contactless.tlv import decode, encode
from contactless.transport.base import ExchangeEvent, Transport

HANG_BOUND = 5.0

SELECT_PPSE = Command(0x00, 0xA4, 0x04, 0x00, b"2PAY.SYS.DDF01")  # case 3, as T=0 sends it
# The PPSE's FCI: 6F { 84 "2PAY.SYS.DDF01", A5 { BF0C { 61 { 4F A0000000031010,
# 50 "VISA DEBIT", 87 01 } } } }: 49 (0x31) bytes.
PPSE_FCI = bytes.fromhex(
    "6F2F840E325041592E5359532E4444463031A51DBF0C1A61184F07A0000000031010"
    "500A56495341204445424954870101"
)
# A record of SFI 1: 70 { 5F24 expiry, 5F25 effective date, 9F07 AUC }: 19 (0x13) bytes.
RECORD = encode(
    [("70", [("5F24", b"\x27\x12\x31"), ("5F25", b"\x22\x01\x01"), ("9F07", b"\xff\x00")])]
)
READ_RECORD_1_1 = Command(0x00, 0xB2, 0x01, 0x0C, le=256)


class ScriptedCard(Transport):
    """Checks each command against the script and plays back the scripted answer."""

    enforces_deadline = True

    def __init__(self, script: list[tuple[str, str]], *, delay: float = 0.0) -> None:
        super().__init__("script:")
        self.script = [(bytes.fromhex(c), bytes.fromhex(r)) for c, r in script]
        self.sent: list[bytes] = []
        self.delay = delay

    def _transmit(self, apdu: bytes, timeout: float) -> bytes:
        self.sent.append(apdu)
        assert self.script, f"unexpected extra command {apdu.hex().upper()}"
        expected, answer = self.script.pop(0)
        assert apdu == expected, f"sent {apdu.hex().upper()}, expected {expected.hex().upper()}"
        if self.delay:
            time.sleep(min(self.delay, timeout))
        return answer

    def _card_present(self) -> bool:
        return True


class EndlessMoreData(ScriptedCard):
    """A broken card that answers every command with 61 10 and 16 bytes."""

    def __init__(self, *, delay: float = 0.0) -> None:
        super().__init__([], delay=delay)

    def _transmit(self, apdu: bytes, timeout: float) -> bytes:
        self.sent.append(apdu)
        if self.delay:
            time.sleep(min(self.delay, timeout))
        return bytes(16) + b"\x61\x10"


def session(script: list[tuple[str, str]], **kw: float) -> tuple[Card, ScriptedCard]:
    transport = ScriptedCard(script)
    transport.connect()
    return Card(transport, **kw), transport


def test_vectors_are_well_formed() -> None:
    assert len(PPSE_FCI) == 0x31 and decode(PPSE_FCI).trailing == b""
    assert len(RECORD) == 0x13 and decode(RECORD)[0].tag_hex == "70"


def test_plain_answer_passes_through() -> None:
    card, transport = session([(SELECT_PPSE.hex(), PPSE_FCI.hex() + "9000")])
    response = card.exchange(SELECT_PPSE)
    assert response.data == PPSE_FCI and response.sw == 0x9000
    assert card.apdu_count == 1 and not transport.script


def test_61xx_is_followed_by_get_response_with_le_sw2() -> None:
    card, transport = session(
        [(SELECT_PPSE.hex(), "6131"), ("00C0000031", PPSE_FCI.hex() + "9000")]
    )
    response = card.exchange(SELECT_PPSE)
    assert response.data == PPSE_FCI and response.ok
    assert card.apdu_count == 2 and not transport.script


def test_61xx_chains_accumulate_data_in_order() -> None:
    first, second, third = PPSE_FCI[:16], PPSE_FCI[16:40], PPSE_FCI[40:]
    card, _ = session(
        [
            (SELECT_PPSE.hex(), first.hex() + "6118"),  # some readers deliver data with 61xx
            ("00C0000018", second.hex() + "6109"),
            ("00C0000009", third.hex() + "9000"),
        ]
    )
    response = card.exchange(SELECT_PPSE)
    assert response.data == PPSE_FCI and response.ok and card.apdu_count == 3


def test_6100_asks_for_256_bytes_and_the_final_sw_is_kept() -> None:
    card, _ = session([(SELECT_PPSE.hex(), "6100"), ("00C0000000", "AABB6283")])
    response = card.exchange(SELECT_PPSE)
    assert response.data == b"\xaa\xbb" and response.sw == 0x6283


def test_get_response_is_interindustry_after_a_proprietary_command() -> None:
    gpo = Command(0x80, 0xA8, 0x00, 0x00, bytes.fromhex("8300"))
    card, _ = session([(gpo.hex(), "6114"), ("00C0000014", "80" + "12" + "00" * 18 + "9000")])
    assert card.exchange(gpo).ok


def test_get_response_keeps_the_logical_channel() -> None:
    select_on_channel_1 = Command(0x01, 0xA4, 0x04, 0x00, b"2PAY.SYS.DDF01")
    card, _ = session([(select_on_channel_1.hex(), "6102"), ("01C0000002", "6F009000")])
    assert card.exchange(select_on_channel_1).data == b"\x6f\x00"


def test_endless_61xx_is_a_remote_protocol_error_after_bounded_rounds() -> None:
    transport = EndlessMoreData()
    transport.connect()
    card = Card(transport)
    with pytest.raises(RemoteProtocolError, match=r"61.* to SELECT 325041592E5359532E") as info:
        card.exchange(SELECT_PPSE)
    assert str(MAX_GET_RESPONSE_ROUNDS) in str(info.value)
    assert card.apdu_count == MAX_GET_RESPONSE_ROUNDS + 1


def test_6cxx_reissues_the_command_with_le_sw2() -> None:
    card, transport = session(
        [
            (READ_RECORD_1_1.hex(), "6C" + f"{len(RECORD):02X}"),
            (f"00B2010C{len(RECORD):02X}", RECORD.hex() + "9000"),
        ]
    )
    assert READ_RECORD_1_1.hex() == "00B2010C00"
    response = card.exchange(READ_RECORD_1_1)
    assert response.data == RECORD and response.ok and card.apdu_count == 2
    assert not transport.script


def test_6c00_means_le_256() -> None:
    short_le = Command(0x00, 0xB2, 0x01, 0x0C, le=16)
    card, _ = session([("00B2010C10", "6C00"), ("00B2010C00", "00" * 256 + "9000")])
    assert len(card.exchange(short_le).data) == 256


def test_6cxx_then_61xx_is_handled_in_one_exchange() -> None:
    card, _ = session(
        [
            ("00B2010C00", "6C13"),
            ("00B2010C13", RECORD[:10].hex() + f"61{len(RECORD) - 10:02X}"),
            (f"00C00000{len(RECORD) - 10:02X}", RECORD[10:].hex() + "9000"),
        ]
    )
    assert card.exchange(READ_RECORD_1_1).data == RECORD


def test_6cxx_twice_is_a_remote_protocol_error() -> None:
    card, _ = session([("00B2010C00", "6C1D"), ("00B2010C1D", "6C1E")])
    with pytest.raises(RemoteProtocolError, match=r"6C1E .* READ RECORD SFI 1 record 1 again"):
        card.exchange(READ_RECORD_1_1)
    assert card.apdu_count == 2


def test_error_status_words_are_returned_not_raised() -> None:
    card, _ = session([(SELECT_PPSE.hex(), "6A82")])
    response = card.exchange(SELECT_PPSE)
    assert response.sw == 0x6A82 and response.data == b""


@pytest.mark.parametrize("answer", ["", "90"])
def test_a_response_without_a_status_word_names_the_command(answer: str) -> None:
    card, _ = session([("00B2020C00", answer)])
    with pytest.raises(RemoteProtocolError, match="READ RECORD SFI 1 record 2") as info:
        card.exchange(Command(0x00, 0xB2, 0x02, 0x0C, le=256))
    assert f"{len(answer) // 2} byte(s)" in str(info.value)


def test_transmit_raw_does_no_follow_up() -> None:
    card, _ = session([(SELECT_PPSE.hex(), "6131")])
    assert card.transmit_raw(SELECT_PPSE.to_bytes()) == b"\x61\x31"
    assert card.apdu_count == 1


def test_tracers_pass_through_and_see_follow_up_commands() -> None:
    card, _ = session([(SELECT_PPSE.hex(), "6131"), ("00C0000031", PPSE_FCI.hex() + "9000")])
    events: list[ExchangeEvent] = []
    card.add_tracer(events.append)
    card.exchange(SELECT_PPSE)
    assert [e.command.hex().upper() for e in events] == [SELECT_PPSE.hex(), "00C0000031"]
    assert events[1].response == PPSE_FCI + b"\x90\x00"
    assert all(e.seconds >= 0 and e.error is None for e in events)
    card.remove_tracer(events.append)
    assert card.transport._tracers == []


def test_card_exposes_atr_and_uid_of_its_transport() -> None:
    card, transport = session([])
    transport.atr, transport.uid = b"\x3b\x80\x80\x01\x01", b"\x04\x01\x02\x03"
    assert card.atr == b"\x3b\x80\x80\x01\x01" and card.uid == b"\x04\x01\x02\x03"


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan")])
def test_bad_timeouts_are_local_errors(timeout: float) -> None:
    with pytest.raises(LocalProtocolError):
        Card(ScriptedCard([]), timeout=timeout)
    card, _ = session([])
    with pytest.raises(LocalProtocolError):
        card.exchange(SELECT_PPSE, timeout=timeout)


# --- deadlines ----------------------------------------------------------------------------


class Unanswering(Transport):
    """A reader whose driver call never returns (and knows nothing of timeouts)."""

    def __init__(self) -> None:
        super().__init__("stuck:")
        self.release = threading.Event()

    def _transmit(self, apdu: bytes, timeout: float) -> bytes:
        self.release.wait(60)
        return b"\x90\x00"

    def _card_present(self) -> bool:
        return True


@pytest.fixture
def stuck() -> Iterator[Unanswering]:
    transport = Unanswering()
    transport.connect()
    yield transport
    transport.release.set()


def test_a_blocking_transport_gives_transport_timeout(stuck: Unanswering) -> None:
    card = Card(stuck, timeout=0.2)
    start = time.monotonic()
    with pytest.raises(TransportTimeout, match="SELECT 325041592E5359532E4444463031"):
        card.exchange(SELECT_PPSE)
    assert time.monotonic() - start < HANG_BOUND


def test_the_deadline_covers_the_whole_get_response_loop() -> None:
    # Each answer takes 30 ms and the card never stops asking for GET RESPONSE: the
    # exchange must end by its deadline, long before the round limit is reached.
    transport = EndlessMoreData(delay=0.03)
    transport.connect()
    card = Card(transport, timeout=0.3)
    start = time.monotonic()
    with pytest.raises(TransportTimeout, match="SELECT 325041592E5359532E4444463031"):
        card.exchange(SELECT_PPSE)
    assert time.monotonic() - start < HANG_BOUND
    assert 1 < card.apdu_count < MAX_GET_RESPONSE_ROUNDS


def test_per_call_timeout_overrides_the_session_default(stuck: Unanswering) -> None:
    card = Card(stuck, timeout=60)
    start = time.monotonic()
    with pytest.raises(TransportTimeout):
        card.exchange(SELECT_PPSE, timeout=0.2)
    assert time.monotonic() - start < HANG_BOUND


def test_transport_errors_propagate_unchanged() -> None:
    class Removed(ScriptedCard):
        def _transmit(self, apdu: bytes, timeout: float) -> bytes:
            raise CardRemoved("card removed during READ RECORD SFI 1 record 1")

    transport = Removed([])
    transport.connect()
    with pytest.raises(CardRemoved, match="READ RECORD SFI 1 record 1"):
        Card(transport).exchange(READ_RECORD_1_1)
