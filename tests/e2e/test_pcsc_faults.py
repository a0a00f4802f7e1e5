"""Faults through the real PC/SC stack: a card pulled mid-transaction, a card that hangs,
a transmission error, a slow card."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import SLOT_NAMES, CardFactory, reader_present, wait_until

from contactless.emulator.card import VirtualCard
from contactless.emulator.profiles import load_profile
from contactless.emv.driver import run
from contactless.emv.flow import read_flow
from contactless.emv.terminal import TerminalConfig
from contactless.errors import CardRemoved, TransportError, TransportTimeout
from contactless.reader import open_reader
from contactless.session import Card
from contactless.transport.pcsc import PcscTransport

pytestmark = pytest.mark.e2e

SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")
READER = SLOT_NAMES[0]
#: The issue's bound for reporting a pulled card.
REMOVAL_BOUND = 2.0
#: Slack over a deadline in the anti-hang checks: generous, because a loaded CI machine
#: (pcscd, vpcd and the test on two cores) can be late by a second or more; a hang is not
#: bounded at all, so this still tells the two apart.
HANG_SLACK = 3.0


def flow(reader: PcscTransport) -> object:
    return run(Card(reader, timeout=reader.timeout), read_flow(TerminalConfig.load(None)))


def test_card_pulled_mid_transaction_raises_card_removed_quickly(
    vpcd_card: CardFactory,
) -> None:
    vpcd_card.thread("visa", faults="remove_after=3")
    with open_reader(f"pcsc:{READER}", timeout=5.0) as reader:
        assert isinstance(reader, PcscTransport)
        started = time.monotonic()
        with pytest.raises(CardRemoved) as info:
            flow(reader)
        assert time.monotonic() - started < REMOVAL_BOUND
        assert "card" in str(info.value)
        # The session is gone and so is the card: opening a new one says there is none.
        wait_until(lambda: reader_present(READER) is False, 5.0, "pcscd to see the removal")
        assert not reader.card_present()


def test_card_taken_away_by_hand_during_a_slow_exchange(vpcd_card: CardFactory) -> None:
    card = vpcd_card.thread("mastercard", faults="latency_ms=300")
    with open_reader(card.uri, timeout=5.0) as reader:
        remover = threading.Timer(0.1, card.stop_event.set)
        remover.start()
        try:
            started = time.monotonic()
            with pytest.raises(CardRemoved):
                reader.transmit(SELECT_PPSE)
            assert time.monotonic() - started < REMOVAL_BOUND
        finally:
            remover.cancel()


def test_hung_card_times_out_within_the_deadline_then_a_new_card_works(
    vpcd_card: CardFactory,
) -> None:
    hung = vpcd_card.thread("visa", faults="hang_after=2")
    deadline = 1.0
    with open_reader(f"pcsc:{READER}", timeout=deadline) as reader:
        assert isinstance(reader, PcscTransport)
        reader.transmit(SELECT_PPSE)  # APDU 1
        reader.transmit(SELECT_PPSE)  # APDU 2
        started = time.monotonic()
        with pytest.raises(TransportTimeout, match="no answer"):
            reader.transmit(SELECT_PPSE)  # APDU 3: the card hangs
        elapsed = time.monotonic() - started
        assert elapsed < deadline + HANG_SLACK, elapsed
        # Documented state: the session is closed; the reader stays jammed inside pcscd
        # while the hung card is there, so the next exchange also ends at its deadline.
        assert reader.atr is None
        started = time.monotonic()
        with pytest.raises(TransportTimeout):
            reader.transmit(SELECT_PPSE)
        elapsed = time.monotonic() - started
        assert elapsed < deadline + HANG_SLACK, elapsed
        # Take the hung card away and present a good one: the same transport recovers.
        hung.remove()
        vpcd_card.thread("visa", wait=False)
        reader.wait_for_card(10.0)
        expected = VirtualCard(load_profile("visa")).process(SELECT_PPSE)
        assert reader.transmit(SELECT_PPSE, timeout=5.0) == expected
        reader.timeout = 5.0
        flow(reader)


def test_transmission_error_is_a_transport_error(vpcd_card: CardFactory) -> None:
    card = vpcd_card.thread("amex", faults="error_rate=1")
    with open_reader(card.uri) as reader:
        with pytest.raises(TransportError, match="too short"):
            reader.transmit(SELECT_PPSE)
        # The card is still there: not mistaken for a removal.
        assert reader.card_present()


def test_a_slow_card_within_the_deadline_is_fine(vpcd_card: CardFactory) -> None:
    card = vpcd_card.thread("discover", faults="latency_ms=150")
    with open_reader(card.uri, timeout=2.0) as reader:
        assert reader.transmit(SELECT_PPSE) == VirtualCard(load_profile("discover")).process(
            SELECT_PPSE
        )
        with pytest.raises(TransportTimeout):
            reader.transmit(SELECT_PPSE, timeout=0.05)
