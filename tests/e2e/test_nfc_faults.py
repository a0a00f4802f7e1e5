"""Hard cases through nfcpy's UDP driver: chaining, slow cards (S(WTX)), cards that vanish,
freeze, lose blocks or send garbage, and readers with no card at all.

Timing is never waited out with sleeps: readiness comes from the emulator's own output,
failures from the reader stack's deadlines. The only wall-clock assertions are the
issue's anti-hang bounds (a dead card is reported within 1 s at a small FWI).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from nfc_conftest import (
    emulated_card,
    frames_received_by_nfcpy,
    frames_sent_by_nfcpy,
    start_card,
    terminal_config,
)

from contactless import tlv
from contactless.commands.read import read
from contactless.emulator.card import VirtualCard
from contactless.emulator.isodep import Reaction, Reply, TypeACard
from contactless.emulator.nfcudp import NfcUdpCard
from contactless.emulator.profiles import load_profile
from contactless.emv.driver import run
from contactless.emv.flow import read_flow
from contactless.emv.terminal import TerminalConfig
from contactless.errors import (
    AtrError,
    CardRemoved,
    NoCard,
    TransportTimeout,
)
from contactless.session import Card
from contactless.transport import nfc_logging
from contactless.transport import open as open_transport
from contactless.transport.base import ExchangeEvent

nfc = pytest.importorskip("nfc")
pytestmark = pytest.mark.e2e

#: The issue's bound for noticing a dead card at a small FWI (an anti-hang limit).
DEAD_CARD_SECONDS = 1.0
SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")


def cli_read(uri: str, config: str) -> tuple[int, str]:
    result = CliRunner().invoke(read, ["--reader", uri, "--json", "--config", config])
    return result.exit_code, result.output


def same_as_sim(uri: str, profile: str, config: str) -> None:
    code, output = cli_read(uri, config)
    assert code == 0, output
    over_nfc = json.loads(output)
    code, output = cli_read(f"sim:{profile}", config)
    assert code == 0, output
    over_sim = json.loads(output)
    over_nfc.pop("reader")
    over_sim.pop("reader")
    assert over_nfc == over_sim


@pytest.fixture
def nfcpy_frames(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.LogCaptureFixture]:
    """nfcpy's own frame log (``nfc.clf`` at DEBUG): what its reader side sent/received.
    Whole frames only with the card-data opt-in (test cards; see nfc_logging)."""
    monkeypatch.setenv(nfc_logging.OPT_IN, "1")
    caplog.set_level(logging.DEBUG, logger="nfc.clf")
    yield caplog


def fixed_config() -> TerminalConfig:
    import datetime
    import random

    return TerminalConfig(clock=lambda: datetime.datetime(2024, 5, 17, 12, 0), rng=random.Random(7))


# --- chaining -----------------------------------------------------------------------------


def test_small_frames_chain_commands_and_certificate_records(
    tmp_path: Path, nfcpy_frames: pytest.LogCaptureFixture
) -> None:
    # FSCI 0: 16-byte frames, 13 bytes of APDU each. The card also sends no larger
    # blocks, so its 200-byte certificate records come back in many chained blocks.
    with emulated_card("mastercard", settings="fsci=0") as card:
        with open_transport(card.uri, timeout=5) as reader:
            responses: list[bytes] = []
            reader.add_tracer(lambda event: responses.append(event.response or b""))
            reader.wait_for_card(10)
            assert reader.ats_info is not None and reader.ats_info.fsc == 16
            run(Card(reader), read_flow(fixed_config()))
        certificates = [
            r for r in responses if r[:1] == b"\x70" and tlv.find_value(r[:-2], "90") is not None
        ]
        assert certificates and all(len(r) > 16 for r in certificates)
        sent = frames_sent_by_nfcpy(nfcpy_frames.messages)
        received = frames_received_by_nfcpy(nfcpy_frames.messages)
        assert any(frame[0] & 0xF2 == 0x12 for frame in sent)  # chained I-blocks to the card
        assert any(frame[0] & 0xFE == 0xA2 for frame in sent)  # R(ACK)s for its chains
        assert any(frame[0] & 0xF2 == 0x12 for frame in received)  # chained answers
        assert max(len(frame) for frame in sent + received) <= 16 - 2  # FSC minus CRC
        same_as_sim(card.uri, "mastercard", terminal_config(tmp_path))


# --- a slow card --------------------------------------------------------------------------


def test_slow_card_asks_for_more_time_with_wtx(
    tmp_path: Path, nfcpy_frames: pytest.LogCaptureFixture
) -> None:
    # FWI 7: FWT 38.7 ms; nfcpy gives up after 6 waits of FWT + 3.6 ms (about 255 ms).
    # Each APDU takes 300 ms, so the read only succeeds because the card sends S(WTX).
    with emulated_card("visa", settings="fwi=7", faults=("latency_ms=300",)) as card:
        same_as_sim(card.uri, "visa", terminal_config(tmp_path))
    received = frames_received_by_nfcpy(nfcpy_frames.messages)
    sent = frames_sent_by_nfcpy(nfcpy_frames.messages)
    wtx_requests = [frame for frame in received if frame[0] & 0xFE == 0xF2]
    assert wtx_requests
    assert all(1 <= frame[1] & 0x3F <= 59 for frame in wtx_requests)
    assert any(frame[0] & 0xFE == 0xF2 for frame in sent)  # nfcpy's S(WTX) responses


# --- cards that go away -------------------------------------------------------------------


def test_killed_card_is_reported_fast_and_a_new_card_reads_on_the_same_reader() -> None:
    first = start_card("visa", settings="fwi=4")
    try:
        with open_transport(first.uri, timeout=5) as reader:
            killed_at: list[float] = []

            def kill_after_third(event: ExchangeEvent) -> None:
                if len(killed_at) == 0 and event.response is not None:
                    exchanges.append(event)
                    if len(exchanges) == 3:
                        first.kill()
                        killed_at.append(time.monotonic())

            exchanges: list[ExchangeEvent] = []
            reader.add_tracer(kill_after_third)
            reader.wait_for_card(10)
            # The port is unreachable now: the card left the field.
            with pytest.raises(CardRemoved):
                run(Card(reader, timeout=5), read_flow(fixed_config()))
            assert killed_at, "the card was not killed mid-read"
            assert time.monotonic() - killed_at[0] < DEAD_CARD_SECONDS
            assert not reader.card_present()
            reader.remove_tracer(kill_after_third)

            # Another card on the same port: the same reader object reads it.
            with emulated_card("mastercard", port=first.port):
                assert reader.wait_for_card(10)
                assert reader.uid == load_profile("mastercard").uid
                data = run(Card(reader, timeout=5), read_flow(fixed_config()))
                assert data.to_json()["brand"] == "mastercard"
    finally:
        first.stop()


def test_frozen_card_times_out_fast_and_reads_again_once_thawed() -> None:
    with (
        emulated_card("amex", settings="fwi=5") as card,
        open_transport(card.uri, timeout=5) as reader,
    ):
        frozen_at: list[float] = []

        def freeze_after_second(event: ExchangeEvent) -> None:
            seen.append(event)
            if len(seen) == 2:
                card.freeze()
                frozen_at.append(time.monotonic())

        seen: list[ExchangeEvent] = []
        reader.add_tracer(freeze_after_second)
        reader.wait_for_card(10)
        with pytest.raises(TransportTimeout):
            run(Card(reader, timeout=5), read_flow(fixed_config()))
        assert time.monotonic() - frozen_at[0] < DEAD_CARD_SECONDS
        reader.remove_tracer(freeze_after_second)
        card.thaw()
        # The thawed card first works through the frames queued while it was frozen,
        # then sees the field drop (RFOFF) and the new activation.
        assert reader.wait_for_card(10)
        data = run(Card(reader, timeout=5), read_flow(fixed_config()))
        assert data.to_json()["brand"] == "amex"


def test_remove_after_fault_fails_the_read_with_card_removed(tmp_path: Path) -> None:
    with emulated_card("jcb", settings="fwi=5", faults=("remove_after=3",)) as card:
        code, output = cli_read(card.uri, terminal_config(tmp_path))
        assert code == 1
        assert "the card left the field of nfc:udp" in output
        assert card.wait_exit() == 0
        assert "card removed" in card.output()


def test_mute_after_fault_is_a_transport_timeout() -> None:
    with (
        emulated_card("discover", settings="fwi=5", faults=("mute_after=2",)) as card,
        open_transport(card.uri, timeout=5) as reader,
    ):
        reader.wait_for_card(10)
        session = Card(reader, timeout=5)
        with pytest.raises(TransportTimeout, match="no answer"):
            run(session, read_flow(fixed_config()))


def test_lost_blocks_are_recovered_by_nfcpy(
    tmp_path: Path, nfcpy_frames: pytest.LogCaptureFixture
) -> None:
    with emulated_card(
        "unionpay", settings="fwi=6&fsci=3", faults=("error_rate=0.25", "seed=3")
    ) as card:
        same_as_sim(card.uri, "unionpay", terminal_config(tmp_path))
    sent = frames_sent_by_nfcpy(nfcpy_frames.messages)
    assert any(frame[0] & 0xFE == 0xB2 for frame in sent)  # R(NAK): a block was lost


# --- no card, garbage -----------------------------------------------------------------------


def test_waiting_with_no_card_ends_at_the_deadline() -> None:
    # A socket that swallows every frame: nfcpy's UDP sense blocks 1 s per technology, yet
    # wait_for_card returns at its own deadline.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        with open_transport(f"nfc:udp:127.0.0.1:{silent.getsockname()[1]}") as reader:
            started = time.monotonic()
            with pytest.raises(NoCard):
                reader.wait_for_card(0.3)
            assert time.monotonic() - started < 0.9  # well before one 1 s sense ends
    finally:
        silent.close()


def test_nothing_listening_is_no_card() -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # the port is now closed: sends to it bounce (ICMP unreachable)
    with open_transport(f"nfc:udp:127.0.0.1:{port}") as reader:
        with pytest.raises(NoCard):
            reader.wait_for_card(0.5)
        with pytest.raises(NoCard):
            reader.transmit(SELECT_PPSE, timeout=0.5)


class ShortAtsCard(TypeACard):
    """Answers RATS with a 2-byte ATS whose T0 announces TA, TB and TC it does not send."""

    def _rats(self, param: int) -> Reaction:
        super()._rats(param)
        return Reply(b"\x02\x78")


def test_truncated_ats_is_an_atr_error_where_nfcpy_raises_index_error() -> None:
    profile = load_profile("visa")
    server = NfcUdpCard(VirtualCard(profile), "127.0.0.1", 0)
    server.picc = ShortAtsCard(uid=profile.uid, ats=profile.ats)
    stop = threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        # nfcpy's own Type 4A activation indexes past the end of the ATS.
        import nfc.clf
        import nfc.tag

        clf = nfc.ContactlessFrontend(f"udp:127.0.0.1:{server.address[1]}")
        try:
            target = clf.sense(nfc.clf.RemoteTarget("106A"))
            assert target is not None
            with pytest.raises(IndexError):
                nfc.tag.activate(clf, target)
        finally:
            clf.close()
        # The transport parses the ATS itself and says what is wrong with it.
        with open_transport(server.uri) as reader, pytest.raises(AtrError, match="ATS"):
            reader.wait_for_card(5)
    finally:
        stop.set()
        thread.join(10)
        server.close()
