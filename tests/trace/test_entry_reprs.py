"""Trace entries print no card data: the reprs of :class:`Exchange` and :class:`TraceEvent`
(and so of a :class:`Recorder`'s entries) name the command, the status word and the data
length, never the bytes, as the :class:`Trace` repr already did."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

from trace_testkit import fixed_config, record_trace

from contactless.errors import CardRemoved
from contactless.reader import read_card
from contactless.trace import Exchange, Recorder, Trace, TraceEvent, read_trace, write_trace
from visa_card import VISA_NAME, VISA_PAN, VISA_TRACK2, visa_data_in

READ_RECORD_1 = bytes.fromhex("00B2010C00")  # READ RECORD SFI 1 record 1: track 2 and name


def _read_record(trace: Trace) -> Exchange:
    return next(entry for entry in trace.exchanges if entry.command == READ_RECORD_1)


def test_the_visa_record_holds_what_a_repr_of_its_bytes_would_leak() -> None:
    # So the tests below can fail: the bytes' repr and to_json's hex show it all.
    exchange = _read_record(record_trace("sim:visa"))
    assert visa_data_in(repr(exchange.response)) == [
        VISA_NAME,
        repr(bytes.fromhex(VISA_PAN))[2:-1],
        repr(bytes.fromhex(VISA_TRACK2))[2:-1],
    ]
    assert visa_data_in(str(exchange.to_json())) == [
        VISA_PAN,
        VISA_TRACK2,
        VISA_NAME.encode().hex().upper(),
    ]


def test_a_recorders_entries_print_no_card_data() -> None:
    recorder = Recorder()
    # The card leaves before the last READ RECORD: the entries end with an event.
    with contextlib.suppress(CardRemoved):
        read_card(
            "sim:visa?remove_after=5",
            config=fixed_config(),
            wait=2.0,
            timeout=2.0,
            on_card=recorder.attach,
        )
    entries = recorder.entries
    assert len(entries) == 6 and visa_data_in(repr(entries[3].to_json()))
    shown = "\n".join(
        [repr(entries), str(entries), repr(tuple(entries)), *(f"{entry}" for entry in entries)]
    )
    assert visa_data_in(shown) == []
    assert "<Exchange READ RECORD SFI 1 record 1 -> SW 9000, 67 data bytes, " in shown
    assert "<TraceEvent card_removed during READ RECORD SFI 2 record 2, " in shown


def test_entries_read_from_a_file_print_their_line_and_no_card_data(tmp_path: Path) -> None:
    path = tmp_path / "visa.jsonl"
    write_trace(record_trace("sim:visa"), path)  # not redacted: the card data is in the file
    assert VISA_TRACK2 in path.read_text()
    trace = read_trace(path)
    shown = repr(list(trace.entries))
    assert visa_data_in(shown) == []
    record = _read_record(trace)
    assert repr(dataclasses.replace(record, ms=0.25)) == (
        "<Exchange READ RECORD SFI 1 record 1 -> SW 9000, 67 data bytes, 0.25 ms, line 5>"
    )


def test_exchange_repr_formats() -> None:
    record = _read_record(record_trace("sim:visa"))
    exchange = Exchange(READ_RECORD_1, record.response, 1.5, "second tap", line=4)
    assert repr(exchange) == (
        "<Exchange READ RECORD SFI 1 record 1 -> SW 9000, 67 data bytes, 1.5 ms, "
        "note 'second tap', line 4>"
    )
    assert repr(Exchange(READ_RECORD_1, bytes.fromhex("6A83"))) == (
        "<Exchange READ RECORD SFI 1 record 1 -> SW 6A83, no data>"
    )
    # Built in memory, an exchange may hold what a trace file may not: no repr shows bytes.
    assert repr(Exchange(bytes.fromhex(VISA_PAN)[:3], b"\x90")) == (
        "<Exchange malformed 3-byte command -> 1-byte answer without SW1 SW2>"
    )


def test_trace_event_repr_names_other_keys_but_not_their_values() -> None:
    event = TraceEvent(
        "error", READ_RECORD_1, 2.0, None, {"type": "RemoteProtocolError", "answer": VISA_TRACK2}, 9
    )
    assert repr(event) == (
        "<TraceEvent error during READ RECORD SFI 1 record 1, 2 ms, line 9, extra: type, answer>"
    )
    assert (
        repr(TraceEvent("card_inserted", note="tap 2"))
        == "<TraceEvent card_inserted, note 'tap 2'>"
    )
    assert repr(TraceEvent("reset", bytes.fromhex(VISA_PAN))) == (
        "<TraceEvent reset during malformed 8-byte command>"
    )


def test_equality_is_still_the_dataclass_one() -> None:
    record = _read_record(record_trace("sim:visa"))
    same = Exchange(record.command, record.response, record.ms, line=12)
    assert record == same and hash(record) == hash(same)  # line is not compared
    assert record != dataclasses.replace(record, response=record.response[:-2] + b"\x62\x83")
    assert record != dataclasses.replace(record, ms=(record.ms or 0) + 1)
    event = TraceEvent("error", READ_RECORD_1, 1.0, None, {"type": "TransportError"})
    assert event == TraceEvent("error", READ_RECORD_1, 1.0, None, {"type": "TransportError"}, 3)
    assert event != dataclasses.replace(event, extra={"type": "CardRemoved"})
