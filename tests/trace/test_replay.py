"""The replay: transport: strict and loose matching, volatile DOL fields found in the
trace itself, events replayed as errors, and record -> replay giving the same read."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from trace_testkit import PROFILES, fixed_config, record_trace

from contactless.cli import cli
from contactless.emv.terminal import TerminalConfig
from contactless.errors import (
    CardRemoved,
    ConfigError,
    ContactlessError,
    TraceMismatch,
    TransportError,
    TransportTimeout,
)
from contactless.testing import outcome, replay, replay_config
from contactless.trace import Exchange, Trace, TraceEvent, TraceHeader, dumps, loads, write_trace
from contactless.trace_redact import redact
from contactless.transport import open as open_transport
from contactless.transport.replay import (
    ALWAYS_VOLATILE,
    DolField,
    ExchangeMismatch,
    ReplayTransport,
    dol_fields,
    first_difference,
)

SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")


def _without_reader(payload: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if key != "reader"}


def _gpo_index(trace: Trace) -> int:
    return next(i for i, e in enumerate(trace.entries) if e.command and e.command[1] == 0xA8)


def _replace_entry(trace: Trace, index: int, **changes: Any) -> Trace:
    entries = list(trace.entries)
    entries[index] = dataclasses.replace(entries[index], **changes)
    return trace.with_entries(entries)


# --- record then replay: the same read ---------------------------------------------------------


@pytest.mark.parametrize("transaction", [False, True], ids=["read", "transaction"])
@pytest.mark.parametrize("profile", PROFILES)
def test_record_then_replay_gives_what_contactless_read_prints(
    tmp_path: Path, profile: str, transaction: bool
) -> None:
    terminal = tmp_path / "terminal.toml"
    terminal.write_text("seed = 7\nfixed_time = 2024-05-17T12:00:00\n")
    flags = ["--transaction"] if transaction else []
    runner = CliRunner()
    read = runner.invoke(
        cli, ["read", "-r", f"sim:{profile}", "--json", "--tlvs", "--show-pan",
              "--config", str(terminal), *flags]
    )  # fmt: skip
    assert read.exit_code == 0, read.output
    for no_redact in ([], ["--no-redact"]):
        path = tmp_path / f"{profile}{''.join(no_redact)}.jsonl"
        recorded = runner.invoke(
            cli, ["record", "-r", f"sim:{profile}", "-o", str(path), "--config", str(terminal),
                  *flags, *no_redact]
        )  # fmt: skip
        assert recorded.exit_code == 0, recorded.output
        replayed = runner.invoke(cli, ["replay", str(path), "--json", "--tlvs", "--show-pan"])
        assert replayed.exit_code == 0, replayed.output
        live, again = json.loads(read.stdout), json.loads(replayed.stdout)
        assert again["reader"] == f"replay:{path}"
        if no_redact:  # the very same output, every answer's TLV included
            assert _without_reader(again) == _without_reader(live)
        else:
            # Redacted: what redaction keeps is the same; the PAN keeps its first 6 and
            # last 4 digits; the name is the placeholder.
            kept = ("reader", "pan", "cardholder_name", "track2", "responses")
            assert {k: v for k, v in again.items() if k not in kept} == {
                k: v for k, v in live.items() if k not in kept
            }
            assert again["pan"][:6] + again["pan"][-4:] == live["pan"][:6] + live["pan"][-4:]
            assert again["pan"] != live["pan"]
            assert again["cardholder_name"] == "REDACTED/CARDHOLDER"
        # Masked output (no --show-pan) is the same, redacted or not, but for the name.
        masked = runner.invoke(cli, ["replay", str(path), "--json"])
        live_masked = runner.invoke(
            cli, ["read", "-r", f"sim:{profile}", "--json", "--config", str(terminal), *flags]
        )
        a, b = json.loads(masked.stdout), json.loads(live_masked.stdout)
        assert {k: v for k, v in a.items() if k not in ("reader", "cardholder_name")} == {
            k: v for k, v in b.items() if k not in ("reader", "cardholder_name")
        }


def _refused(entry: Exchange) -> bool:
    """A bare error status word to a SELECT the flow moves past (a card without a PPSE
    answers 6A82 to the AIDs it lacks): 6A82 or 6A83 there, the read goes on the same."""
    return entry.command[1] == 0xA4 and len(entry.response) == 2 and entry.response[0] == 0x6A


def _flip_every_byte(trace: Trace) -> list[tuple[int, int, Trace]]:
    mutants = []
    for index, entry in enumerate(trace.entries):
        if not isinstance(entry, Exchange) or (index > 0 and _refused(entry)):
            continue
        for position in range(len(entry.response)):
            changed = bytearray(entry.response)
            changed[position] ^= 0x01
            mutants.append((index, position, _replace_entry(trace, index, response=bytes(changed))))
    return mutants


def _full_outcome(trace: Trace) -> object:
    try:
        data = replay(trace)
    except ContactlessError as error:
        return type(error).__name__
    return data.to_json(show_pan=True, include_tlvs=True)


@pytest.mark.parametrize("uri", [f"sim:{p}" for p in PROFILES] + ["sim:mastercard?t0=1"])
def test_a_one_byte_change_in_any_answer_the_read_uses_changes_the_output_or_raises(
    uri: str,
) -> None:
    trace = record_trace(uri, transaction=True)
    baseline = _full_outcome(trace)
    assert isinstance(baseline, dict)
    unchanged = [
        (index, position)
        for index, position, mutant in _flip_every_byte(trace)
        if _full_outcome(mutant) == baseline
    ]
    assert unchanged == []


def test_a_one_byte_change_in_the_flows_commands_fails_naming_the_dol_field() -> None:
    trace = record_trace("sim:visa")
    # The replaying terminal is in another country: the GPO's 9F1A differs by one byte.
    with pytest.raises(ExchangeMismatch) as caught:
        replay(trace, config=replay_config(trace, country=826))
    error = caught.value
    assert error.index == 3 and error.line == 0
    assert error.difference is not None and error.difference.field == "9F1A"
    message = str(error)
    assert "Terminal Country Code (9F1A) differs: sent 0826, recorded 0840" in message
    assert f"sent:     {error.sent.hex().upper()}" in message
    assert f"recorded: {error.recorded.hex().upper()}" in message  # type: ignore[union-attr]
    assert "GET PROCESSING OPTIONS" in message
    assert "record the trace again" in message


def test_a_changed_recorded_command_fails_strict_replay_naming_the_field() -> None:
    trace = record_trace("sim:visa")
    gpo = _gpo_index(trace)
    command = bytearray(trace.entries[gpo].command or b"")
    command[7] ^= 0x01  # first byte of the TTQ (9F66), the PDOL's first field
    changed = loads(dumps(_replace_entry(trace, gpo, command=bytes(command))), source="v.jsonl")
    with pytest.raises(TraceMismatch, match=r"Terminal Transaction Qualifiers.*\(9F66\)") as caught:
        replay(changed)
    assert "exchange #3 of v.jsonl (line 4)" in str(caught.value)
    # loose: only CLA INS P1 P2 must match.
    assert replay(changed, match="loose").brand == "visa"


@pytest.mark.parametrize(
    ("position", "field"),
    [(0, "CLA"), (1, "INS"), (2, "P1"), (3, "P2"), (4, "Lc")],
)
def test_header_differences_are_named(position: int, field: str) -> None:
    trace = record_trace("sim:visa")
    index = 3  # READ RECORD SFI 1 record 1: 00 B2 01 0C 00
    command = bytearray(trace.entries[index].command or b"")
    command[position] ^= 0x02
    with pytest.raises(ExchangeMismatch) as caught:
        replay(_replace_entry(trace, index, command=bytes(command)), match="strict")
    assert caught.value.difference is not None
    expected = "Le" if field == "Lc" else field  # byte 4 of a case 2 command is its Le
    assert caught.value.difference.field == expected


def test_volatile_fields_may_differ_in_strict_mode() -> None:
    trace = record_trace("sim:mastercard", transaction=True)
    # A live terminal: another date, time and unpredictable number in the GPO and the CDOL1.
    data = replay(trace, config=TerminalConfig())
    assert data.cryptogram_type == "ARQC"


def test_amounts_may_differ_only_when_the_terminal_differs() -> None:
    trace = record_trace("sim:mastercard", transaction=True)
    other = replay_config(trace, amount=999)
    # The terminal says its amount differs: the amount fields are volatile.
    assert replay(trace, config=other).cryptogram_type == "ARQC"
    # The same terminal settings but a changed amount in the command: a mismatch.
    with ReplayTransport("replay:t", trace=trace, terminal=replay_config(trace)) as reader:
        assert reader.volatile == ALWAYS_VOLATILE
    generate_ac = next(i for i, e in enumerate(trace.entries) if e.command and e.command[1] == 0xAE)
    command = bytearray(trace.entries[generate_ac].command or b"")
    command[10] ^= 0x01  # inside Amount, Authorised (9F02), the CDOL1's first field
    changed = _replace_entry(trace, generate_ac, command=bytes(command))
    reader = ReplayTransport("replay:t", trace=changed, terminal=replay_config(trace))
    with reader, pytest.raises(ExchangeMismatch, match=r"Amount, Authorised.*\(9F02\)"):
        for entry in trace.entries:
            assert entry.command is not None
            reader.transmit(entry.command)


def test_dol_fields_come_from_the_recorded_answers() -> None:
    trace = record_trace("sim:visa", transaction=True, ttq=bytes.fromhex("46004000"))
    gpo = _gpo_index(trace)
    fields = dol_fields(trace.entries, gpo)
    assert fields is not None
    assert [f.tag.hex().upper() for f in fields] == [
        "9F66", "9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37",
    ]  # fmt: skip
    assert fields[0] == DolField(b"\x9f\x66", 7, 4)  # after 80 A8 00 00 Lc 83 L
    generate_ac = next(i for i, e in enumerate(trace.entries) if e.command and e.command[1] == 0xAE)
    cdol = dol_fields(trace.entries, generate_ac)
    assert cdol is not None and cdol[0] == DolField(b"\x9f\x02", 5, 6)
    # Not built from a DOL, or the DOL is not in the trace: no fields.
    assert dol_fields(trace.entries, 0) is None
    assert dol_fields(trace.entries[gpo:], 0) is None


def test_first_difference_reports_data_outside_dol_fields_and_le() -> None:
    a = bytes.fromhex("80A8000002830000")
    assert first_difference(a, a) is None
    diff = first_difference(bytes.fromhex("80A8000002840000"), a)
    assert diff is not None and (diff.field, diff.name, diff.offset) == ("data", "data byte 0", 5)
    diff = first_difference(bytes.fromhex("80A8000002830001"), a)
    assert diff is not None and diff.field == "Le"
    diff = first_difference(bytes.fromhex("80A80000"), bytes.fromhex("80A8000002"))
    assert diff is not None and diff.field == "Le"
    # Not parseable as commands: the first differing byte.
    diff = first_difference(bytes.fromhex("00B2010C0501"), bytes.fromhex("00B2010C0502"))
    assert diff is not None and diff.name == "byte 5"


# --- events, the end of the trace, and the URI -----------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        ("card_removed", CardRemoved),
        ("timeout", TransportTimeout),
        ("error", TransportError),
    ],
)
def test_events_replay_as_the_errors_a_reader_raised(kind: str, error_type: type) -> None:
    trace = Trace(
        TraceHeader(),
        (
            Exchange(SELECT_PPSE, bytes.fromhex("6A82")),
            TraceEvent("reset", extra={"atr": "3B00"}),
            TraceEvent(
                kind, SELECT_PPSE, extra={"message": "CRC error"} if kind == "error" else {}
            ),
        ),
    )
    with ReplayTransport("replay:x", trace=trace) as reader:
        assert reader.card_present()
        assert reader.transmit(SELECT_PPSE) == bytes.fromhex("6A82")
        with pytest.raises(error_type) as caught:
            reader.transmit(SELECT_PPSE)
        assert "SELECT" in str(caught.value)
        assert reader.card_present() is (kind != "card_removed")
        if kind == "error":
            assert "CRC error" in str(caught.value)


def test_the_flow_sending_past_the_end_or_stopping_early_is_a_mismatch() -> None:
    trace = Trace(TraceHeader(), (Exchange(SELECT_PPSE, bytes.fromhex("6A82")),) * 2)
    with ReplayTransport("replay:x.jsonl", trace=trace) as reader:
        reader.transmit(SELECT_PPSE)
        with pytest.raises(TraceMismatch, match="1 recorded entry was not replayed"):
            reader.check_complete()
        reader.transmit(SELECT_PPSE)
        reader.check_complete()
        with pytest.raises(ExchangeMismatch, match=r"after the end of x\.jsonl") as caught:
            reader.transmit(SELECT_PPSE)
        assert caught.value.index == 3 and caught.value.recorded is None


def test_a_replay_of_a_read_that_stops_early_is_a_mismatch() -> None:
    trace = record_trace("sim:jcb", transaction=True)
    with pytest.raises(TraceMismatch, match="not replayed"):
        replay(trace, transaction=False)
    assert replay(trace, transaction=False, check_complete=False).brand == "jcb"


def test_reconnecting_replays_from_the_start() -> None:
    trace = record_trace("sim:visa")
    reader = ReplayTransport("replay:t", trace=trace, check_unused=False)
    for _ in range(2):
        reader.connect()
        assert reader.atr == trace.header.atr
        reader.transmit(trace.entries[0].command or b"")
        reader.disconnect()


def test_the_uri_names_the_file_and_the_match_mode(tmp_path: Path) -> None:
    path = tmp_path / "visa.jsonl"
    write_trace(record_trace("sim:visa"), path)
    with open_transport(f"replay:{path}?match=loose") as reader:
        assert isinstance(reader, ReplayTransport)
        assert reader.match == "loose" and reader.label == "visa.jsonl"
        assert reader.identity.model == "trace replay"
    with open_transport(f"replay:{path}", match="loose") as reader:
        assert isinstance(reader, ReplayTransport) and reader.match == "loose"
    for uri, message in [
        (f"replay:{path}?match=fuzzy", "not one of strict, loose"),
        (f"replay:{path}?speed=2", "unknown replay option 'speed'"),
        ("replay:", "names no trace file"),
        (f"replay:{tmp_path / 'missing.jsonl'}", "file not found"),
        ("sim:visa", "is not a replay: URI"),
    ]:
        with pytest.raises(ConfigError, match=message):
            ReplayTransport(uri)


def test_outcome_reports_the_error_of_a_failed_read() -> None:
    trace = record_trace("sim:discover?sw=B2:6A83")
    result = outcome(trace)
    assert result["error"]["type"] == "StatusWordError"
    assert "6A83" in result["error"]["message"]
    assert "result" in outcome(record_trace("sim:discover"))


def test_redacted_traces_replay_in_strict_mode() -> None:
    for profile in PROFILES:
        redacted, _ = redact(record_trace(f"sim:{profile}?t0=1", transaction=True))
        assert replay(redacted).brand == profile
        assert replay(redacted).cardholder_name == "REDACTED/CARDHOLDER"


def test_replay_does_not_wait_and_uses_no_watchdog_thread() -> None:
    trace = record_trace("sim:unionpay?mute_after=2")
    assert isinstance(trace.entries[-1], TraceEvent) and trace.entries[-1].kind == "timeout"
    assert ReplayTransport.enforces_deadline is True
    with pytest.raises(TransportTimeout):
        replay(trace, config=fixed_config())


def test_unused_entries_fail_at_disconnect_in_strict_mode_only() -> None:
    trace = Trace(TraceHeader(), (Exchange(SELECT_PPSE, bytes.fromhex("6A82")),) * 2)
    reader = ReplayTransport("replay:x.jsonl", trace=trace)
    reader.connect()
    reader.transmit(SELECT_PPSE)
    with pytest.raises(TraceMismatch, match="1 recorded entry was not replayed"):
        reader.disconnect()
    # Opened and closed without a flow: nothing was replayed, nothing drifted.
    with ReplayTransport("replay:x.jsonl", trace=trace):
        pass
    with ReplayTransport("replay:x.jsonl", trace=trace, match="loose") as loose:
        loose.transmit(SELECT_PPSE)
    # Another error in flight: the left-over entries replace it (the flow stopped early).
    with (
        pytest.raises(TraceMismatch) as caught,
        ReplayTransport("replay:x.jsonl", trace=trace) as reader,
    ):
        reader.transmit(SELECT_PPSE)
        raise TransportError("the flow gave up")
    assert isinstance(caught.value.__context__, TransportError)


def test_read_card_tells_the_replay_its_terminal_settings() -> None:
    from contactless.reader import read_card

    trace = record_trace("sim:visa")
    seen: list[ReplayTransport] = []
    data = read_card(
        "replay:t",
        config=replay_config(trace, amount=500),
        trace=trace,
        on_card=lambda reader: seen.append(reader),  # type: ignore[arg-type,return-value]
    )
    assert data.brand == "visa"
    assert seen[0].volatile == ALWAYS_VOLATILE | {b"\x9f\x02", b"\x9f\x03"}


# --- mismatch messages: a VERIFY's PIN block is not shown -----------------------------------

PIN_BLOCK = bytes.fromhex("241234FFFFFFFFFF")  # ISO 9564 format 2, PIN 1234
OTHER_PIN_BLOCK = bytes.fromhex("245678FFFFFFFFFF")


def _verify(block: bytes) -> bytes:
    return bytes.fromhex("00200080") + bytes((len(block),)) + block


def _verify_mismatch(sent: bytes, recorded: bytes) -> ExchangeMismatch:
    trace = Trace(TraceHeader(), (Exchange(recorded, bytes.fromhex("9000")),))
    with (
        pytest.raises(ExchangeMismatch) as caught,
        ReplayTransport("replay:x.jsonl", trace=trace, check_unused=False) as reader,
    ):
        reader.transmit(sent)
    return caught.value


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        (_verify(OTHER_PIN_BLOCK), "data byte 1"),
        (_verify(OTHER_PIN_BLOCK[:6]), "Lc"),
    ],
)
def test_a_verify_mismatch_does_not_show_the_pin_blocks(sent: bytes, field: str) -> None:
    error = _verify_mismatch(sent, _verify(PIN_BLOCK))
    message = str(error)
    for block in (PIN_BLOCK, OTHER_PIN_BLOCK, OTHER_PIN_BLOCK[:6]):
        assert block.hex().upper() not in message
    assert "1234" not in message and "5678" not in message
    assert field in message
    assert "0020008008" + "**" * 8 in message and "VERIFY" in message
    assert error.sent == sent and error.recorded == _verify(PIN_BLOCK)  # kept for tools


def test_a_verify_past_the_end_does_not_show_its_pin_block() -> None:
    trace = Trace(TraceHeader(), ())
    with (
        ReplayTransport("replay:x.jsonl", trace=trace) as reader,
        pytest.raises(ExchangeMismatch, match="after the end") as caught,
    ):
        reader.transmit(_verify(PIN_BLOCK))
    assert PIN_BLOCK.hex().upper() not in str(caught.value)
    assert "0020008008" + "**" * 8 in str(caught.value)


def test_a_verify_header_difference_and_other_commands_stay_in_hex() -> None:
    sent = bytes.fromhex("00200088") + bytes((len(PIN_BLOCK),)) + PIN_BLOCK  # P2 88
    error = _verify_mismatch(sent, _verify(PIN_BLOCK))
    assert "P2 differs: sent 88, recorded 80" in str(error)
    assert PIN_BLOCK.hex().upper() not in str(error)
    select = bytes.fromhex("00A4040007A000000003101000")
    error = _verify_mismatch(select, SELECT_PPSE)
    assert select.hex().upper() in str(error) and SELECT_PPSE.hex().upper() in str(error)
