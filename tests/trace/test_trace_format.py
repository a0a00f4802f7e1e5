"""The trace format v1: reading, writing, validation errors naming the line, the terminal
settings in the header, and the Recorder tracer."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from trace_testkit import FIXED_TIME, UNPREDICTABLE_NUMBER, fixed_config, record_trace

from contactless.emv.terminal import SupportedAid, TerminalConfig
from contactless.errors import ConfigError
from contactless.session import Card
from contactless.testing import replay
from contactless.trace import (
    Exchange,
    PinnedRandom,
    Recorder,
    Trace,
    TraceEvent,
    TraceHeader,
    dumps,
    loads,
    pin_terminal,
    read_trace,
    terminal_from_header,
    terminal_header,
    write_trace,
)
from contactless.transport import open as open_transport

HEADER = '{"format": "contactless-trace", "version": 1}'

#: A Visa read typed by hand from a log (the commands the flow sends for these answers,
#: with spaces and lower case as people write them): only format, version, c and r.
HAND_TYPED = """\
{"format": "contactless-trace", "version": 1}
{"c": "00 a4 04 00 0e 32 50 41 59 2e 53 59 53 2e 44 44 46 30 31 00", "r": "6A82"}
{"c": "00A4040007A000000003101000", "r": "6F118407A0000000031010A506500456495341 90 00"}
{"c": "80A8000002830000", "r": "800A18000801010010010100 9000"}
{"c": "00B2010C00", "r": "7015571347617390010100 10D28122011010000000000F 9000"}
{"c": "00b2011400", "r": "70105F2403281231 5A084761739001010010 9000"}
"""


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        loads(text, source="t.jsonl")
    return str(caught.value)


def test_a_trace_typed_by_hand_with_only_c_and_r_replays() -> None:
    trace = loads(HAND_TYPED, source="hand")
    data = replay(trace, config=TerminalConfig())  # live clock and RNG: nothing pinned
    assert data.pan == "4761739001010010"
    assert data.expiry == "2028-12"
    assert data.apdus == 5


def test_reading_keeps_every_field_and_writing_gives_it_back(tmp_path: Path) -> None:
    text = (
        '{"format": "contactless-trace", "version": 1, "created": "2024-05-17T12:00:00+00:00", '
        '"transport": "pcsc:ACS ACR122U", "reader": "ACS ACR122U", "atr": "3B8F8001", '
        '"ats": "0C78", "protocol": "T=1", "redacted": true, "library": "contactless 0.1.0", '
        '"note": "hello", "flow": "read", "x-custom": [1, 2]}\n'
        '{"c": "00A4040000", "r": "9000", "ms": 1.5, "note": "select"}\n'
        '{"event": "card_removed", "c": "00B2010C00", "ms": 3}\n'
        '{"event": "reset", "atr": "3B00"}\n'
    )
    trace = loads(text, source="full.jsonl")
    header = trace.header
    assert header.atr == bytes.fromhex("3B8F8001") and header.ats == bytes.fromhex("0C78")
    assert (header.protocol, header.redacted, header.flow) == ("T=1", True, "read")
    assert header.extra == {"x-custom": [1, 2]}
    assert trace.entries == (
        Exchange(bytes.fromhex("00A4040000"), b"\x90\x00", 1.5, "select"),
        TraceEvent("card_removed", bytes.fromhex("00B2010C00"), 3.0),
        TraceEvent("reset", extra={"atr": "3B00"}),
    )
    assert [entry.line for entry in trace.entries] == [2, 3, 4]
    with pytest.raises(ConfigError, match=r"sub does not exist"):
        write_trace(trace, tmp_path / "sub" / "out.jsonl")  # folders are never created
    (tmp_path / "sub").mkdir()
    write_trace(trace, tmp_path / "sub" / "out.jsonl")
    again = read_trace(tmp_path / "sub" / "out.jsonl")
    assert again == trace
    assert [json.loads(line) for line in dumps(again).splitlines()] == [
        json.loads(line) for line in text.splitlines()
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "line 1: the trace is empty"),
        ('{"c": "00A4040000", "r": "9000"}', "line 1: the first line must be the header"),
        ('{"format": "pcap", "version": 1}', "found format 'pcap'"),
        ('{"format": "contactless-trace"}', 'line 1: the header has no "version"'),
        ('{"format": "contactless-trace", "version": 2}', "version 2 is not supported"),
        ('{"format": "contactless-trace", "version": "2.0"}', "version 2.0 is not supported"),
        ('{"format": "contactless-trace", "version": "one"}', '"version" must be an integer'),
        (HEADER + '\n{"c": "00A4040000"}', 'line 2: an exchange needs "c" (command) and "r"'),
        (HEADER + '\n{"r": "9000"}', 'line 2: an exchange needs "c"'),
        (HEADER + '\n\n{"c": "00A4040000", "r": "90G0"}', "line 3: \"r\" is not hex: 'G'"),
        (HEADER + '\n{"c": "00A404000", "r": "9000"}', 'line 2: "c" has an odd number'),
        (HEADER + '\n{"c": 5, "r": "9000"}', 'line 2: "c" must be a hex string'),
        (HEADER + '\n{"c": "00A4", "r": "9000"}', 'line 2: "c" must hold CLA INS P1 P2'),
        (HEADER + '\n{"event": "explosion"}', "line 2: unknown event 'explosion'"),
        (HEADER + "\n[1, 2]", "line 2: expected a JSON object, got list"),
        (HEADER + "\n{oops", "line 2: not JSON"),
        (HEADER + '\n{"c": "00A4040000", "r": "9000", "ms": -1}', 'line 2: "ms" must be'),
        ('{"format": "contactless-trace", "version": 1, "atr": "3B8"}', '"atr" has an odd'),
        ('{"format": "contactless-trace", "version": 1, "redacted": "yes"}', '"redacted" must'),
        ('{"format": "contactless-trace", "version": 1, "flow": "dance"}', '"flow" must be'),
        (HEADER + '\n{"c": "00A4040000", "r": "90"}', 'line 2: "r" must hold the answer\'s SW1'),
        (HEADER + '\n{"c": "00A4040000", "r": ""}', 'line 2: "r" must hold the answer\'s SW1'),
        ('{"format": "contactless-trace", "version": "1.x"}', '"version" must be an integer'),
        ('{"format": "contactless-trace", "version": "v1"}', '"version" must be an integer'),
        ('{"format": "contactless-trace", "version": ""}', '"version" must be an integer'),
        ('{"format": "contactless-trace", "version": 1.0}', '"version" must be an integer'),
        ('{"format": "contactless-trace", "version": true}', '"version" must be an integer'),
    ],
)
def test_bad_traces_are_config_errors_naming_the_line(text: str, expected: str) -> None:
    message = _error(text)
    assert message.startswith("t.jsonl: line ")
    assert expected in message


def test_minor_versions_of_version_1_are_read() -> None:
    assert loads('{"format": "contactless-trace", "version": "1.4"}').header.version == 1
    # As docs/trace-format.md says: the text "1" is major version 1 too.
    assert loads('{"format": "contactless-trace", "version": "1"}').header.version == 1


def test_an_answer_without_sw1_sw2_is_recorded_as_an_error_event() -> None:
    from contactless.trace import Recorder, TraceEvent
    from contactless.transport.base import ExchangeEvent

    recorder = Recorder()
    recorder(ExchangeEvent(bytes.fromhex("00A4040000"), b"\x90", 0.001, None))
    (entry,) = recorder.entries
    assert isinstance(entry, TraceEvent) and entry.kind == "error"
    assert entry.extra["answer"] == "90"
    # ... so the trace it writes reads back.
    assert loads(dumps(recorder.trace())).entries == (entry,)


def test_blank_lines_are_skipped_and_lines_keep_their_numbers() -> None:
    trace = loads(HEADER + '\n\n   \n{"c": "00A4040000", "r": "9000"}\n\n')
    assert trace.entries[0].line == 4


def test_missing_and_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        read_trace(tmp_path / "nope.jsonl")
    with pytest.raises(ConfigError, match="is a directory"):
        read_trace(tmp_path)
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_trace(tmp_path / "bin.jsonl")


def test_write_trace_replaces_the_file_in_one_step(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("old and broken")
    write_trace(Trace(TraceHeader(note="new")), path)
    assert read_trace(path).header.note == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["t.jsonl"]  # no temporary left


# --- the terminal settings in the header ------------------------------------------------------


def test_terminal_settings_survive_the_header() -> None:
    config = fixed_config(
        amount=250,
        country=826,
        ttq=bytes.fromhex("46004000"),
        supported_aids=(SupportedAid(bytes.fromhex("A0000000041010"), False, "MC"),),
        extra_data={b"\x9f\x09": b"\x00\x02"},
        merchant_name="SHOP",
    )
    header = terminal_header(config)
    assert header["fixed_time"] == "2024-05-17T12:00:00"
    assert header["unpredictable_number"] == "1A2B3C4D"
    assert header["ttq"] == "46004000" and header["extra_data"] == {"9F09": "0002"}
    back = terminal_from_header(json.loads(json.dumps(header)))
    assert back == config  # every setting (clock and rng are not compared)...
    assert back.now() == FIXED_TIME  # ...and the pinned sources of variation
    assert back.random_bytes(4) == UNPREDICTABLE_NUMBER


def test_pin_terminal_freezes_the_clock_and_the_unpredictable_number() -> None:
    pinned = pin_terminal(TerminalConfig())
    assert pinned.now() == pinned.now()
    assert pinned.now().microsecond == 0
    assert pinned.random_bytes(4) == pinned.random_bytes(4)
    assert terminal_header(pinned)["unpredictable_number"] == pinned.random_bytes(4).hex().upper()


def test_a_pinned_number_asked_for_another_size_repeats() -> None:
    assert PinnedRandom(b"\x01\x02")(5) == b"\x01\x02\x01\x02\x01"
    with pytest.raises(ConfigError):
        PinnedRandom(b"")


@pytest.mark.parametrize(
    ("terminal", "expected"),
    [
        ({"amount": "100"}, 'terminal "amount": expected int'),
        ({"ttq": "XYZ"}, 'terminal "ttq": the value is not hex'),
        ({"fixed_time": "yesterday"}, "is not an ISO date-time"),
        ({"colour": "blue"}, 'terminal "colour": unknown setting'),
        ({"ttq": "3600"}, "ttq"),  # 2 bytes: TerminalConfig's own check
        ({"supported_aids": "A000"}, "expected a list"),
    ],
)
def test_bad_terminal_settings_name_the_key(terminal: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match="line 1") as caught:
        terminal_from_header(terminal, source="t.jsonl")
    assert expected in str(caught.value)


def test_a_header_without_terminal_settings_gives_the_defaults() -> None:
    assert terminal_from_header(None) == TerminalConfig()


# --- the Recorder -----------------------------------------------------------------------------


def test_recorder_records_every_exchange_and_what_the_reader_said() -> None:
    trace = record_trace("sim:visa")
    header = trace.header
    assert header.transport == "sim:visa"
    assert header.atr == bytes.fromhex("3B87800173C840000090006D")
    assert header.ats is not None and header.reader and "simulated" in header.reader
    assert header.library and header.created
    assert [e.command.hex().upper()[:8] for e in trace.exchanges] == [
        "00A40400",
        "00A40400",
        "80A80000",
        "00B2010C",
        "00B20114",
        "00B20214",
    ]
    assert all(e.ms is not None and e.ms >= 0 for e in trace.exchanges)
    assert all(e.response[-2:] == b"\x90\x00" for e in trace.exchanges)


@pytest.mark.parametrize(
    ("uri", "kind", "extra_keys"),
    [
        ("sim:visa?remove_after=3", "card_removed", set()),
        ("sim:visa?mute_after=1", "timeout", set()),
        ("sim:visa?error_rate=1&seed=1", "error", {"type", "message"}),
    ],
)
def test_failed_exchanges_become_events(uri: str, kind: str, extra_keys: set[str]) -> None:
    trace = record_trace(uri)
    last = trace.entries[-1]
    assert isinstance(last, TraceEvent)
    assert last.kind == kind
    assert last.command is not None and last.ms is not None
    assert set(last.extra) == extra_keys
    if kind == "error":
        assert last.extra["type"] == "TransportError"


def test_recorder_attaches_through_a_card_session_and_detaches() -> None:
    recorder = Recorder()
    with open_transport("sim:amex") as reader:
        card = Card(reader)
        recorder.attach(card)
        card.transmit_raw(bytes.fromhex("00A404000E325041592E5359532E444446303100"))
        recorder.detach()
        card.transmit_raw(bytes.fromhex("00A404000E325041592E5359532E444446303100"))
    assert len(recorder.entries) == 1
    recorder.mark("card_inserted", note="tapped again")
    assert recorder.entries[-1] == TraceEvent("card_inserted", note="tapped again")
    with pytest.raises(ConfigError, match="unknown trace event"):
        recorder.mark("explosion")


def test_recorded_header_fields_can_be_overridden() -> None:
    recorder = Recorder()
    trace = recorder.trace(note="n", flow="read", created="2024-01-01T00:00:00+00:00")
    assert (trace.header.note, trace.header.flow, trace.header.created) == (
        "n",
        "read",
        "2024-01-01T00:00:00+00:00",
    )
    assert repr(trace) == "<Trace trace: 0 exchange(s), 0 event(s)>"


def test_terminal_config_clock_is_reused_not_called_at_import() -> None:
    # The header's fixed_time is the clock's value; a live clock gives "now".
    header = terminal_header(TerminalConfig(clock=lambda: datetime(2030, 1, 2, 3, 4, 5)))
    assert header["fixed_time"] == "2030-01-02T03:04:05"
