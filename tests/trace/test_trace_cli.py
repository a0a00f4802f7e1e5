"""`contactless record`, `contactless replay` and `contactless trace show` end to end."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from trace_testkit import record_trace

from contactless.cli import cli
from contactless.emulator.profiles import load_profile
from contactless.trace import read_trace, write_trace
from contactless.trace_view import explain, masked_hex, tlv_difference

VISA_PAN = load_profile("visa").applications[0].pan


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_record_writes_a_redacted_trace_and_prints_the_card(tmp_path: Path) -> None:
    path = tmp_path / "visa.jsonl"
    result = _run("record", "-r", "sim:visa", "-o", str(path), "--note", "till 3", "--json")
    assert result.exit_code == 0, result.output
    assert "recorded 6 exchange(s)" in result.stderr and "redacted: 1 PAN(s)" in result.stderr
    assert json.loads(result.stdout)["brand"] == "visa"
    trace = read_trace(path)
    assert trace.header.redacted is True and trace.header.note == "till 3"
    assert trace.header.flow == "read" and trace.header.transport == "sim:visa"
    terminal = trace.header.terminal or {}
    assert {"fixed_time", "unpredictable_number", "amount"} <= set(terminal)
    assert VISA_PAN not in path.read_text()


def test_record_keeps_the_trace_of_a_failed_read_and_exits_like_read(tmp_path: Path) -> None:
    path = tmp_path / "removed.jsonl"
    result = _run("record", "-r", "sim:visa?remove_after=3", "-o", str(path))
    assert result.exit_code == 1
    assert "recorded 3 exchange(s)" in result.stderr
    assert "error: card removed during READ RECORD SFI 1 record 1" in result.stderr
    assert read_trace(path).entries[-1].to_json()["event"] == "card_removed"
    replayed = _run("replay", str(path))
    assert replayed.exit_code == 1
    assert (
        "card removed during READ RECORD SFI 1 record 1 (replayed from removed.jsonl line 5)"
        in (replayed.stderr)
    )


def test_record_writes_nothing_when_nothing_was_exchanged(tmp_path: Path) -> None:
    path = tmp_path / "none.jsonl"
    result = _run("record", "-r", "sim:nosuchcard", "-o", str(path))
    assert result.exit_code == 2 and "nosuchcard" in result.stderr
    assert not path.exists()
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("colour = 1\n")
    result = _run("record", "-r", "sim:visa", "-o", str(path), "--config", str(bad_config))
    assert result.exit_code == 2 and "colour" in result.stderr
    assert not path.exists()


def test_record_no_redact_keeps_the_card_data(tmp_path: Path) -> None:
    path = tmp_path / "raw.jsonl"
    result = _run("record", "-r", "sim:visa", "-o", str(path), "--no-redact")
    assert result.exit_code == 0
    assert "NOT redacted" in result.stderr
    assert read_trace(path).header.redacted is False
    assert VISA_PAN in path.read_text()


def test_replay_exit_statuses(tmp_path: Path) -> None:
    path = tmp_path / "mc.jsonl"
    write_trace(record_trace("sim:mastercard", transaction=True), path)
    ok = _run("replay", str(path))
    assert ok.exit_code == 0 and "541333******0434" in ok.stdout
    assert _run("replay", str(path), "--amount", "250").exit_code == 0
    drift = _run("replay", str(path), "--read")
    assert drift.exit_code == 3 and "not replayed" in drift.stderr
    assert _run("replay", str(path), "--read", "--match", "loose").exit_code == 0
    assert _run("replay", str(tmp_path / "missing.jsonl")).exit_code == 2
    (tmp_path / "bad.jsonl").write_text('{"format": "contactless-trace", "version": 9}\n')
    bad = _run("replay", str(tmp_path / "bad.jsonl"))
    assert bad.exit_code == 2 and "version 9 is not supported" in bad.stderr
    assert "Traceback" not in bad.output


def test_replay_mismatch_names_the_field(tmp_path: Path) -> None:
    trace = record_trace("sim:visa")
    text = json.dumps(trace.header.to_json())
    lines = [json.loads(text)]
    lines[0]["terminal"]["country"] = 826  # the replaying terminal is in another country
    path = tmp_path / "v.jsonl"
    write_trace(trace, path)
    body = path.read_text().splitlines()[1:]
    path.write_text("\n".join([json.dumps(lines[0]), *body]) + "\n")
    result = _run("replay", str(path))
    assert result.exit_code == 3
    assert "exchange #3 of v.jsonl (line 4)" in result.stderr
    assert "Terminal Country Code (9F1A) differs: sent 0826, recorded 0840" in result.stderr


def test_trace_show_decodes_and_masks(tmp_path: Path) -> None:
    path = tmp_path / "visa.jsonl"
    write_trace(record_trace("sim:visa"), path)  # NOT redacted: the real PAN is in the file
    shown = _run("trace", "show", str(path))
    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    assert "NOT redacted" in text
    assert VISA_PAN not in text and VISA_PAN not in text.replace("**", "")
    assert "476173******0010" in text  # the decoded PAN, masked
    assert "9F66   Terminal Transaction Qualifiers (TTQ)  36004000" in text  # a PDOL field
    assert "SW 9000: normal processing" in text
    assert "Application Primary Account Number (PAN)" in text
    full = _run("trace", "show", str(path), "--show-pan")
    assert VISA_PAN in full.stdout
    missing = _run("trace", "show", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2 and "file not found" in missing.stderr


def test_masked_hex_hides_only_card_data() -> None:
    data = bytes.fromhex("70 0E 5A 08 4761739001010010 5F24 03 281231")
    assert masked_hex(data) == "700E5A08" + "**" * 8 + "5F2403281231"
    assert masked_hex(data, show_sensitive=True) == data.hex().upper()
    assert masked_hex(b"\x01\x02") == "0102"  # not TLV: nothing to find


def test_differences_are_explained_with_tag_names() -> None:
    a = bytes.fromhex("6F 0B 84 02 A000 A5 05 9F38 02 9F66")
    b = bytes.fromhex("6F 0B 84 02 A000 A5 05 9F38 02 9F67")
    assert tlv_difference(a, b) == [
        "6F/A5/9F38 Processing Options Data Object List (PDOL): 9F66 vs 9F67"
    ]
    assert explain(1, 2) is None


def _with_extra_exchange(path: Path) -> None:
    lines = path.read_text().splitlines()
    lines.append(json.dumps({"c": "00B2011400", "r": "9000"}))
    path.write_text("\n".join(lines) + "\n")


def test_read_from_a_replay_reader_behaves_like_replay(tmp_path: Path) -> None:
    # visa's PDOL holds Amount, Authorised (9F02): another amount changes the GPO.
    path = tmp_path / "visa.jsonl"
    write_trace(record_trace("sim:visa"), path)
    replayed = _run("replay", str(path), "--amount", "500")
    read = _run("read", "--reader", f"replay:{path}", "--amount", "500")
    assert replayed.exit_code == 0, replayed.output
    assert read.exit_code == 0, read.output
    # One recorded exchange more than the flow sends: both paths fail on it.
    _with_extra_exchange(path)
    replayed = _run("replay", str(path))
    read = _run("read", "--reader", f"replay:{path}")
    assert replayed.exit_code == 3 and "1 recorded entry was not replayed" in replayed.stderr
    assert read.exit_code != 0 and "1 recorded entry was not replayed" in read.stderr


def test_record_refuses_a_missing_folder_or_a_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir" / "x.jsonl"
    result = _run("record", "-r", "sim:visa", "-o", str(missing), "--json")
    assert result.exit_code == 2
    assert f"{missing.parent} does not exist" in result.stderr
    assert result.stdout == ""  # refused before the card was read
    assert not (tmp_path / "nonexistent").exists()  # no directory tree created
    result = _run("record", "-r", "sim:visa", "-o", str(tmp_path))
    assert result.exit_code == 2 and "it is a directory" in result.stderr
    assert ".tmp" not in result.stderr and f"{tmp_path.name}." not in result.stderr
    source = tmp_path / "v.jsonl"
    write_trace(record_trace("sim:visa"), source)
    result = _run("trace", "redact", str(source), "-o", str(missing))
    assert result.exit_code == 2 and "does not exist" in result.stderr
    assert not (tmp_path / "nonexistent").exists()


def test_export_scriptor_to_a_bad_place_says_what_and_where(tmp_path: Path) -> None:
    source = tmp_path / "v.jsonl"
    write_trace(record_trace("sim:visa"), source)
    target = tmp_path / "missing" / "out.script"
    result = _run("trace", "export-scriptor", str(source), "-o", str(target))
    assert result.exit_code == 2
    assert f"cannot write the scriptor file {target}" in result.stderr
    assert "leave it out to print to stdout" in result.stderr
    assert not result.stderr.startswith("error: [Errno")


def test_record_of_failed_exchanges_writes_their_events_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "errors.jsonl"
    result = _run("record", "-r", "sim:visa?error_rate=1", "-o", str(path))
    assert result.exit_code == 1
    trace = read_trace(path)
    assert trace.exchanges == [] and [e.kind for e in trace.entries] == ["error"]
    assert "recorded 0 exchange(s) and 1 event(s)" in result.stderr
    help_text = _run("record", "--help").output
    assert "a trace is written as soon as one APDU was sent" in " ".join(help_text.split())


def test_a_replayed_error_names_the_command_once(tmp_path: Path) -> None:
    path = tmp_path / "errors.jsonl"
    _run("record", "-r", "sim:visa?error_rate=1", "-o", str(path))
    result = _run("replay", str(path))
    assert result.exit_code == 1
    assert result.stderr.count("during SELECT") == 1, result.stderr
    assert "(replayed from errors.jsonl line 2)" in result.stderr
