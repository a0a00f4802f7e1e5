"""The Transport base: lifecycle, argument checks, tracers, error translation, deadlines."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from contactless import read_card
from contactless.errors import (
    LocalProtocolError,
    NoCard,
    OpenError,
    TransportError,
    TransportTimeout,
)
from contactless.transport.base import (
    DEFAULT_TIMEOUT,
    ExchangeEvent,
    ReaderIdentity,
    Transport,
    describe_apdu,
    describe_response,
    format_seconds,
)
from visa_card import VISA_NAME, VISA_PAN, VISA_RECORD, VISA_TRACK2

SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")
# Anti-hang bound for tests that wait on a deadline; generous so slow CI never flakes.
HANG_BOUND = 5.0


class EchoTransport(Transport):
    """Answers every APDU with its own bytes followed by 9000."""

    enforces_deadline = True

    def __init__(self, uri: str = "echo:", **kw: float) -> None:
        super().__init__(uri, **kw)
        self.present = True
        self.opened = 0
        self.closed = 0

    def _connect(self) -> None:
        self.opened += 1
        self.atr = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
        self.uid = bytes.fromhex("04A224B2C35E80")

    def _disconnect(self) -> None:
        self.closed += 1

    def _transmit(self, apdu: bytes, timeout: float) -> bytes:
        return apdu + b"\x90\x00"

    def _card_present(self) -> bool:
        return self.present


class FailingTransport(EchoTransport):
    """_transmit raises whatever ``error`` is set to; _disconnect can fail too."""

    def __init__(self, error: BaseException) -> None:
        super().__init__("failing:")
        self.error = error
        self.close_error: BaseException | None = None

    def _transmit(self, apdu: bytes, timeout: float) -> bytes:
        raise self.error

    def _disconnect(self) -> None:
        if self.close_error is not None:
            raise self.close_error


class BlockingTransport(EchoTransport):
    """Like a PC/SC reader whose SCardTransmit never returns: ignores its timeout."""

    enforces_deadline = False

    def __init__(self) -> None:
        super().__init__("blocking:")
        self.release = threading.Event()
        self.block = True
        self.calls: list[str] = []

    def _transmit(self, apdu: bytes, timeout: float) -> bytes:
        self.calls.append(threading.current_thread().name)
        if self.block:
            self.release.wait(60)
        return b"\x90\x00"


@pytest.fixture
def echo() -> Iterator[EchoTransport]:
    transport = EchoTransport()
    transport.connect()
    yield transport
    transport.disconnect()


@pytest.fixture
def blocking() -> Iterator[BlockingTransport]:
    transport = BlockingTransport()
    transport.connect()
    yield transport
    transport.release.set()  # let the abandoned worker thread finish
    transport.disconnect()


# --- lifecycle ----------------------------------------------------------------------------


def test_connect_sets_card_facts_and_disconnect_clears_them() -> None:
    transport = EchoTransport()
    assert not transport.connected
    transport.connect()
    transport.connect()  # idempotent
    assert transport.connected and transport.opened == 1
    assert transport.atr is not None and transport.uid == bytes.fromhex("04A224B2C35E80")
    transport.disconnect()
    transport.disconnect()  # idempotent
    assert not transport.connected and transport.closed == 1
    assert transport.atr is None and transport.uid is None and transport.ats is None


def test_context_manager_connects_and_disconnects() -> None:
    transport = EchoTransport()
    with transport as reader:
        assert reader is transport and reader.connected
        assert reader.transmit(b"\x00\xb2\x01\x0c") == b"\x00\xb2\x01\x0c\x90\x00"
    assert not transport.connected and transport.closed == 1


def test_context_manager_disconnects_on_error_and_keeps_the_first_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = FailingTransport(TransportError("link down"))
    transport.close_error = OSError("close failed too")
    with pytest.raises(TransportError, match="link down"), transport:
        transport.transmit(SELECT_PPSE)
    assert not transport.connected
    assert "close failed too" in caplog.text


def test_disconnect_error_is_translated_when_nothing_else_failed() -> None:
    transport = FailingTransport(TransportError("unused"))
    transport.close_error = OSError("device gone")
    transport.connect()
    with pytest.raises(TransportError, match="device gone") as info:
        transport.disconnect()
    assert isinstance(info.value.__cause__, OSError)
    assert not transport.connected


def test_backend_exception_in_connect_becomes_open_error() -> None:
    class Broken(EchoTransport):
        def _connect(self) -> None:
            raise RuntimeError("usb stack exploded")

    transport = Broken()
    with pytest.raises(OpenError, match="cannot open echo:: RuntimeError: usb stack exploded"):
        transport.connect()
    assert not transport.connected


def test_transmit_on_a_closed_transport_is_a_clear_error() -> None:
    transport = EchoTransport()
    with pytest.raises(LocalProtocolError, match=r"SELECT 325041592E5359532E4444463031.*closed"):
        transport.transmit(SELECT_PPSE)
    transport.connect()
    transport.disconnect()
    with pytest.raises(LocalProtocolError, match="closed") as info:
        transport.transmit(SELECT_PPSE)
    assert "connect()" in str(info.value)


def test_default_identity_and_timeout() -> None:
    transport = EchoTransport()
    assert transport.timeout == DEFAULT_TIMEOUT
    assert transport.identity == ReaderIdentity(driver=__name__)
    assert EchoTransport(timeout=0.5).timeout == 0.5
    assert "closed" in repr(transport)


# --- argument checks ----------------------------------------------------------------------


@pytest.mark.parametrize("apdu", [b"", b"\x00\xa4\x04", "00A40400", [0, 0xA4, 4, 0]])
def test_transmit_rejects_what_is_not_a_command(echo: EchoTransport, apdu: object) -> None:
    with pytest.raises(LocalProtocolError):
        echo.transmit(apdu)  # type: ignore[arg-type]


def test_transmit_accepts_bytes_like(echo: EchoTransport) -> None:
    assert echo.transmit(bytearray(b"\x00\xc0\x00\x00")) == b"\x00\xc0\x00\x00\x90\x00"
    assert echo.transmit(memoryview(b"\x00\xc0\x00\x00")) == b"\x00\xc0\x00\x00\x90\x00"


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "5", True])
def test_bad_timeouts_are_rejected(echo: EchoTransport, timeout: object) -> None:
    with pytest.raises(LocalProtocolError, match="timeout"):
        echo.transmit(SELECT_PPSE, timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="timeout"):
        echo.wait_for_card(timeout)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="timeout"):
        EchoTransport(timeout=timeout)  # type: ignore[arg-type]


def test_describe_apdu_names_commands_and_falls_back_to_hex() -> None:
    assert describe_apdu(bytes.fromhex("00B2020C00")) == "READ RECORD SFI 1 record 2"
    assert describe_apdu(b"\x00\xa4\x04") == "command 00A404"
    # For reprs, which show no bytes at all: the length only.
    assert describe_apdu(b"\x00\xa4\x04", show_bytes=False) == "malformed 3-byte command"
    assert describe_apdu(bytes.fromhex("00B2020C00"), show_bytes=False) == (
        "READ RECORD SFI 1 record 2"
    )


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"", "0-byte answer without SW1 SW2"),
        (b"\x90", "1-byte answer without SW1 SW2"),
        (b"\x6a\x82", "SW 6A82, no data"),
        (b"\x5a\x90\x00", "SW 9000, 1 data byte"),
        (VISA_RECORD, "SW 9000, 67 data bytes"),
    ],
)
def test_describe_response_names_the_status_word_and_length_only(raw: bytes, text: str) -> None:
    assert describe_response(raw) == text


# --- tracers ------------------------------------------------------------------------------


def test_tracers_see_every_exchange_with_timing(echo: EchoTransport) -> None:
    events: list[ExchangeEvent] = []
    echo.add_tracer(events.append)
    commands = [SELECT_PPSE, bytes.fromhex("00B2010C00"), bytes.fromhex("80A8000002830000")]
    for command in commands:
        echo.transmit(command)
    assert [event.command for event in events] == commands
    assert [event.response for event in events] == [c + b"\x90\x00" for c in commands]
    assert all(event.error is None and event.seconds >= 0 for event in events)
    echo.remove_tracer(events.append)
    echo.remove_tracer(events.append)  # removing twice is harmless
    echo.transmit(SELECT_PPSE)
    assert len(events) == 3


def test_tracers_see_failed_exchanges_with_the_error() -> None:
    error = TransportError("frame lost")
    transport = FailingTransport(error)
    events: list[ExchangeEvent] = []
    transport.add_tracer(events.append)
    with transport, pytest.raises(TransportError):
        transport.transmit(SELECT_PPSE)
    assert len(events) == 1
    assert events[0].command == SELECT_PPSE
    assert events[0].response is None and events[0].error is error


def test_exchange_event_repr_says_what_happened_without_bytes() -> None:
    read_record = bytes.fromhex("00B2010C00")
    event = ExchangeEvent(read_record, VISA_RECORD, 0.0125)
    assert repr(event) == (
        "<ExchangeEvent READ RECORD SFI 1 record 1 -> SW 9000, 67 data bytes in 0.0125 s>"
    )
    failed = ExchangeEvent(read_record, None, 2.0, TransportTimeout(f"no answer: {VISA_PAN}"))
    # The error by its type: a backend's message is not ours to vouch for.
    assert (
        repr(failed)
        == "<ExchangeEvent READ RECORD SFI 1 record 1 failed (TransportTimeout) after 2 s>"
    )
    short = ExchangeEvent(b"\x00\xb2", b"\x90", 0.0)
    assert (
        repr(short)
        == "<ExchangeEvent malformed 2-byte command -> 1-byte answer without SW1 SW2 in 0 s>"
    )
    for text in (repr(event), repr(failed), repr([event, failed])):
        assert VISA_PAN not in text and VISA_NAME not in text and VISA_TRACK2 not in text
    # Equality is still the dataclass's, field by field.
    assert event == ExchangeEvent(read_record, VISA_RECORD, 0.0125)
    assert event != ExchangeEvent(read_record, VISA_RECORD[:-3] + b"\x90\x00", 0.0125)


def test_tracer_events_of_a_visa_read_print_no_card_data() -> None:
    events: list[ExchangeEvent] = []
    card = read_card("sim:visa", tracer=events.append, wait=HANG_BOUND, timeout=HANG_BOUND)
    assert card.pan == VISA_PAN and card.cardholder_name == VISA_NAME
    # The read's answers hold the card data, in the forms a repr of bytes would show.
    answers = b"".join(event.response or b"" for event in events)
    assert bytes.fromhex(VISA_TRACK2) in answers and VISA_NAME.encode() in answers
    shown = "\n".join([repr(events), str(events), *(f"{event}" for event in events)])
    assert "READ RECORD SFI 1 record 1 -> SW 9000" in shown
    for form in (VISA_PAN, VISA_NAME, VISA_TRACK2, repr(bytes.fromhex(VISA_PAN))[2:-1]):
        assert form not in shown


def test_a_broken_tracer_is_logged_and_the_response_still_returned(
    echo: EchoTransport, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[ExchangeEvent] = []

    def broken(event: ExchangeEvent) -> None:
        raise ValueError("disk full")

    echo.add_tracer(broken)
    echo.add_tracer(seen.append)
    with caplog.at_level(logging.ERROR, logger="contactless.transport"):
        assert echo.transmit(SELECT_PPSE) == SELECT_PPSE + b"\x90\x00"
    assert "disk full" in caplog.text
    assert len(seen) == 1  # later tracers still run


# --- error translation at the boundary ----------------------------------------------------


@pytest.mark.parametrize(
    "raised", [OSError(5, "Input/output error"), ValueError("bad frame"), KeyError("x")]
)
def test_foreign_backend_exceptions_become_transport_errors(raised: Exception) -> None:
    transport = FailingTransport(raised)
    with transport, pytest.raises(TransportError, match="failing: failed during SELECT") as info:
        transport.transmit(SELECT_PPSE)
    assert info.value.__cause__ is raised
    assert type(raised).__name__ in str(info.value)


def test_contactless_errors_pass_through_unchanged() -> None:
    error = NoCard("no card on failing:")
    transport = FailingTransport(error)
    with transport, pytest.raises(NoCard) as info:
        transport.transmit(SELECT_PPSE)
    assert info.value is error


def test_a_backend_returning_ints_instead_of_bytes_is_an_error() -> None:
    class ListTransport(EchoTransport):
        def _transmit(self, apdu: bytes, timeout: float) -> bytes:
            return [0x90, 0x00]  # type: ignore[return-value]  # pyscard's habit

    with ListTransport() as transport, pytest.raises(TransportError, match="list instead of bytes"):
        transport.transmit(SELECT_PPSE)


# --- deadlines ----------------------------------------------------------------------------


def test_a_blocking_backend_times_out_at_the_deadline(blocking: BlockingTransport) -> None:
    events: list[ExchangeEvent] = []
    blocking.add_tracer(events.append)
    start = time.monotonic()
    with pytest.raises(TransportTimeout, match=r"no answer to SELECT .* within 0.2 s") as info:
        blocking.transmit(SELECT_PPSE, timeout=0.2)
    assert time.monotonic() - start < HANG_BOUND
    assert isinstance(info.value, TimeoutError)
    assert events[0].error is info.value
    assert blocking.calls[0] != threading.current_thread().name  # ran on the watchdog


def test_a_still_blocked_backend_is_not_reentered(blocking: BlockingTransport) -> None:
    with pytest.raises(TransportTimeout):
        blocking.transmit(SELECT_PPSE, timeout=0.1)
    with pytest.raises(TransportTimeout, match="still blocked"):
        blocking.transmit(SELECT_PPSE, timeout=0.1)
    assert len(blocking.calls) == 1
    # Once the backend call comes back, the reader is usable again.
    blocking.block = False
    blocking.release.set()
    assert blocking.transmit(SELECT_PPSE, timeout=HANG_BOUND) == b"\x90\x00"
    assert len(blocking.calls) == 2


def test_a_watchdog_transport_returns_answers_and_errors(blocking: BlockingTransport) -> None:
    blocking.block = False
    assert blocking.transmit(SELECT_PPSE) == b"\x90\x00"

    class RaisingOnWatchdog(BlockingTransport):
        def _transmit(self, apdu: bytes, timeout: float) -> bytes:
            raise ConnectionResetError("reader reset")

    with RaisingOnWatchdog() as transport, pytest.raises(TransportError, match="reader reset"):
        transport.transmit(SELECT_PPSE)


def test_a_self_timing_backend_runs_on_the_callers_thread(echo: EchoTransport) -> None:
    seen: list[str] = []

    class Recording(EchoTransport):
        def _transmit(self, apdu: bytes, timeout: float) -> bytes:
            seen.append(threading.current_thread().name)
            assert 0 < timeout <= 1.5
            return b"\x90\x00"

    with Recording() as transport:
        transport.transmit(SELECT_PPSE, timeout=1.5)
    assert seen == [threading.current_thread().name]


def test_concurrent_callers_never_overlap_in_the_backend() -> None:
    active = 0
    overlaps = 0
    guard = threading.Lock()

    class Slow(EchoTransport):
        def _transmit(self, apdu: bytes, timeout: float) -> bytes:
            nonlocal active, overlaps
            with guard:
                active += 1
                overlaps += active > 1
            time.sleep(0.005)
            with guard:
                active -= 1
            return b"\x90\x00"

    errors: list[BaseException] = []

    def worker(transport: Transport) -> None:
        try:
            for _ in range(10):
                transport.transmit(SELECT_PPSE, timeout=HANG_BOUND)
        except BaseException as error:
            errors.append(error)

    with Slow() as transport:
        threads = [threading.Thread(target=worker, args=(transport,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(HANG_BOUND * 4)
    assert not errors and overlaps == 0


# --- card presence ------------------------------------------------------------------------


def test_card_present_is_false_when_closed() -> None:
    transport = EchoTransport()
    assert transport.card_present() is False
    transport.connect()
    assert transport.card_present() is True


def test_wait_for_card_returns_true_once_a_card_arrives(echo: EchoTransport) -> None:
    echo.present = False
    timer = threading.Timer(0.1, lambda: setattr(echo, "present", True))
    timer.start()
    try:
        assert echo.wait_for_card(HANG_BOUND) is True
    finally:
        timer.cancel()


def test_wait_for_card_raises_no_card_after_the_deadline(echo: EchoTransport) -> None:
    echo.present = False
    start = time.monotonic()
    with pytest.raises(NoCard, match=r"no card on echo: after 0.2 s"):
        echo.wait_for_card(0.2)
    assert time.monotonic() - start < HANG_BOUND


def test_wait_for_card_on_a_closed_transport_is_a_clear_error() -> None:
    with pytest.raises(LocalProtocolError, match="closed"):
        EchoTransport().wait_for_card(1)


def test_card_present_translates_backend_exceptions() -> None:
    class Flaky(EchoTransport):
        def _card_present(self) -> bool:
            raise OSError("bus error")

    with Flaky() as transport, pytest.raises(TransportError, match="bus error"):
        transport.card_present()


# --- durations in messages ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (4.99999, "5 s"),
        (0.999993, "1 s"),
        (0.25, "0.25 s"),
        (1.5, "1.5 s"),
        (1000.0, "1000 s"),
        (0.00025, "0.25 ms"),
    ],
)
def test_format_seconds_uses_three_significant_digits(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


def test_a_timeout_message_shows_a_rounded_duration(blocking: BlockingTransport) -> None:
    # A deadline computed from the clock arrives as 0.1999987 s: say "0.2 s".
    with pytest.raises(TransportTimeout) as info:
        blocking.transmit(SELECT_PPSE, timeout=0.1999987)
    assert str(info.value).split(" (")[0].endswith("within 0.2 s")


def test_no_card_message_shows_a_rounded_duration() -> None:
    with EchoTransport() as transport:
        transport.present = False
        with pytest.raises(NoCard, match=r"after 0\.1 s \("):
            transport.wait_for_card(0.0999993)
