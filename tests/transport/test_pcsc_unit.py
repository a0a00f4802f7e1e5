"""The PC/SC backend without pcscd: the error table, URIs, part 10 parsing, ACS firmware,
the deadline mechanism, and the vpcd bridge against an in-test vpcd (a real TCP socket
speaking vpcd's protocol).

The same code against the real pcscd + vpcd stack is in tests/e2e/test_pcsc_*.py.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from click.testing import CliRunner

pytest.importorskip("smartcard.scard")

from smartcard import scard

from contactless.atr import atr_from_ats
from contactless.cli import cli
from contactless.emulator.card import VirtualCard
from contactless.emulator.faults import parse_faults
from contactless.emulator.profiles import load_profile
from contactless.emulator.vpcd import (
    Answer,
    Control,
    FrameDecoder,
    StopReason,
    VpcdEngine,
    encode_frame,
    parse_address,
    serve,
)
from contactless.errors import (
    CardRemoved,
    ConfigError,
    ContactlessError,
    LocalProtocolError,
    NoCard,
    ReaderBusy,
    ReaderNotFound,
    RemoteProtocolError,
    ServiceUnavailable,
    TransportError,
    TransportTimeout,
)
from contactless.transport.base import ReaderIdentity
from contactless.transport.pcsc import (
    PcscUri,
    _decode_ifd_version,
    _decode_text,
    reader_uri,
)
from contactless.transport.pcsc_context import CallAborted, PcscContext, ReaderState
from contactless.transport.pcsc_errors import (
    AMBIGUOUS_CODES,
    PCSC_CODES,
    code_name,
    lookup,
    pcsc_error,
)
from contactless.transport.pcsc_features import (
    CM_IOCTL_GET_FEATURE_REQUEST,
    IOCTL_CCID_ESCAPE,
    get_features,
    parse_features,
    parse_tlv_properties,
    probe_reader,
    read_firmware,
    scard_ctl_code,
)
from contactless.transport.pcsc_monitor import EventKind, PcscMonitor, ReaderEvent

# --- the error table --------------------------------------------------------------------------


def test_every_code_in_the_table_has_pyscards_value_for_its_name() -> None:
    checked = 0
    for row in PCSC_CODES:
        value = getattr(scard, row.name, None)
        if value is None or row.code == 0x80100022:  # WinSCard's value of a pcsc-lite name
            continue
        assert value & 0xFFFFFFFF == row.code, row.name
        checked += 1
    assert checked >= 55


def test_every_pyscard_error_code_is_in_the_table() -> None:
    names = [name for name in dir(scard) if name.startswith(("SCARD_E_", "SCARD_F_", "SCARD_W_"))]
    missing = [name for name in names if lookup(getattr(scard, name)) is None]
    assert missing == []


@pytest.mark.parametrize(
    ("code", "error", "words"),
    [
        (0x8010001D, ServiceUnavailable, "start pcscd"),
        (0x8010002E, ReaderNotFound, "plug in the reader"),
        (0x80100009, ReaderNotFound, "contactless readers"),
        (0x8010000C, NoCard, "place the card"),
        (0x80100069, CardRemoved, "hold the card"),
        (0x8010000B, ReaderBusy, "shared mode"),
        (0x80100016, TransportError, "SCARD_E_NOT_TRANSACTED"),
        (0x8010000A, TransportTimeout, "SCARD_E_TIMEOUT"),
    ],
)
def test_codes_become_the_issues_errors_with_a_remedy(
    code: int, error: type[ContactlessError], words: str
) -> None:
    raised = pcsc_error(code, doing="SELECT PPSE", reader="ACS ACR122U 00 00")
    assert type(raised) is error
    assert words in str(raised)
    assert "SELECT PPSE" in raised.message and "ACS ACR122U 00 00" in raised.message
    assert raised.remedy


def test_unknown_codes_are_transport_errors_naming_the_code() -> None:
    raised = pcsc_error(0x8010ABCD, doing="transmit")
    assert type(raised) is TransportError
    assert "0x8010ABCD" in str(raised)


def test_signed_codes_are_looked_up_like_unsigned() -> None:
    signed = 0x8010001D - (1 << 32)
    assert lookup(signed) is lookup(0x8010001D)
    assert code_name(signed) == "SCARD_E_NO_SERVICE (0x8010001D)"


def test_only_the_removal_lookalikes_are_ambiguous() -> None:
    assert {code_name(code) for code in AMBIGUOUS_CODES} == {
        "SCARD_E_NOT_TRANSACTED (0x80100016)",
        "SCARD_F_COMM_ERROR (0x80100013)",
    }


def test_an_override_class_keeps_the_message_but_not_the_tables_remedy() -> None:
    raised = pcsc_error(0x80100016, doing="READ RECORD", error=CardRemoved)
    assert type(raised) is CardRemoved
    assert "SCARD_E_NOT_TRANSACTED" in raised.message
    assert raised.remedy == CardRemoved.default_remedy


# --- URIs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("pcsc:", PcscUri(name="")),
        ("PCSC:", PcscUri(name="")),
        ("pcsc:2", PcscUri(name=None, index=2)),
        ("pcsc:ACS ACR122U", PcscUri(name="ACS ACR122U")),
        ("pcsc:ACS%20ACR122U%2000%2000", PcscUri(name="ACS ACR122U 00 00")),
        ("pcsc:Odd%3Fname", PcscUri(name="Odd?name")),
        (
            "pcsc:?mode=exclusive&protocol=T1&disconnect=reset",
            PcscUri(name="", mode="exclusive", protocol="t1", disconnect="reset"),
        ),
        ("pcsc:0?mode=direct", PcscUri(name=None, index=0, mode="direct")),
    ],
)
def test_uris_parse(uri: str, expected: PcscUri) -> None:
    assert PcscUri.parse(uri) == expected


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("pcsc:?speed=fast", "valid options: disconnect, mode, protocol"),
        ("pcsc:?mode=sometimes", "use one of shared, exclusive, direct"),
        ("pcsc:?protocol=T2", "use one of any, T0, T1"),
        ("sim:visa", "not a pcsc: URI"),
    ],
)
def test_bad_uris_are_config_errors(uri: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        PcscUri.parse(uri)


@pytest.mark.parametrize(
    "name",
    [
        "ACS ACR122U PICC Interface 00 00",
        "Identiv uTrust 3700 F CL Reader [uTrust 3700 F CL Reader] (55041911202145) 00 00",
        "Name with ? and % and # and & 00 00",
    ],
)
def test_detect_uris_open_the_same_reader(name: str) -> None:
    uri = reader_uri(name)
    assert uri.startswith("pcsc:")
    assert PcscUri.parse(uri).name == name


def test_reader_attributes_decode() -> None:
    assert _decode_text(b"ACS\x00\x00") == "ACS"
    assert _decode_text(b"\x00") is None
    # 0x01020304: version 1.2, build 0x0304 = 772 (little-endian DWORD)
    assert _decode_ifd_version(bytes.fromhex("04030201")) == "1.2.772"
    assert _decode_ifd_version(b"\x01") is None


def test_reader_states_name_their_bits_and_counter() -> None:
    state = ReaderState("r", 0x00050122, b"\x3b")
    assert state.present and state.in_use and not state.exclusive and not state.unavailable
    assert state.changes == 5
    assert state.flags == ("changed", "present", "inuse")
    assert not ReaderState("r", scard.SCARD_STATE_PRESENT | scard.SCARD_STATE_MUTE, b"").present


# --- part 10 and firmware ---------------------------------------------------------------------


def test_ctl_codes_match_pcsc_lite_and_winscard() -> None:
    assert scard_ctl_code(3500, windows=False) == 0x42000DAC == IOCTL_CCID_ESCAPE
    assert scard_ctl_code(3400, windows=False) == 0x42000D48 == CM_IOCTL_GET_FEATURE_REQUEST
    assert scard_ctl_code(3500, windows=False) == scard.SCARD_CTL_CODE(3500)
    assert scard_ctl_code(3500, windows=True) == 0x003136B0  # published IOCTL_CCID_ESCAPE


def test_feature_list_parses_and_rejects_truncation() -> None:
    # A libccid answer: VERIFY_PIN_DIRECT, MODIFY_PIN_DIRECT, GET_TLV_PROPERTIES, CCID_ESC
    raw = bytes.fromhex("06044234 2DB2 07044234 2DB3 12044234 2DB8 30040000 0001".replace(" ", ""))
    assert parse_features(raw) == {
        "VERIFY_PIN_DIRECT": 0x42342DB2,
        "MODIFY_PIN_DIRECT": 0x42342DB3,
        "GET_TLV_PROPERTIES": 0x42342DB8,
        "FEATURE_0x30": 1,
    }
    assert parse_features(b"") == {}
    with pytest.raises(RemoteProtocolError, match="offset 6"):
        parse_features(bytes.fromhex("1304420000011304"))
    with pytest.raises(RemoteProtocolError, match="offset 0"):
        parse_features(b"\x13")


def test_tlv_properties_parse_little_endian_and_text() -> None:
    raw = bytes.fromhex(
        "0A 04 00 01 00 00 08 05 31 2E 32 00 00 0B 02 2F 07 FF 01 AA".replace(" ", "")
    )
    assert parse_tlv_properties(raw) == {
        "dwMaxAPDUDataSize": 256,
        "sFirmwareID": "1.2",
        "wIdVendor": 0x072F,
        "property_0xFF": "AA",
    }
    with pytest.raises(RemoteProtocolError, match="announces 4 bytes"):
        parse_tlv_properties(bytes.fromhex("0A0401"))


@dataclass
class FakeReader:
    """A reader with scripted control/transmit answers (the ReaderControl protocol)."""

    reader: str | None
    answers: dict[tuple[str, int, bytes], bytes | ContactlessError] = field(default_factory=dict)
    identity: ReaderIdentity = field(default_factory=ReaderIdentity)
    sent: list[tuple[str, int, bytes]] = field(default_factory=list)

    def _answer(self, key: tuple[str, int, bytes]) -> bytes:
        self.sent.append(key)
        answer = self.answers.get(key, TransportError("SCARD_E_UNSUPPORTED_FEATURE"))
        if isinstance(answer, ContactlessError):
            raise answer
        return answer

    def control(self, code: int, data: bytes = b"", *, timeout: float | None = None) -> bytes:
        return self._answer(("control", code, data))

    def transmit(self, apdu: bytes, *, timeout: float | None = None) -> bytes:
        return self._answer(("transmit", 0, apdu))


ACS_FIRMWARE = bytes.fromhex("E000001800")


def test_acr122u_firmware_comes_from_the_pseudo_apdu() -> None:
    reader = FakeReader(
        "ACS ACR122U PICC Interface 00 00",
        {("transmit", 0, bytes.fromhex("FF00480000")): b"ACR122U215"},
    )
    finding = read_firmware(reader)
    assert (finding.status, finding.value) == ("ok", "ACR122U215")


def test_acr1252_firmware_goes_to_the_advertised_escape_code() -> None:
    escape_code = 0x42000001  # libccid's IOCTL_SMARTCARD_VENDOR_IFD_EXCHANGE
    answer = bytes.fromhex("E10000000F") + b"ACR1252U_V101.0"
    reader = FakeReader(
        "ACS ACR1252 Dual Reader PICC 00 00",
        {
            ("control", CM_IOCTL_GET_FEATURE_REQUEST, b""): b"\x13\x04" + escape_code.to_bytes(4),
            ("control", escape_code, ACS_FIRMWARE): answer,
        },
    )  # fmt: skip
    findings = probe_reader(reader)
    assert findings.firmware == "ACR1252U_V101.0"
    assert findings.features == {"CCID_ESC_COMMAND": escape_code}
    assert [f.check for f in findings.findings] == ["features", "firmware"]


def test_without_the_escape_feature_3500_is_tried_and_a_refusal_says_how_to_enable_it() -> None:
    reader = FakeReader("ACS ACR1281 1S Dual Reader 00 00")
    findings = probe_reader(reader)
    assert ("control", IOCTL_CCID_ESCAPE, ACS_FIRMWARE) in reader.sent
    by_check = {finding.check: finding for finding in findings.findings}
    assert by_check["features"].status == "skipped"
    assert by_check["escape"].status == "warning"
    assert by_check["firmware"].status == "failed"
    assert "ifdDriverOptions" in (by_check["firmware"].remedy or "")
    assert findings.to_json()["firmware"] is None


def test_a_status_word_is_not_a_firmware_version() -> None:
    reader = FakeReader("ACR122U", {("transmit", 0, bytes.fromhex("FF00480000")): b"\x6a\x81"})
    finding = read_firmware(reader)
    assert finding.status == "failed" and "6A81" in finding.message


def test_unknown_readers_skip_the_firmware_check_and_part10_firmware_id_is_used() -> None:
    reader = FakeReader(
        "Generic CCID Reader 00 00",
        {
            ("control", CM_IOCTL_GET_FEATURE_REQUEST, b""): bytes.fromhex("1204 42000002"),
            ("control", 0x42000002, b""): bytes.fromhex("0803") + b"2.1",
        },
    )
    findings = probe_reader(reader)
    assert findings.firmware == "2.1"
    assert findings.properties == {"sFirmwareID": "2.1"}
    assert {f.check: f.status for f in findings.findings}["firmware"] == "skipped"
    assert get_features(FakeReader("x")) == {}


# --- the deadline mechanism -------------------------------------------------------------------


@pytest.fixture
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    one, two = socket.socketpair()
    yield one, two
    one.close()
    two.close()


def test_the_watchdog_aborts_a_blocked_call_through_its_socket(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    # Stands in for libpcsclite: a call blocked reading the context's socket returns once
    # the watchdog shuts that socket down (here a duplicate of it, as in establish()).
    client, _server = socket_pair
    context = PcscContext(0, client.dup())
    started = time.monotonic()
    with pytest.raises(CallAborted):
        context.call(client.recv, 1, deadline=time.monotonic() + 0.2)
    assert time.monotonic() - started < 5.0
    assert not context.alive
    with pytest.raises(CallAborted):  # dead contexts refuse further calls
        context.call(len, b"", deadline=time.monotonic() + 1)
    context.release()


def test_calls_that_finish_in_time_are_untouched(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = socket_pair
    context = PcscContext(0, client.dup())
    server.sendall(b"x")
    assert context.call(client.recv, 1, deadline=time.monotonic() + 5) == b"x"
    time.sleep(0.05)  # a few watchdog ticks after the call: nothing may be aborted
    assert context.alive
    context.release()


def test_without_a_socket_a_worker_thread_enforces_the_deadline() -> None:
    context = PcscContext(0, None)
    never = threading.Event()
    assert context.call(lambda: 42, deadline=time.monotonic() + 5) == 42
    started = time.monotonic()
    with pytest.raises(CallAborted):
        context.call(never.wait, 30, deadline=time.monotonic() + 0.2)
    assert time.monotonic() - started < 5.0
    never.set()  # the abandoned worker returns and releases the context itself
    context.release()


def test_pyscard_exceptions_do_not_leak() -> None:
    context = PcscContext(0, None)

    def broken() -> None:
        raise TypeError("Expected a list object.")

    with pytest.raises(TransportError, match="inside pyscard: TypeError"):
        context.call(broken, deadline=time.monotonic() + 5)
    context.release()


# --- the monitor's change detection -----------------------------------------------------------


def test_monitor_turns_state_changes_into_events() -> None:
    seen: list[ReaderEvent] = []
    monitor = PcscMonitor(callback=seen.append)
    name = "Reader 00 00"
    empty = scard.SCARD_STATE_EMPTY
    present = scard.SCARD_STATE_PRESENT
    monitor._known[name] = ReaderState(name, (1 << 16) | empty, b"")
    monitor._update(ReaderState(name, (2 << 16) | present, b"\x3b\x01"))
    monitor._update(ReaderState(name, (2 << 16) | present | scard.SCARD_STATE_INUSE, b"\x3b\x01"))
    monitor._update(ReaderState(name, (4 << 16) | present, b"\x3b\x02"))  # swapped unseen
    monitor._update(ReaderState(name, (5 << 16) | empty, b""))
    assert [(event.kind, event.atr) for event in seen] == [
        (EventKind.CARD_INSERTED, b"\x3b\x01"),
        (EventKind.CARD_REMOVED, None),
        (EventKind.CARD_INSERTED, b"\x3b\x02"),
        (EventKind.CARD_REMOVED, None),
    ]
    assert seen[0].uri == reader_uri(name)
    assert str(seen[0]) == "card_inserted 'Reader 00 00' ATR 3B01"


def test_a_failing_callback_does_not_stop_the_events() -> None:
    seen: list[ReaderEvent] = []

    def broken(event: ReaderEvent) -> None:
        raise RuntimeError("callback bug")

    monitor = PcscMonitor(callback=broken)
    monitor.add_callback(seen.append)
    monitor._emit(ReaderEvent(EventKind.SERVICE_LOST))
    assert [event.kind for event in seen] == [EventKind.SERVICE_LOST]
    assert monitor.get(0.01) == ReaderEvent(EventKind.SERVICE_LOST)


def _outcome_within(seconds: float, call: Callable[[], object]) -> object:
    """What ``call()`` returned or raised, run on a thread; fails instead of hanging."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still waiting after {seconds} s"
    return outcome[0]


def test_a_monitor_never_started_refuses_to_wait_forever() -> None:
    monitor = PcscMonitor()
    error = _outcome_within(5.0, monitor.get)
    assert isinstance(error, LocalProtocolError)
    assert "start the monitor first" in str(error)
    error = _outcome_within(5.0, lambda: next(iter(monitor)))
    assert isinstance(error, LocalProtocolError)
    error = _outcome_within(5.0, lambda: monitor.get(30.0))
    assert isinstance(error, LocalProtocolError)


def test_a_monitor_never_started_still_hands_out_what_was_emitted() -> None:
    monitor = PcscMonitor()
    monitor._emit(ReaderEvent(EventKind.SERVICE_LOST))
    assert _outcome_within(5.0, monitor.get) == ReaderEvent(EventKind.SERVICE_LOST)
    assert isinstance(_outcome_within(5.0, monitor.get), LocalProtocolError)


def test_get_returns_once_the_monitor_thread_has_ended() -> None:
    monitor = PcscMonitor()
    monitor._thread = threading.Thread(target=lambda: None)  # a thread that already ended
    monitor._thread.start()
    monitor._thread.join()
    assert _outcome_within(5.0, monitor.get) is None


# --- the vpcd bridge, sans-I/O ----------------------------------------------------------------


def test_frames_round_trip_fed_one_byte_at_a_time() -> None:
    payloads = [b"\x04", bytes(300), b"\x00\xa4\x04\x00", b""]
    stream = b"".join(encode_frame(payload) for payload in payloads)
    decoder = FrameDecoder()
    got: list[bytes] = []
    for byte in stream:
        got += decoder.feed(bytes([byte]))
    assert got == payloads
    assert decoder.pending == 0
    with pytest.raises(LocalProtocolError, match="65535"):
        encode_frame(bytes(70000))


@pytest.fixture
def visa() -> VirtualCard:
    return VirtualCard(load_profile("visa"))


SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")


def test_engine_answers_control_messages_and_reader_commands(visa: VirtualCard) -> None:
    engine = VpcdEngine(visa)
    assert engine.handle(bytes([Control.ATR])).reply == atr_from_ats(visa.ats) == visa.atr
    assert engine.handle(bytes([Control.POWER_ON])).answer is Answer.NOTHING
    assert engine.handle(bytes.fromhex("FFCA000000")).reply == visa.uid + b"\x90\x00"
    historical = engine.handle(bytes.fromhex("FFCA010000")).reply
    assert historical == visa.atr[4:-1] + b"\x90\x00"
    assert engine.handle(bytes.fromhex("FFCA000002")).reply == bytes([0x6C, len(visa.uid)])
    assert engine.handle(bytes.fromhex("FF00480000")).reply == b"\x6a\x81"  # no firmware set
    assert engine.handle(SELECT_PPSE).reply == VirtualCard(load_profile("visa")).process(
        SELECT_PPSE
    )
    assert engine.apdus == 1  # reader commands are not card APDUs


def test_engine_applies_the_faults_counted_from_power_up(visa: VirtualCard) -> None:
    engine = VpcdEngine(visa, parse_faults("remove_after=2&firmware=ACR122U215&latency_ms=30"))
    assert engine.handle(bytes.fromhex("FF00480000")).reply == b"ACR122U215"
    first = engine.handle(SELECT_PPSE)
    assert (first.answer, first.delay) == (Answer.REPLY, 0.03)
    engine.handle(SELECT_PPSE)
    assert engine.handle(SELECT_PPSE).answer is Answer.REMOVE
    engine.handle(bytes([Control.RESET]))  # a power cycle starts the count again
    assert engine.handle(SELECT_PPSE).answer is Answer.REPLY

    hang = VpcdEngine(visa, parse_faults("hang_after=1"))
    hang.handle(SELECT_PPSE)
    assert hang.handle(SELECT_PPSE).answer is Answer.HANG
    assert hang.handle(bytes([Control.ATR])).answer is Answer.HANG  # nothing at all

    mute = VpcdEngine(visa, parse_faults("mute_after=0"))
    assert mute.handle(SELECT_PPSE).answer is Answer.NOTHING
    assert mute.handle(bytes([Control.ATR])).answer is Answer.REPLY  # the reader still is

    noisy = VpcdEngine(visa, parse_faults("error_rate=1&seed=3"))
    assert len(noisy.handle(SELECT_PPSE).reply) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:35963", ("127.0.0.1", 35963)),
        ("localhost", ("localhost", 35963)),
        (":35964", ("127.0.0.1", 35964)),
        ("35964", ("127.0.0.1", 35964)),
        ("[::1]:35963", ("::1", 35963)),
    ],
)
def test_vpcd_addresses_parse(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["host:port", "host:70000", "host:0"])
def test_bad_vpcd_addresses_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_address(text)


# --- the vpcd bridge against an in-test vpcd --------------------------------------------------


class FakeVpcd:
    """vpcd's side of the wire: listens, accepts the card, sends frames, reads answers."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(10)
        self.port = self.server.getsockname()[1]
        self.card: socket.socket | None = None
        self.decoder = FrameDecoder()

    def accept(self) -> None:
        self.card, _ = self.server.accept()
        self.card.settimeout(10)

    def send(self, payload: bytes) -> None:
        assert self.card is not None
        self.card.sendall(encode_frame(payload))

    def receive(self) -> bytes:
        assert self.card is not None
        while True:
            frames = self.decoder.feed(self.card.recv(4096) or b"")
            if frames:
                return frames[0]

    def exchange(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.receive()

    def close(self) -> None:
        if self.card is not None:
            self.card.close()
        self.server.close()


@pytest.fixture
def fake_vpcd() -> Iterator[FakeVpcd]:
    vpcd = FakeVpcd()
    yield vpcd
    vpcd.close()


def start_bridge(
    card: VirtualCard, port: int, **options: object
) -> tuple[threading.Thread, threading.Event, list[object]]:
    stop = threading.Event()
    result: list[object] = []
    thread = threading.Thread(
        target=lambda: result.append(serve(card, ("127.0.0.1", port), stop=stop, **options)),  # type: ignore[arg-type]
        daemon=True,
    )
    thread.start()
    return thread, stop, result


def test_bridge_serves_a_card_over_tcp_and_stops_promptly(
    fake_vpcd: FakeVpcd, visa: VirtualCard
) -> None:
    thread, stop, result = start_bridge(visa, fake_vpcd.port)
    fake_vpcd.accept()
    assert fake_vpcd.exchange(bytes([Control.ATR])) == visa.atr
    fake_vpcd.send(bytes([Control.POWER_ON]))  # no answer expected
    fake_vpcd.send(bytes([Control.RESET]))
    expected = VirtualCard(load_profile("visa")).process(SELECT_PPSE)
    assert fake_vpcd.exchange(SELECT_PPSE) == expected
    started = time.monotonic()
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 5
    assert result == [StopReason.STOPPED]


def test_bridge_removes_the_card_by_closing_the_connection(
    fake_vpcd: FakeVpcd, visa: VirtualCard
) -> None:
    thread, _stop, result = start_bridge(
        visa, fake_vpcd.port, faults=parse_faults("remove_after=1")
    )
    fake_vpcd.accept()
    assert fake_vpcd.exchange(SELECT_PPSE)[-2:] == b"\x90\x00"
    fake_vpcd.send(SELECT_PPSE)
    assert fake_vpcd.card is not None
    assert fake_vpcd.card.recv(10) == b""  # closed: the card left the field
    thread.join(5)
    assert result == [StopReason.REMOVED]


def test_bridge_reconnects_when_vpcd_comes_back_and_can_give_up(
    fake_vpcd: FakeVpcd, visa: VirtualCard
) -> None:
    thread, stop, result = start_bridge(visa, fake_vpcd.port)
    fake_vpcd.accept()
    assert fake_vpcd.card is not None
    fake_vpcd.card.close()  # pcscd stopped
    fake_vpcd.accept()  # ... and the card came back by itself
    assert fake_vpcd.exchange(bytes([Control.ATR])) == visa.atr
    stop.set()
    thread.join(5)
    assert result == [StopReason.STOPPED]

    thread, _stop, result = start_bridge(visa, fake_vpcd.port, reconnect=False)
    fake_vpcd.accept()
    fake_vpcd.card.close()
    thread.join(5)
    assert result == [StopReason.DISCONNECTED]


def test_bridge_without_vpcd_gives_up_after_the_connect_timeout(visa: VirtualCard) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ServiceUnavailable, match="vsmartcard-vpcd"):
        serve(visa, ("127.0.0.1", port), connect_timeout=0.3)


# --- contactless emulate ----------------------------------------------------------------------


def test_emulate_needs_a_serving_mode() -> None:
    result = CliRunner().invoke(cli, ["emulate", "--card", "visa"])
    assert result.exit_code == 2
    assert "--vpcd" in result.output


def test_emulate_reports_bad_faults_and_profiles() -> None:
    runner = CliRunner()
    bad_fault = runner.invoke(cli, ["emulate", "--card", "visa", "--vpcd", ":1", "--fault", "x=1"])
    assert bad_fault.exit_code == 2 and "valid options" in bad_fault.output
    twice = runner.invoke(
        cli,
        [
            "emulate",
            "--card",
            "visa",
            "--vpcd",
            ":1",
            "--hang-after",
            "1",
            "--fault",
            "hang_after=2",
        ],
    )
    assert twice.exit_code == 2 and "hang_after" in twice.output
    bad_card = runner.invoke(cli, ["emulate", "--card", "nosuchbrand", "--vpcd", ":1"])
    assert bad_card.exit_code == 2 and "visa" in bad_card.output


def test_emulate_serves_until_vpcd_goes_away_with_once(fake_vpcd: FakeVpcd) -> None:
    outcome: list[object] = []
    runner = CliRunner()
    args = ["emulate", "--card", "amex", "--vpcd", f"127.0.0.1:{fake_vpcd.port}", "--once",
            "--fault", "firmware=ACR122U215"]  # fmt: skip
    thread = threading.Thread(target=lambda: outcome.append(runner.invoke(cli, args)), daemon=True)
    thread.start()
    fake_vpcd.accept()
    assert fake_vpcd.exchange(bytes.fromhex("FF00480000")) == b"ACR122U215"
    assert fake_vpcd.exchange(bytes([Control.ATR])) == VirtualCard(load_profile("amex")).atr
    assert fake_vpcd.card is not None
    fake_vpcd.card.close()
    thread.join(10)
    [result] = outcome
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "vpcd closed the connection" in result.output  # type: ignore[attr-defined]
