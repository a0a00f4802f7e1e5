"""sim: URIs: the emulated card on a simulated reader, and every injected fault's typed error.

Deadlines here are short (a fraction of a second) so faults that make the reader wait end
quickly; HANG_BOUND is only an anti-hang limit, never a performance assertion.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import contactless.transport as registry
from contactless._version import __version__
from contactless.apdu import Command
from contactless.emulator.profiles import list_profiles
from contactless.errors import (
    CardRemoved,
    ConfigError,
    NoCard,
    TransportError,
    TransportTimeout,
)
from contactless.reader import open_reader
from contactless.session import Card
from contactless.tlv import decode, find
from contactless.transport.base import ExchangeEvent, Transport
from contactless.transport.sim import SimTransport

HANG_BOUND = 5.0
SELECT_PPSE = Command(0x00, 0xA4, 0x04, 0x00, b"2PAY.SYS.DDF01", le=256)
READ_RECORD_1_2 = Command(0x00, 0xB2, 0x02, 0x0C, le=256)


@pytest.fixture
def visa() -> Iterator[Transport]:
    with open_reader("sim:visa") as reader:
        yield reader


def send(transport: Transport, command: Command = SELECT_PPSE, timeout: float = 0.3) -> bytes:
    return transport.transmit(command.to_bytes(), timeout=timeout)


def test_opens_a_connected_reader_with_a_card(visa: Transport) -> None:
    assert isinstance(visa, SimTransport) and visa.connected
    assert visa.card_present() and visa.wait_for_card(1)
    assert visa.atr is not None and visa.atr[0] == 0x3B
    assert visa.ats and visa.uid
    assert visa.identity.vendor == "contactless"
    assert visa.identity.model == "simulated reader"
    assert visa.identity.firmware == __version__


def test_select_ppse_answers_the_proximity_environment(visa: Transport) -> None:
    response = Card(visa).exchange(SELECT_PPSE)
    assert response.ok
    name = find(decode(response.data), "6F/84")
    assert name is not None and name.value == b"2PAY.SYS.DDF01"


def test_every_profile_opens_and_detect_lists_them() -> None:
    profiles = sorted(list_profiles())
    assert "visa" in profiles
    found = SimTransport.detect()
    assert [info.uri for info in found] == [f"sim:{name}" for name in profiles]
    assert all(info.backend == "sim" and info.available for info in found)
    for info in found:
        with open_reader(info.uri) as reader:
            assert Card(reader).exchange(SELECT_PPSE).sw1 in (0x90, 0x6A)


@pytest.mark.parametrize("uri", ["sim:", "sim:?latency_ms=5"])
def test_a_uri_without_profile_lists_the_profiles(uri: str) -> None:
    with pytest.raises(ConfigError, match="names no card profile") as info:
        registry.open(uri)
    assert "visa" in str(info.value)


def test_an_unknown_profile_is_a_config_error_listing_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        registry.open("sim:diners-club-1962")
    assert "diners-club-1962" in str(info.value) and "visa" in str(info.value)


def test_an_unknown_fault_key_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        registry.open("sim:visa?latency=40")
    message = str(info.value)
    assert "latency" in message
    for key in ("latency_ms", "error_rate", "mute_after", "remove_after"):
        assert key in message


def test_tracers_see_sim_exchanges(visa: Transport) -> None:
    events: list[ExchangeEvent] = []
    visa.add_tracer(events.append)
    response = send(visa)
    assert len(events) == 1 and events[0].response == response and events[0].seconds >= 0


# --- faults -------------------------------------------------------------------------------


def test_latency_delays_but_still_gives_data() -> None:
    with open_reader("sim:visa?latency_ms=30") as reader:
        events: list[ExchangeEvent] = []
        reader.add_tracer(events.append)
        response = Card(reader).exchange(SELECT_PPSE)
        assert response.ok and response.data
        assert events[0].seconds >= 0.03  # the sleep happened (a lower bound, not a limit)


def test_latency_never_sleeps_past_the_deadline() -> None:
    with open_reader("sim:visa?latency_ms=60000") as reader:
        start = time.monotonic()
        with pytest.raises(TransportTimeout, match="SELECT 325041592E5359532E4444463031"):
            send(reader, timeout=0.2)
        assert time.monotonic() - start < HANG_BOUND


def test_error_rate_one_fails_every_apdu_with_a_transmission_error() -> None:
    with open_reader("sim:visa?error_rate=1") as reader:
        for _ in range(3):
            with pytest.raises(TransportError, match="transmission error during SELECT"):
                send(reader)


def test_error_rate_is_repeatable_with_a_seed() -> None:
    def outcomes(uri: str) -> list[bool]:
        results = []
        with open_reader(uri) as reader:
            for _ in range(40):
                try:
                    send(reader)
                    results.append(True)
                except TransportError:
                    results.append(False)
        return results

    first = outcomes("sim:visa?error_rate=0.5&seed=7")
    assert first == outcomes("sim:visa?error_rate=0.5&seed=7")
    assert True in first and False in first
    assert first != outcomes("sim:visa?error_rate=0.5&seed=8")


def test_mute_after_answers_n_apdus_then_times_out() -> None:
    with open_reader("sim:visa?mute_after=2") as reader:
        send(reader)
        send(reader)
        start = time.monotonic()
        with pytest.raises(TransportTimeout, match="card is silent"):
            send(reader, timeout=0.2)
        assert time.monotonic() - start < HANG_BOUND
        assert reader.card_present()  # a mute card is still in the field


def test_mute_card_times_out_a_session_exchange() -> None:
    with open_reader("sim:visa?mute_after=0") as reader:
        start = time.monotonic()
        with pytest.raises(TransportTimeout):
            Card(reader, timeout=0.2).exchange(SELECT_PPSE)
        assert time.monotonic() - start < HANG_BOUND


def test_hang_after_stops_the_reader_responding() -> None:
    with open_reader("sim:visa?hang_after=1") as reader:
        send(reader)
        start = time.monotonic()
        with pytest.raises(TransportTimeout, match="stopped responding"):
            send(reader, timeout=0.2)
        assert time.monotonic() - start < HANG_BOUND


def test_remove_after_removes_the_card_during_the_next_command() -> None:
    with open_reader("sim:visa?remove_after=2") as reader:
        send(reader)
        send(reader)
        with pytest.raises(CardRemoved, match="card removed during READ RECORD SFI 1 record 2"):
            send(reader, READ_RECORD_1_2)
        assert reader.card_present() is False
        with pytest.raises(CardRemoved):
            send(reader)
        with pytest.raises(NoCard):
            reader.wait_for_card(0.2)
        # Putting the card back (reconnecting) powers it up again.
        reader.disconnect()
        reader.connect()
        assert reader.card_present()
        assert send(reader)[-2:] == b"\x90\x00"


def test_firmware_sets_the_reader_identity() -> None:
    with open_reader("sim:visa?firmware=2.0.7-beta") as reader:
        assert reader.identity.firmware == "2.0.7-beta"


def test_faults_combine() -> None:
    with open_reader("sim:visa?latency_ms=5&remove_after=1&firmware=9") as reader:
        assert send(reader)[-2:] == b"\x90\x00"
        with pytest.raises(CardRemoved):
            send(reader)
        assert reader.identity.firmware == "9"


def test_open_passes_the_default_timeout() -> None:
    with open_reader("sim:visa?mute_after=0", timeout=0.2) as reader:
        assert reader.timeout == 0.2
        start = time.monotonic()
        with pytest.raises(TransportTimeout):
            reader.transmit(SELECT_PPSE.to_bytes())
        assert time.monotonic() - start < HANG_BOUND


def test_a_t0_card_answers_through_the_session_like_a_t1_card() -> None:
    # With t0=1 the emulator answers case 4 commands with 61xx and a wrong Le with 6Cxx;
    # the session must turn both into the same answers a T=1 card gives at once.
    commands = [
        SELECT_PPSE,
        Command(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("A0000000031010"), le=256),
        Command(0x80, 0xCA, 0x9F, 0x17, le=256),  # PIN try counter: 4 bytes, not 256
    ]
    with open_reader("sim:visa") as plain, open_reader("sim:visa?t0=1") as t0:
        expected = [Card(plain).exchange(command) for command in commands]
        assert t0.transmit(SELECT_PPSE.to_bytes())[0] == 0x61
        t0.disconnect()
        t0.connect()
        card = Card(t0)
        got = [card.exchange(command) for command in commands]
    assert all(response.ok for response in expected)
    assert got == expected
    # Each command needed one follow-up: GET RESPONSE, GET RESPONSE, GET DATA with Le=SW2.
    assert card.apdu_count == 6
