"""pcscd going away and coming back, reader/card events, and two readers used at once."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import SLOT_NAMES, CardFactory, PcscdService

from contactless.emulator.card import VirtualCard
from contactless.emulator.profiles import load_profile
from contactless.emv.driver import run
from contactless.emv.flow import read_flow
from contactless.emv.terminal import TerminalConfig
from contactless.errors import ServiceUnavailable
from contactless.reader import open_reader
from contactless.session import Card
from contactless.transport import detect
from contactless.transport.pcsc import PcscTransport
from contactless.transport.pcsc_context import PcscContext
from contactless.transport.pcsc_monitor import EventKind, PcscMonitor, ReaderEvent

pytestmark = pytest.mark.e2e

SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")
EVENT_DEADLINE = 10.0


def test_contexts_are_abortable_in_place_on_linux(pcscd: PcscdService) -> None:
    # The zero-overhead deadline needs the context's socket; on Linux it must be found.
    context = PcscContext.establish()
    try:
        assert context.abortable_in_place
    finally:
        context.release()


def test_stopped_pcscd_is_service_unavailable_and_a_restart_recovers(
    pcscd: PcscdService, vpcd_card: CardFactory
) -> None:
    card = vpcd_card.thread("visa")
    config = TerminalConfig.load(None)
    with open_reader(card.uri, timeout=3.0) as reader:
        assert isinstance(reader, PcscTransport)
        run(Card(reader), read_flow(config))
        pcscd.stop()
        with pytest.raises(ServiceUnavailable) as info:
            reader.transmit(SELECT_PPSE)
        assert "start pcscd" in str(info.value)
        with pytest.raises(ServiceUnavailable, match="start pcscd"), open_reader("pcsc:"):
            pass
        pcsc_entries = [entry for entry in detect() if entry.backend == "pcsc"]
        assert len(pcsc_entries) == 1 and not pcsc_entries[0].available
        assert "pcscd" in pcsc_entries[0].detail

        pcscd.start()
        card.wait_present()  # the emulator reconnects to vpcd on its own
        # The same transport opens a new context and session (the card reset on the way).
        assert reader.wait_for_card(10.0)
        data = run(Card(reader), read_flow(config))
        assert data.to_json()["brand"] == "visa"
    with open_reader(card.uri) as fresh:
        assert fresh.transmit(SELECT_PPSE) == VirtualCard(load_profile("visa")).process(SELECT_PPSE)


def test_monitor_reports_state_first_then_changes_and_survives_a_restart(
    pcscd: PcscdService, vpcd_card: CardFactory
) -> None:
    seen: list[ReaderEvent] = []
    with PcscMonitor(callback=seen.append, poll=0.2, retry_min=0.1, retry_max=0.5) as monitor:
        first = [monitor.get(EVENT_DEADLINE), monitor.get(EVENT_DEADLINE)]
        assert [(event and event.kind, event and event.reader) for event in first] == [
            (EventKind.READER_ADDED, SLOT_NAMES[0]),
            (EventKind.READER_ADDED, SLOT_NAMES[1]),
        ]
        assert all(event is not None and event.initial for event in first)

        card = vpcd_card.thread("amex", slot=1)
        inserted = monitor.wait_for(
            EventKind.CARD_INSERTED, reader=SLOT_NAMES[1], timeout=EVENT_DEADLINE
        )
        assert inserted.atr == VirtualCard(load_profile("amex")).atr
        assert not inserted.initial
        assert monitor.snapshot() == {SLOT_NAMES[0]: False, SLOT_NAMES[1]: True}

        card.remove()
        monitor.wait_for(EventKind.CARD_REMOVED, reader=SLOT_NAMES[1], timeout=EVENT_DEADLINE)

        vpcd_card.thread("jcb", slot=0, wait=False)
        monitor.wait_for(EventKind.CARD_INSERTED, reader=SLOT_NAMES[0], timeout=EVENT_DEADLINE)

        pcscd.stop()
        lost = monitor.wait_for(EventKind.SERVICE_LOST, timeout=EVENT_DEADLINE)
        assert "pcscd" in lost.detail
        # What it knew is taken back, so the stream always describes the current state.
        monitor.wait_for(EventKind.READER_REMOVED, timeout=EVENT_DEADLINE)
        assert monitor.running

        pcscd.start()
        monitor.wait_for(EventKind.SERVICE_RESTORED, timeout=EVENT_DEADLINE)
        monitor.wait_for(EventKind.READER_ADDED, timeout=EVENT_DEADLINE)
        monitor.wait_for(EventKind.CARD_INSERTED, reader=SLOT_NAMES[0], timeout=EVENT_DEADLINE)
        stop_started = time.monotonic()
    # Leaving the block stopped it promptly (SCardCancel wakes the wait).
    assert time.monotonic() - stop_started < 2.0
    assert not monitor.running
    assert monitor.error is None
    kinds = [event.kind for event in seen]
    assert kinds.index(EventKind.SERVICE_LOST) < kinds.index(EventKind.SERVICE_RESTORED)
    assert list(monitor) == []  # the iterator ends once stopped and drained


def test_monitor_started_without_pcscd_reports_it_then_sees_it_come_up(
    pcscd: PcscdService,
) -> None:
    pcscd.stop()
    with PcscMonitor(poll=0.2, retry_min=0.1, retry_max=0.3) as monitor:
        lost = monitor.get(EVENT_DEADLINE)
        assert lost is not None and lost.kind is EventKind.SERVICE_LOST and lost.initial
        pcscd.start()
        monitor.wait_for(EventKind.SERVICE_RESTORED, timeout=EVENT_DEADLINE)
        added = monitor.wait_for(EventKind.READER_ADDED, timeout=EVENT_DEADLINE)
        assert added.reader in SLOT_NAMES


def test_two_slots_from_two_threads_without_crosstalk(vpcd_card: CardFactory) -> None:
    profiles = {SLOT_NAMES[0]: "visa", SLOT_NAMES[1]: "mastercard"}
    vpcd_card.thread("visa", slot=0)
    vpcd_card.thread("mastercard", slot=1)
    config = TerminalConfig.load(None)
    results: dict[str, list[str]] = {name: [] for name in SLOT_NAMES}
    errors: list[BaseException] = []
    rounds = 10

    def reads(name: str) -> None:
        try:
            with open_reader(f"pcsc:{name}", timeout=5.0) as reader:
                for _ in range(rounds):
                    data = run(Card(reader), read_flow(config))
                    results[name].append(str(data.to_json(show_pan=True)["pan"]))
                    assert isinstance(reader, PcscTransport)
                    reader.reset()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=reads, args=(name,)) for name in SLOT_NAMES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    assert errors == []
    for name, profile in profiles.items():
        pan = load_profile(profile).applications[0].pan
        assert results[name] == [pan] * rounds
