"""``trace_view.explain`` (the pytest plugin's assertion explanations) names what differs
and never shows card data: entries that differ in timing or note, trace events, tracer
events, and two card reads (:class:`CardData`) with the PAN, track 2 and name masked."""

from __future__ import annotations

import dataclasses

from trace_testkit import fixed_config, record_trace

from contactless.emv.card import CardData, ResponseData
from contactless.errors import CardRemoved
from contactless.reader import read_card
from contactless.tlv import decode, encode
from contactless.trace import Exchange, Trace, TraceEvent
from contactless.trace_view import explain
from contactless.transport.base import ExchangeEvent
from visa_card import VISA_NAME, VISA_PAN, VISA_TRACK2, visa_data_in

READ_RECORD_1 = bytes.fromhex("00B2010C00")  # READ RECORD SFI 1 record 1: track 2 and name
OTHER_PAN = "4761739001010028"


def _read_record_in(trace: Trace) -> Exchange:
    return next(entry for entry in trace.exchanges if entry.command == READ_RECORD_1)


def _visa_record() -> Exchange:
    return _read_record_in(record_trace("sim:visa"))


def _visa_card() -> CardData:
    return read_card("sim:visa", config=fixed_config(), wait=2.0, timeout=2.0)


def _other_pan(data: bytes) -> bytes:
    """``data`` with the visa PAN replaced (in track 2 and tag 5A alike)."""
    return data.replace(bytes.fromhex(VISA_PAN), bytes.fromhex(OTHER_PAN))


def test_entries_that_differ_in_timing_or_note_name_those_fields_only() -> None:
    record = _visa_record()
    left = dataclasses.replace(record, ms=1.25, note=None)
    right = dataclasses.replace(record, ms=3.5, note="retried")
    lines = explain(left, right)
    assert lines == [
        "exchange READ RECORD SFI 1 record 1",
        "ms: 1.25 vs 3.5",
        "note: None vs 'retried'",
    ]
    assert visa_data_in("\n".join(lines)) == []
    # The same inside a trace.
    trace = record_trace("sim:visa")
    index = trace.entries.index(_read_record_in(trace))
    entries = list(trace.entries)
    entries[index] = dataclasses.replace(entries[index], ms=None)
    lines = explain(trace, trace.with_entries(entries))
    assert lines == [
        "entry 4 differs:",
        "exchange READ RECORD SFI 1 record 1",
        f"ms: {trace.entries[index].ms!r} vs None",
    ]
    assert visa_data_in("\n".join(lines)) == []


def test_exchanges_that_differ_in_card_data_show_it_masked() -> None:
    record = _visa_record()
    other = dataclasses.replace(record, response=_other_pan(record.response), note="other card")
    lines = explain(record, other)
    assert lines is not None
    assert "70/57 Track 2 Equivalent Data: [19 bytes, masked] vs [19 bytes, masked]" in lines
    assert lines[-1] == "note: None vs 'other card'"
    assert visa_data_in("\n".join(lines)) == []


def test_trace_events_that_differ_name_the_fields_and_keys() -> None:
    removed = TraceEvent("card_removed", None, 2.0, "tap 2")
    assert explain(removed, TraceEvent("card_removed", READ_RECORD_1, 2.0)) == [
        "event card_removed",
        "command: none vs READ RECORD SFI 1 record 1",
        "note: 'tap 2' vs None",
    ]
    # Other keys come from any trace file: named, their values not shown.
    leaky = TraceEvent("error", READ_RECORD_1, 1.0, None, {"message": f"got {VISA_TRACK2}"})
    plain = TraceEvent("error", READ_RECORD_1, 1.0, None, {"message": "got 9000", "type": "X"})
    lines = explain(leaky, plain)
    assert lines == ["event error", "other keys differ: message, type"]
    assert explain(leaky, removed) == [
        "event error vs event card_removed",
        "command: READ RECORD SFI 1 record 1 vs none",
        "ms: 1.0 vs 2.0",
        "note: None vs 'tap 2'",
        "other keys differ: message",
    ]


def test_tracer_events_that_differ_are_explained_masked() -> None:
    record = _visa_record()
    left = ExchangeEvent(READ_RECORD_1, record.response, 0.01)
    right = ExchangeEvent(READ_RECORD_1, _other_pan(record.response), 0.02)
    lines = explain(left, right)
    assert lines is not None and lines[0] == "exchange READ RECORD SFI 1 record 1"
    assert "70/57 Track 2 Equivalent Data: [19 bytes, masked] vs [19 bytes, masked]" in lines
    assert lines[-1] == "seconds: 0.01 vs 0.02"
    failed = ExchangeEvent(READ_RECORD_1, None, 0.01, CardRemoved(f"card left: {VISA_PAN}"))
    assert explain(failed, left) == [
        "exchange READ RECORD SFI 1 record 1",
        "response: none vs SW 9000, 67 data bytes",
        "error: CardRemoved vs none",
    ]
    assert visa_data_in("\n".join(lines)) == []


def test_card_reads_that_differ_list_the_fields_with_card_data_masked() -> None:
    card = _visa_card()
    assert card.pan == VISA_PAN and card.cardholder_name == VISA_NAME and card.track2
    other = dataclasses.replace(
        card,
        pan=OTHER_PAN,
        expiry="2029-01",
        cardholder_name="SOMEONE ELSE/A",
        track2=dataclasses.replace(card.track2, pan=OTHER_PAN, expiry="2901"),
    )
    lines = explain(card, other)
    assert lines == [
        "pan: 476173******0010 vs 476173******0028",
        "expiry: '2028-12' vs '2029-01'",
        "cardholder_name: ******** vs ******** (masked; they differ in hidden characters)",
        "track2: 476173******0010D2812201************* vs 476173******0028D2901201*************",
    ]
    assert visa_data_in("\n".join(lines)) == []
    assert explain(card, dataclasses.replace(card, pan=None)) == ["pan: 476173******0010 vs None"]


def test_every_field_to_json_masks_is_masked_in_the_explanation() -> None:
    # Against an empty read every field the card gave differs; a field CardData.to_json
    # masks must be named, masked the same way, and never shown in clear.
    card = _visa_card()
    clear, masked = card.to_json(show_pan=True), card.to_json()
    sensitive = {key for key in clear if clear[key] != masked[key]}
    assert sensitive == {"pan", "cardholder_name", "track2"}
    lines = explain(card, CardData(aid=card.aid))
    assert lines is not None
    text = "\n".join(lines)
    for key in sensitive:
        assert f"{key}: {masked[key]} vs None" in lines
        assert str(clear[key]) not in text
    assert visa_data_in(text) == []
    assert "issuer_country: 840 vs None" in lines  # other fields as they are
    assert "atr: 3B87800173C840000090006D vs None" in lines


def test_card_reads_whose_answers_differ_name_the_answer_and_data_object() -> None:
    card = _visa_card()
    index, answer = next(
        (i, r) for i, r in enumerate(card.responses) if r.command == "READ RECORD SFI 2 record 1"
    )
    changed = ResponseData(answer.command, answer.kind, decode(_other_pan(encode(answer.tlvs))))
    responses = list(card.responses)
    responses[index] = changed
    lines = explain(card, dataclasses.replace(card, responses=tuple(responses)))
    assert lines == [
        f"responses[{index}] READ RECORD SFI 2 record 1: "
        "70/5A Application Primary Account Number (PAN): [8 bytes, masked] vs [8 bytes, masked]"
    ]
    fewer = explain(card, dataclasses.replace(card, responses=card.responses[:-1]))
    last = len(card.responses) - 1
    assert fewer == [
        f"responses: {last + 1} vs {last} answers; only left has responses[{last}] "
        f"{card.responses[-1].command}"
    ]
