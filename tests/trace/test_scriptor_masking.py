"""`contactless trace export-scriptor` keeps card data out of its output unless --show-pan:
a trace recorded with --no-redact holds the card's PAN, name and discretionary data, and
neither the script (answers in comments, masked) nor the log (hex, redacted) may show them.

Each check looks for every form the data can take in the output (digits, hex with and
without spaces, wrapped over lines, ASCII) and, with --show-pan, for the forms the output
must then hold, so that a masking that stopped working or one that hides everything
would both fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from contactless.cli import cli
from contactless.testing import replay
from contactless.tlv import decode, find_value
from contactless.tlv.tags import sensitive_tags
from contactless.trace import Exchange, Trace, TraceHeader, read_trace, write_trace
from contactless.trace_scriptor import export_log, export_script, log_to_trace, parse_script

#: The card of the emulator's Visa profile (sim:visa).
PAN = "4761739001010010"
NAME = b"VISA ACQUIRER TEST/CARD 01"
#: UnionPay's Cardholder ID Number (9F61, sensitive only in UnionPay's dictionary row).
ID_NUMBER = b"1234567890"
UNIONPAY_AID = "A0000003330101"


def _spaced(data: bytes) -> str:
    return " ".join(f"{byte:02X}" for byte in data)


def _forms(name: str, text: str, raw: bytes) -> dict[str, str]:
    """The ways ``raw`` (whose text is ``text``) can show in an output."""
    return {
        f"{name} as text": text,
        f"{name} in hex": raw.hex().upper(),
        f"{name} in spaced hex": _spaced(raw),
    }


PAN_FORMS = {
    **_forms("PAN", PAN, bytes.fromhex(PAN)),  # BCD: its hex is the digits
    "PAN in ASCII hex": PAN.encode().hex().upper(),
}
NAME_FORMS = _forms("name", NAME.decode(), NAME)
ID_FORMS = _forms("ID number", ID_NUMBER.decode(), ID_NUMBER)


def leaks(output: str, forms: dict[str, str]) -> list[str]:
    """The forms found in ``output``, also across the spaces and line breaks of hex dumps
    (scriptor wraps answers after 16 bytes)."""
    compact = "".join(output.split())
    return [
        what for what, text in forms.items() if text in output or text.replace(" ", "") in compact
    ]


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def raw_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trace recorded as a user would, keeping the card's data."""
    path = tmp_path_factory.mktemp("raw") / "raw.jsonl"
    run("record", "--reader", "sim:visa", "-o", str(path), "--no-redact")
    trace = read_trace(path)
    assert trace.header.redacted is False
    # The known vector is really in the trace: a test that finds nothing proves nothing.
    answers = [e.response[:-2] for e in trace.exchanges]
    assert any(find_value(answer, "5A") == bytes.fromhex(PAN) for answer in answers)
    assert any(find_value(answer, "5F20") == NAME for answer in answers)
    return path


def test_the_script_masks_the_answers_and_keeps_the_commands(raw_trace: Path) -> None:
    script = run("trace", "export-scriptor", str(raw_trace))
    assert leaks(script, PAN_FORMS) == []
    assert leaks(script, NAME_FORMS) == []
    # The PAN keeps its first 6 and last 4 digits, Track 2 its expiry and service code.
    assert "5A 08 47 61 73 ** ** ** 00 10" in script
    assert "57 13 47 61 73 ** ** ** 00 10 D2 81 22 01 ** ** ** ** ** ** *F" in script
    # The name's length shows nowhere: the answer holds the placeholder's (0x13), masked.
    assert "5F 20 1A" not in script and "5F 20 13 " + "** " * 19 in script
    assert "--show-pan writes it in full" in script
    # Every command is there, as recorded: the script still runs against a card.
    trace = read_trace(raw_trace)
    assert [step.command for step in parse_script(script)] == [e.command for e in trace.exchanges]


def test_the_script_shows_the_card_data_with_show_pan(raw_trace: Path) -> None:
    script = run("trace", "export-scriptor", "--show-pan", str(raw_trace))
    assert leaks(script, PAN_FORMS) == ["PAN as text", "PAN in hex", "PAN in spaced hex"]
    assert leaks(script, NAME_FORMS) == ["name in hex", "name in spaced hex"]
    assert "5F 20 1A " + _spaced(NAME) in script
    assert "**" not in script and "masked" not in script


def test_the_log_is_redacted_and_still_imports_and_replays(raw_trace: Path, tmp_path: Path) -> None:
    log = run("trace", "export-scriptor", "--log", str(raw_trace))
    assert leaks(log, PAN_FORMS) == []
    assert leaks(log, NAME_FORMS) == []
    assert "*" not in log.replace("# card data redacted", "")  # all hex: scriptor's format
    assert log.splitlines()[1].startswith("# card data redacted: PANs replaced by test PANs")
    # It reads back as a trace the library still reads the card from (the test PAN keeps
    # the first 6 and last 4 digits, and 5A and Track 2 agree).
    imported = log_to_trace(log, source="raw.log")
    card = replay(imported, transaction=False, check_complete=True)
    assert card.masked_pan == "476173******0010" and card.pan != PAN
    # The same through the CLI, to a file.
    log_path, back = tmp_path / "raw.log", tmp_path / "back.jsonl"
    run("trace", "export-scriptor", "--log", str(raw_trace), "-o", str(log_path))
    assert log_path.read_text() == log
    run("trace", "import-scriptor", str(log_path), "-o", str(back))
    assert replay(read_trace(back), transaction=False).brand == "visa"


def test_the_log_shows_the_card_data_with_show_pan(raw_trace: Path) -> None:
    log = run("trace", "export-scriptor", "--log", "--show-pan", str(raw_trace))
    assert "PAN in spaced hex" in leaks(log, PAN_FORMS)
    assert "name in spaced hex" in leaks(log, NAME_FORMS)
    assert "redacted" not in log
    trace = read_trace(raw_trace)
    back = log_to_trace(log)
    assert [(e.command, e.response) for e in back.exchanges] == [
        (e.command, e.response) for e in trace.exchanges
    ]


def test_a_written_script_is_masked_too(raw_trace: Path, tmp_path: Path) -> None:
    target = tmp_path / "raw.script"
    run("trace", "export-scriptor", str(raw_trace), "-o", str(target))
    text = target.read_text()
    assert text.startswith("# raw.jsonl: 6 exchange(s)")
    assert leaks(text, PAN_FORMS) == [] and leaks(text, NAME_FORMS) == []


def test_the_library_functions_mask_unless_asked() -> None:
    trace = read_trace_of(Exchange(bytes.fromhex("00B2010C00"), _record_with_pan_and_name()))
    for export in (export_script, export_log):
        assert leaks(export(trace), PAN_FORMS) == []
        assert leaks(export(trace), NAME_FORMS) == []
        assert "PAN in spaced hex" in leaks(export(trace, show_sensitive=True), PAN_FORMS)


def _record_with_pan_and_name() -> bytes:
    body = bytes.fromhex("5A08" + PAN) + bytes.fromhex("5F20") + bytes((len(NAME),)) + NAME
    return bytes((0x70, len(body))) + body + b"\x90\x00"


def read_trace_of(*entries: Exchange) -> Trace:
    return Trace(TraceHeader(protocol="T1", redacted=False), tuple(entries), "hand.jsonl")


def test_a_tag_sensitive_for_one_scheme_only_is_hidden(tmp_path: Path) -> None:
    # A UnionPay record holding the Cardholder ID Number, after the SELECT that names the
    # application (the tag is sensitive only in UnionPay's row of the dictionary).
    select = bytes.fromhex("6F0B8407" + UNIONPAY_AID + "A5009000")
    record = bytes.fromhex("700D9F610A") + ID_NUMBER + b"\x90\x00"
    trace = read_trace_of(
        Exchange(bytes.fromhex("00A4040007" + UNIONPAY_AID + "00"), select),
        Exchange(bytes.fromhex("00B2010C00"), record),
    )
    path = tmp_path / "unionpay.jsonl"
    write_trace(trace, path)
    for extra in ([], ["--log"]):
        shown = run("trace", "export-scriptor", *extra, str(path))
        assert leaks(shown, ID_FORMS) == [], extra
        assert "9F 61 0A" in shown  # the data object is there, its value is not
        opted = run("trace", "export-scriptor", *extra, "--show-pan", str(path))
        assert "ID number in spaced hex" in leaks(opted, ID_FORMS)
    # The redacted log keeps the length (the value is zeroed as text), so it still decodes.
    log = run("trace", "export-scriptor", "--log", str(path))
    imported = log_to_trace(log)
    assert find_value(imported.exchanges[1].response[:-2], "9F61") == b"0" * 10


def test_a_verify_pin_block_is_left_out_of_the_script(tmp_path: Path) -> None:
    verify = bytes.fromhex("0020008008241234FFFFFFFFFF")
    trace = read_trace_of(
        Exchange(bytes.fromhex("00B2010C00"), _record_with_pan_and_name()),
        Exchange(verify, bytes.fromhex("9000")),
    )
    path = tmp_path / "pin.jsonl"
    write_trace(trace, path)
    script = run("trace", "export-scriptor", str(path))
    assert "24 12 34" not in script and "command left out: its data is a PIN block" in script
    assert [step.command for step in parse_script(script)] == [bytes.fromhex("00B2010C00")]
    log = run("trace", "export-scriptor", "--log", str(path))
    assert "24 12 34" not in log and "> 00 20 00 80 08 24 00 00 FF" in log
    opted = run("trace", "export-scriptor", "--show-pan", str(path))
    assert [step.command for step in parse_script(opted)][-1] == verify


def test_a_corrupted_answer_hides_the_card_data_too(tmp_path: Path) -> None:
    # The GPO answer's TLV is broken, so it does not decode (and the read stops there):
    # redaction still finds the PAN and name by their own patterns, and the script's
    # comment shows the redacted bytes.
    path = tmp_path / "corrupt.jsonl"
    result = CliRunner().invoke(
        cli, ["record", "--reader", "sim:visa?corrupt=A8", "-o", str(path), "--no-redact"]
    )
    assert path.exists(), result.output
    answer = read_trace(path).exchanges[-1].response
    assert decode(answer[:-2], strict=False).error is not None
    assert PAN in answer.hex().upper() and NAME in answer  # the card's data is in the trace
    for extra in ([], ["--log"]):
        shown = run("trace", "export-scriptor", *extra, str(path))
        assert leaks(shown, PAN_FORMS) == [], extra
        assert leaks(shown, NAME_FORMS) == [], extra
    assert "PAN in spaced hex" in leaks(
        run("trace", "export-scriptor", "--show-pan", str(path)), PAN_FORMS
    )


@pytest.mark.parametrize("tag", sorted(sensitive_tags()))
def test_no_export_shows_a_value_the_dictionary_marks_sensitive(tag: str) -> None:
    # One source for both exports: trace_redact.redact, whatever tag tags.csv marks.
    secret = b"S3CRETXDATA42"  # no "D" nibble: it cannot pass for a Track 2 by chance
    body = bytes.fromhex(tag) + bytes((len(secret),)) + secret
    record = bytes((0x70, len(body))) + body + b"\x90\x00"
    trace = read_trace_of(Exchange(bytes.fromhex("00B2010C00"), record))
    forms = _forms("secret", secret.decode(), secret)
    assert leaks(export_script(trace), forms) == []
    if tag == "9F6B":
        # Not shaped like Track 2 Data, it is read as Visa's Card CVM Limit, which the
        # flow uses: redaction keeps it, so the log (the redacted trace) shows it.
        assert "secret in spaced hex" in leaks(export_log(trace), forms)
    else:
        assert leaks(export_log(trace), forms) == []
    for export in (export_script, export_log):
        assert "secret in spaced hex" in leaks(export(trace, show_sensitive=True), forms)
