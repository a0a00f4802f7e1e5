"""Redaction: no full PAN of any profile survives in any form, names are replaced, the TLV
(and the T=0 length announcements) re-encoded, and the trace still replays."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from trace_testkit import PROFILES, VECTORS, record_trace

from contactless.emulator.profiles import load_profile
from contactless.errors import LocalProtocolError
from contactless.testing import replay
from contactless.tlv import Tlv, decode, encode, find_value, walk
from contactless.tlv.tags import sensitive_tags
from contactless.trace import Exchange, Trace, TraceEvent, TraceHeader, dumps, read_trace
from contactless.trace_redact import (
    NAME_PLACEHOLDERS,
    luhn_valid,
    pan_forms,
    redact,
    substitute_pan,
)

ALL_PANS = sorted({app.pan for name in PROFILES for app in load_profile(name).applications})
ALL_NAMES = sorted(
    {app.cardholder_name for name in PROFILES for app in load_profile(name).applications} - {None}
)

#: Every way a read can go: each profile read and transaction, T=0, and the faults.
RECORDINGS = [
    *(f"sim:{p}" for p in PROFILES),
    *(f"sim:{p}?t0=1" for p in PROFILES),
    "sim:visa?remove_after=4",
    "sim:jcb?corrupt=B2",
    "sim:mastercard?corrupt=A8",
    "sim:amex?sw=B2:6A83",
]


def _leaks(trace: Trace) -> list[str]:
    """Every form in which a real PAN or name appears anywhere in the trace."""
    text = dumps(trace)
    blobs = [text.encode("utf-8")]
    for entry in trace.entries:
        blobs.append(entry.command or b"")
        if isinstance(entry, Exchange):
            blobs.append(entry.response)
    found = []
    for pan in ALL_PANS:
        ascii_hex = pan.encode("ascii").hex().upper()
        if pan in text or ascii_hex in text.upper():
            found.append(f"{pan} in the file text")
        for blob in blobs:
            # BCD at either nibble alignment, ASCII digits, and their hex as text.
            if pan_forms(blob, pan) or pan.encode() in blob or ascii_hex.encode() in blob:
                found.append(f"{pan} in {blob[:8].hex()}...")
    for name in ALL_NAMES:
        if name.encode() in text.encode() or name.encode().hex().upper() in text:
            found.append(f"name {name!r}")
        found += [f"name {name!r} in bytes" for blob in blobs if name.encode() in blob]
    return found


@pytest.mark.parametrize("uri", RECORDINGS)
@pytest.mark.parametrize("transaction", [False, True], ids=["read", "transaction"])
def test_no_full_pan_or_name_of_any_profile_survives_redaction(uri: str, transaction: bool) -> None:
    trace = record_trace(uri, transaction=transaction)
    redacted, report = redact(trace)
    assert redacted.header.redacted is True
    assert _leaks(redacted) == []
    if "?" not in uri or uri.endswith("t0=1"):  # complete reads: the card data is there
        assert _leaks(trace), "the recording itself must hold the card data redaction removes"
        assert report.pans == 1 and report.names >= 1


def test_the_stored_vectors_hold_no_full_pan_or_name() -> None:
    paths = sorted(VECTORS.glob("*.jsonl"))
    assert len(paths) >= 12
    for path in paths:
        trace = read_trace(path)
        assert trace.header.redacted is True, path.name
        assert _leaks(trace) == [], path.name
        raw = path.read_bytes()
        assert not any(pan.encode() in raw for pan in ALL_PANS), path.name


def test_the_substitute_keeps_six_and_four_digits_and_passes_luhn() -> None:
    for pan in ALL_PANS:
        substitute = substitute_pan(pan)
        assert len(substitute) == len(pan)
        assert substitute[:6] == pan[:6] and substitute[-4:] == pan[-4:]
        assert substitute != pan and luhn_valid(substitute)
        assert substitute_pan(pan) == substitute  # consistent
    # A PAN whose middle is already zeros with the right check digit gets nines instead.
    assert substitute_pan("4761739001010010") == "4761730000010010"
    assert substitute_pan("4761730000010010") == "4761739999960010"
    assert luhn_valid("4761739999960010")
    with pytest.raises(LocalProtocolError):
        substitute_pan("12345")


def test_luhn_known_values() -> None:
    assert luhn_valid("79927398713")  # the classic example (ISO/IEC 7812-1 annex B)
    assert not luhn_valid("79927398710")
    assert all(luhn_valid(pan) for pan in ALL_PANS)


def test_the_pan_is_replaced_consistently_everywhere_it_appears() -> None:
    trace = record_trace("sim:mastercard", transaction=True)
    real = load_profile("mastercard").applications[0].pan
    redacted, _ = redact(trace)
    substitute = substitute_pan(real)
    places = []
    for entry in redacted.entries:
        assert isinstance(entry, Exchange)
        for _, node in walk(decode(entry.response[:-2], strict=False)):
            if node.children is None and substitute in node.value.hex().upper():
                places.append(("BCD", node.tag_hex))
            if node.children is None and substitute.encode() in node.value:
                places.append(("ASCII", node.tag_hex))
    # Application PAN, Track 2 equivalent data, and Track 1 (ASCII) in Mastercard's record.
    assert {("BCD", "5A"), ("BCD", "57"), ("ASCII", "56")} <= set(places)
    assert replay(redacted).pan == substitute


@pytest.mark.parametrize(
    ("uri", "tags"),
    [("sim:unionpay", {"5F20", "9F0B"}), ("sim:mastercard", {"5F20", "56"})],
)
def test_names_are_replaced_by_the_placeholder_and_lengths_re_encoded(
    uri: str, tags: set[str]
) -> None:
    trace = record_trace(uri)
    redacted, report = redact(trace)
    assert report.names >= 1
    seen = set()
    for entry in redacted.entries:
        assert isinstance(entry, Exchange)
        nodes = decode(entry.response[:-2])  # strict: every length was re-encoded
        for _, node in walk(nodes):
            if node.tag_bytes in NAME_PLACEHOLDERS:
                assert node.value == NAME_PLACEHOLDERS[node.tag_bytes]
                seen.add(node.tag_hex)
            if node.tag_hex == "56":
                assert b"^REDACTED/CARDHOLDER^" in node.value
                seen.add("56")
    assert seen == tags


def test_track_discretionary_data_is_zeroed() -> None:
    redacted, _ = redact(record_trace("sim:visa"))
    track2 = next(
        node.value.hex().upper()
        for entry in redacted.entries
        if isinstance(entry, Exchange)
        for _, node in walk(decode(entry.response[:-2], strict=False))
        if node.tag_hex == "57"
    )
    _, _, rest = track2.partition("D")
    assert rest[:7] == "2812201"  # expiry and service code kept
    assert set(rest[7:].rstrip("F")) == {"0"}


def test_t0_answers_are_reshaped_with_their_announced_lengths() -> None:
    trace = record_trace("sim:mastercard?t0=1", transaction=True)
    redacted, _ = redact(trace)
    entries = redacted.entries
    for index, entry in enumerate(entries[:-1]):
        following = entries[index + 1]
        assert isinstance(entry, Exchange) and isinstance(following, Exchange)
        if entry.response[-2] == 0x6C:  # wrong Le: re-issued with Le = SW2, answered in full
            assert following.command[-1] == entry.response[-1]
            assert len(following.response) - 2 == (entry.response[-1] or 256)
        if entry.response[-2] == 0x61:  # more data: GET RESPONSE with Le = SW2
            assert following.command[1] == 0xC0
            assert following.command[-1] == entry.response[-1]
    changed = [
        (a.command, b.command)
        for a, b in zip(trace.entries, redacted.entries, strict=True)
        if isinstance(a, Exchange) and isinstance(b, Exchange) and a.command != b.command
    ]
    assert changed, "the record holding the name is re-issued with the new length"
    assert replay(redacted).cardholder_name == "REDACTED/CARDHOLDER"


def test_answers_that_are_not_tlv_are_still_redacted() -> None:
    trace = record_trace("sim:mastercard?corrupt=B2")
    assert any(
        isinstance(e, Exchange) and decode(e.response[:-2], strict=False).error
        for e in trace.entries
    )
    redacted, _ = redact(trace)
    assert _leaks(redacted) == []


def test_events_and_header_text_are_redacted_too() -> None:
    pan = ALL_PANS[0]
    trace = Trace(
        TraceHeader(note=f"card {pan} at the till", reader="reader"),
        (
            Exchange(
                bytes.fromhex("00B2010C00"),
                bytes.fromhex("70 0A 5A 08") + bytes.fromhex(pan) + bytes.fromhex("9000"),
                note=f"PAN {pan}",
            ),
            TraceEvent("error", bytes.fromhex("00B2011400"), extra={"message": f"bad {pan}"}),
        ),
    )
    redacted, report = redact(trace)
    assert report.pans == 1
    assert pan not in dumps(redacted)
    assert substitute_pan(pan) in (redacted.header.note or "")


def test_a_redacted_trace_is_left_as_it_is() -> None:
    redacted, _ = redact(record_trace("sim:visa"))
    again, report = redact(redacted)
    assert again is redacted and report.pans == 0


def test_lengths_that_cannot_be_announced_keep_the_old_ones() -> None:
    # A T=0 answer of 256 bytes (announced as 6C00) cannot grow: the placeholder is cut to
    # the name's own length instead, and no length moves.
    content = bytes.fromhex("5F2005") + b"AB CD" + bytes.fromhex("9F7CF2") + bytes(0xF2)
    body = bytes.fromhex("7081FD") + content
    assert len(body) == 256
    trace = Trace(
        TraceHeader(),
        (
            Exchange(bytes.fromhex("00B2010C00"), bytes.fromhex("6C00")),
            Exchange(bytes.fromhex("00B2010C00"), body + bytes.fromhex("9000")),
        ),
    )
    redacted, report = redact(trace)
    assert report.names == 1
    announce, answer = redacted.entries
    assert announce == trace.entries[0]
    assert isinstance(answer, Exchange)
    assert answer.response == body.replace(b"AB CD", b"REDAC") + bytes.fromhex("9000")


def test_pan_forms_finds_bcd_at_any_nibble_and_ascii() -> None:
    pan = "4761739001010010"
    assert pan_forms(bytes.fromhex(pan), pan) == ["BCD"]
    assert pan_forms(bytes.fromhex("0" + pan + "F"), pan) == ["BCD"]  # odd nibble
    assert pan_forms(b"xx" + pan.encode() + b"yy", pan) == ["ASCII"]
    assert pan_forms(bytes.fromhex("4761739001010011"), pan) == []


def test_redaction_refuses_to_return_a_leaking_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    import contactless.trace_redact as module

    monkeypatch.setattr(module, "_same_length", lambda data, pans, names: data)
    trace = record_trace("sim:visa")
    with pytest.raises(Exception, match="redaction failed: a PAN is still in the trace"):
        redact(trace)


def test_the_cli_redacts_a_trace_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from contactless.cli import cli
    from contactless.trace import write_trace

    source, target = tmp_path / "raw.jsonl", tmp_path / "safe.jsonl"
    write_trace(record_trace("sim:jcb"), source)
    result = CliRunner().invoke(cli, ["trace", "redact", str(source), "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert "1 PAN(s), 1 name(s) replaced" in result.stderr
    assert _leaks(read_trace(target)) == []
    assert dataclasses.replace(read_trace(target).header, redacted=None).redacted is None


PIN_VERIFY = bytes.fromhex("0020008008241234FFFFFFFFFF")


def test_a_verify_pin_block_is_replaced_and_the_redacted_trace_replays() -> None:
    from contactless.trace_view import show_lines
    from contactless.transport.replay import ExchangeMismatch, ReplayTransport

    trace = Trace(TraceHeader(), (Exchange(PIN_VERIFY, bytes.fromhex("9000")),))
    redacted, _ = redact(trace)
    command = redacted.exchanges[0].command
    assert command == bytes.fromhex("0020008008240000FFFFFFFFFF")
    assert "241234" not in dumps(redacted)
    # Replay sends the live PIN block: a redacted trace compares VERIFY's data loosely.
    with ReplayTransport("replay:t", trace=redacted) as reader:
        assert reader.transmit(PIN_VERIFY) == bytes.fromhex("9000")
    with ReplayTransport("replay:t", trace=trace) as reader, pytest.raises(ExchangeMismatch):
        reader.transmit(bytes.fromhex("0020008008245678FFFFFFFFFF"))
    # `trace show` masks the PIN block of an unredacted trace.
    shown = "\n".join(show_lines(trace))
    assert "241234" not in shown and "0020008008****" in shown
    assert "241234" in "\n".join(show_lines(trace, show_sensitive=True))


def test_a_change_reference_data_pin_block_is_replaced_and_masked_too() -> None:
    # EMV PIN CHANGE/UNBLOCK (INS 24) carries PIN data like VERIFY; so does its repr.
    from contactless.trace_view import show_lines

    change = bytes.fromhex("8424000210") + bytes.fromhex("241234FFFFFFFFFF") + bytes(8)
    trace = Trace(TraceHeader(), (Exchange(change, bytes.fromhex("9000")),))
    redacted, _ = redact(trace)
    assert redacted.exchanges[0].command == bytes.fromhex(
        "8424000210240000FFFFFFFFFFFFFFFFFFFFFFFFFF"
    )
    assert "241234" not in "\n".join(show_lines(trace))
    assert "241234" in "\n".join(show_lines(trace, show_sensitive=True))


def test_tracks_in_an_answer_that_does_not_decode_are_scrubbed() -> None:
    import re

    trace = record_trace("sim:mastercard?corrupt=B2")
    raw = b"".join(e.response for e in trace.exchanges)
    track1 = re.search(rb"([0-9]{12,19})\^([^^]{2,26})\^([0-9]{7})([ -~]+)", raw)
    assert track1 is not None, "the corrupted record should still hold Track 1"
    secret = track1.group(4)
    assert re.search(rb"[1-9A-Za-z]", secret)  # discretionary data with something in it
    redacted, _ = redact(trace)
    blob = b"".join(e.response for e in redacted.exchanges)
    assert track1.group(0) not in blob
    assert track1.group(1) not in blob  # the PAN
    assert track1.group(2).strip() not in blob  # the name
    for part in re.findall(rb"\^[0-9]{7}([ -~]+)", blob):
        assert not re.search(rb"[1-9A-Za-z]", part)


# --- every sensitive tag of the dictionary --------------------------------------------------

TEST_PAN = "4761739001010010"
TRACK2 = bytes.fromhex(TEST_PAN + "D28122011438044000000F")
TRACK1 = b"B" + TEST_PAN.encode() + b"^SMITH/JOHN^2812201" + b"143804400000"
#: What the tests put under each sensitive tag, and the parts that must be gone after
#: redaction (a tag not listed gets a text value that must be gone whole).
SECRETS: dict[str, tuple[bytes, list[bytes]]] = {
    "5A": (bytes.fromhex(TEST_PAN), [bytes.fromhex(TEST_PAN)]),
    "57": (TRACK2, [bytes.fromhex(TEST_PAN), bytes.fromhex("1438044000")]),
    "9F6B": (TRACK2, [bytes.fromhex(TEST_PAN), bytes.fromhex("1438044000")]),
    "5F22": (TRACK2, [bytes.fromhex(TEST_PAN), bytes.fromhex("1438044000")]),
    "56": (TRACK1, [TEST_PAN.encode(), b"SMITH/JOHN", b"14380440"]),
    "5F21": (TRACK1, [TEST_PAN.encode(), b"SMITH/JOHN", b"14380440"]),
    "5F20": (b"SMITH/JOHN", [b"SMITH/JOHN"]),
    "5B": (b"SMITH/JOHN", [b"SMITH/JOHN"]),
    "9F0B": (b"SMITH/JOHN ALEXANDER OF LONDON", [b"SMITH/JOHN"]),
    "9F20": (bytes.fromhex("12345678"), [bytes.fromhex("12345678")]),
}
OTHER_SECRET = b"S3CRET-ID-12"


def _secret(tag: str) -> tuple[bytes, list[bytes]]:
    return SECRETS.get(tag, (OTHER_SECRET, [OTHER_SECRET]))


def _record_trace(*records: bytes) -> Trace:
    entries = tuple(
        Exchange(bytes.fromhex("00B2010C00"), record + b"\x90\x00") for record in records
    )
    return Trace(TraceHeader(protocol="T1", redacted=False), entries, "hand.jsonl")


def _in_hex_or_bytes(secret: bytes, trace: Trace) -> bool:
    text = dumps(trace)
    blobs = [e.response for e in trace.exchanges] + [text.encode()]
    return secret.hex().upper() in text or any(secret in blob for blob in blobs)


@pytest.mark.parametrize("tag", sorted(sensitive_tags()))
def test_every_tag_the_dictionary_marks_sensitive_is_replaced(tag: str) -> None:
    # Listed from the dictionary: a tag newly marked sensitive is tested here too.
    value, parts = _secret(tag)
    body = bytes.fromhex(tag) + bytes((len(value),)) + value
    trace = _record_trace(bytes((0x70, len(body))) + body)
    assert all(_in_hex_or_bytes(part, trace) for part in parts)  # the test sees its data
    redacted, _ = redact(trace)
    leaked = [part for part in parts if _in_hex_or_bytes(part, redacted)]
    assert leaked == [], f"{tag}: {leaked}"
    (node,) = [n for _, n in walk(decode(redacted.exchanges[0].response[:-2])) if n.tag_hex == tag]
    if tag in ("5F20", "5B", "9F0B", "56", "5F21"):  # names: the placeholder, lengths re-encoded
        assert b"REDACTED/CARDHOLDER" in node.value
    else:  # everything else keeps its length: nothing else in the trace moves
        assert len(node.value) == len(value)


def test_a_cardholder_id_number_is_zeroed_and_the_trace_still_replays() -> None:
    # A UnionPay card whose first record also holds the Cardholder ID Number (9F61).
    trace = record_trace("sim:unionpay")
    entries = list(trace.entries)
    index, record = next(
        (i, e)
        for i, e in enumerate(entries)
        if isinstance(e, Exchange) and e.command[1] == 0xB2 and e.response[:1] == b"\x70"
    )
    nodes = decode(record.response[:-2])
    nodes[0].children.append(Tlv(b"\x9f\x61", OTHER_SECRET))
    entries[index] = dataclasses.replace(record, response=encode(nodes) + record.response[-2:])
    trace = trace.with_entries(entries)
    assert replay(trace).brand == "unionpay"  # the card as recorded reads
    redacted, _ = redact(trace)
    assert not _in_hex_or_bytes(OTHER_SECRET, redacted)
    answer = redacted.entries[index]
    assert isinstance(answer, Exchange)
    assert find_value(answer.response[:-2], "9F61") == b"0" * len(OTHER_SECRET)
    card = replay(redacted)  # and so does the redacted one
    assert card.brand == "unionpay" and card.masked_pan == replay(trace).masked_pan
    assert _leaks(redacted) == []


def test_visas_card_cvm_limit_in_9f6b_is_kept() -> None:
    # 9F6B is Track 2 Data for Mastercard but Visa's Card CVM Limit (n 6), which the
    # transaction flow reads: a 9F6B without Track 2's shape is left as it is.
    limit = bytes.fromhex("000000010000")
    trace = _record_trace(bytes.fromhex("70089F6B06") + limit)
    redacted, _ = redact(trace)
    assert redacted.exchanges[0].response == trace.exchanges[0].response


def test_values_without_their_expected_shape_are_blanked_not_kept() -> None:
    # A Track 2 without its D separator, a Track 1 without its ^ fields, a PAN too short
    # to be one: nothing to substitute, so nothing of them is left but their length.
    odd_track2 = bytes.fromhex("47617390010100102812201143")
    odd_track1 = b"%" + TEST_PAN.encode() + b" SMITH/JOHN"
    short_pan = bytes.fromhex("12345678")
    body = b"".join(
        bytes.fromhex(tag) + bytes((len(value),)) + value
        for tag, value in (("57", odd_track2), ("56", odd_track1), ("5A", short_pan))
    )
    redacted, _ = redact(_record_trace(bytes((0x70, len(body))) + body))
    values = {n.tag_hex: n.value for _, n in walk(decode(redacted.exchanges[0].response[:-2]))}
    assert values["57"] == bytes(len(odd_track2))  # b: zero bytes
    assert values["56"] == b"0" * len(odd_track1)  # ans: "0" characters
    assert values["5A"] == bytes.fromhex("00000000")  # cn: zero digits


# --- answers that do not decode ------------------------------------------------------------

LONG_NAME = b"VISA ACQUIRER TEST/CARD 01"


def test_an_answer_that_does_not_decode_is_redacted_in_place_keeping_its_error() -> None:
    body = (
        bytes.fromhex("5A08" + TEST_PAN)
        + bytes.fromhex("5F201A")
        + LONG_NAME
        + bytes.fromhex("9F610C")
        + OTHER_SECRET
    )
    broken = bytes((0x70, len(body) + 1)) + body  # one byte short: it does not decode
    trace = _record_trace(broken)
    error = str(decode(broken, strict=False).error)
    redacted, _ = redact(trace)
    answer = redacted.exchanges[0].response[:-2]
    assert not _in_hex_or_bytes(OTHER_SECRET, redacted)  # found by the raw scan
    assert not _in_hex_or_bytes(LONG_NAME, redacted)
    assert not _in_hex_or_bytes(bytes.fromhex(TEST_PAN), redacted)
    # Replaying it gives the error the live read gave (its text quotes offsets and
    # lengths): so every length stays, the name's too (see trace_redact._redact_undecoded).
    assert len(answer) == len(broken)
    assert str(decode(answer, strict=False).error) == error
    assert bytes.fromhex("5F201A") + b"REDACTED/CARDHOLDER" + b" " * 7 in answer


def test_a_raw_hit_that_would_change_the_decoding_error_is_left_alone() -> None:
    # "9F 61 05" here is no data object: 9F61 is the value of 5F30, and 05 the tag read
    # next. Blanking the "5 bytes" after it would turn the error into another one.
    broken = bytes.fromhex("5F30029F61" + "0503414243" + "99FF")
    assert decode(broken, strict=False).error is not None
    redacted, _ = redact(_record_trace(broken))
    assert redacted.exchanges[0].response[:-2] == broken
