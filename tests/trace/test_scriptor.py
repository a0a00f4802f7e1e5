"""The pcsc-tools scriptor formats: scripts in, scripts and logs out, logs in; checked
against scriptor's own Perl code and against the real scriptor on pcscd + vpcd."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from trace_testkit import record_trace

from contactless.cli import cli
from contactless.errors import ConfigError
from contactless.testing import replay
from contactless.trace import Exchange, Trace, TraceEvent, TraceHeader, read_trace, write_trace
from contactless.trace_redact import redact
from contactless.trace_scriptor import (
    ScriptStep,
    export_log,
    export_script,
    is_log,
    log_to_trace,
    parse_script,
    run_script,
    scriptor_meaning,
)
from contactless.transport import open as open_transport

HERE = Path(__file__).resolve().parent

#: A scriptor script in the style of its manual page.
SCRIPT = """\
# reset the card
reset

# Select the PPSE
00 A4 04 00 0E 32 50 41 59 2E 53 59 53 2E 44 44 46 30 31 00
#comment without a space
00A4040007A000000003101000
80 A8 00 00 23 83 21 36 00 40 00 00 00 00 00 01 00 00 00 00 00 00 00 08 40 00 00 00 \\
00 00 08 40 24 05 17 00 1A 2B 3C 4D 00
exit
00 B2 01 0C 00
"""

#: What scriptor prints for a script (from a file, so each line is echoed first).
LOG = "\n".join(
    [
        "Using T=1 protocol",
        "# Select the PPSE",
        "00 A4 04 00 0E 32 50 41 59 2E 53 59 53 2E 44 44 46 30 31 00",
        "> 00 A4 04 00 0E 32 50 41 59 2E 53 59 53 2E 44 44 46 30 31 00",
        "< 6A 82 : Wrong parameter(s) P1-P2. File not found.",
        "> RESET",
        "< OK: 3B 87 80 01 73 C8 40 00 00 90 00 6D ",  # scriptor leaves a space at the end
        "> 00 B2 01 0C 00",
        "< 70 15 57 13 47 61 73 00 00 01 00 10 D2 81 22 01 ",
        "00 00 00 00 00 00 0F 90 00 : Normal processing.",
        "> 00 B2 01 14 00",
        "Can't get info: Card was removed.",
        "",
    ]
)


def _perl(program: str, stdin: str) -> str:
    done = subprocess.run(
        ["perl", "-e", program], input=stdin, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def _perl_available() -> bool:
    if shutil.which("perl") is None:
        return False
    probe = subprocess.run(
        ["perl", "-e", "use Chipcard::PCSC::Card;"], capture_output=True, timeout=30, check=False
    )
    return probe.returncode == 0


# pcsc-tools brings perl and Chipcard::PCSC; tools/test.sh installs it, so CI must have it.
needs_perl = pytest.mark.skipif(
    not _perl_available() and not os.environ.get("CI"),
    reason="perl with Chipcard::PCSC (pcsc-tools) is not installed",
)


# --- scripts -----------------------------------------------------------------------------------


def test_a_script_is_read_by_scriptors_rules() -> None:
    steps = parse_script(SCRIPT)
    assert [step.kind for step in steps] == ["reset", "apdu", "apdu", "apdu"]
    assert steps[1] == ScriptStep(
        "apdu", bytes.fromhex("00A404000E325041592E5359532E444446303100"), 5
    )
    assert steps[2].command == bytes.fromhex("00A4040007A000000003101000")
    # The continued command joins its two lines; `exit` ends the script.
    assert steps[3].command is not None and len(steps[3].command) == 5 + 0x23 + 1
    assert steps[3].line == 8


def test_exit_anywhere_in_a_line_ends_the_script_even_in_a_comment() -> None:
    assert parse_script("00A4040000\n# we exit here\n00B2010C00\n") == [
        ScriptStep("apdu", bytes.fromhex("00A4040000"), 1)
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00 A4 04 0G\n", "line 1: the command is not hex"),
        ("\n00 A4\n", "line 2: a command needs CLA INS P1 P2"),
        ("00 A4 04 00 \\\n", "the last command ends with a backslash"),
    ],
)
def test_bad_scripts_name_the_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        parse_script(text, source="s.txt")


def test_an_exported_script_reads_back_as_the_same_commands() -> None:
    trace = record_trace("sim:mastercard?t0=1", transaction=True)
    script = export_script(trace)
    assert "exit" not in script.lower()
    commands = [step.command for step in parse_script(script)]
    assert commands == [entry.command for entry in trace.exchanges]
    assert "# answer: 61 37 : 0x37 bytes of response still available." in script


def test_running_a_script_on_a_reader_records_a_trace() -> None:
    with open_transport("sim:visa") as reader:
        trace = run_script(parse_script(SCRIPT), reader)
    assert isinstance(trace.entries[0], TraceEvent) and trace.entries[0].kind == "reset"
    assert trace.entries[0].extra["atr"] == "3B87800173C840000090006D"
    assert [e.response[-2:].hex().upper() for e in trace.exchanges] == ["9000", "9000", "9000"]


# --- logs --------------------------------------------------------------------------------------


def test_a_scriptor_log_becomes_a_trace() -> None:
    assert is_log(LOG) and not is_log(SCRIPT)
    trace = log_to_trace(LOG, source="session.log")
    assert trace.header.protocol == "T=1"
    assert trace.header.atr == bytes.fromhex("3B87800173C840000090006D")
    first, reset, record, removed = trace.entries
    assert first == Exchange(
        bytes.fromhex("00A404000E325041592E5359532E444446303100"), bytes.fromhex("6A82")
    )
    assert first.line == 4
    assert isinstance(reset, TraceEvent) and reset.kind == "reset"
    assert isinstance(record, Exchange) and len(record.response) == 0x17 + 2
    assert record.response.endswith(bytes.fromhex("0F9000"))
    assert removed == TraceEvent("card_removed", bytes.fromhex("00B2011400"))


def test_a_log_without_exchanges_or_with_an_orphan_answer_is_refused() -> None:
    with pytest.raises(ConfigError, match="no exchanges found"):
        log_to_trace("Using T=1 protocol\n")
    with pytest.raises(ConfigError, match="line 1: an answer without a command"):
        log_to_trace("< 90 00 : Normal processing.\n", source="x")
    with pytest.raises(ConfigError, match="line 1: the command is not hex"):
        log_to_trace("> 00 ZZ\n", source="x")


def test_an_exported_log_imports_back_to_the_same_exchanges() -> None:
    for uri in ("sim:jcb", "sim:mastercard?t0=1", "sim:visa?remove_after=4"):
        trace = record_trace(uri, transaction=True)
        back = log_to_trace(export_log(trace, show_sensitive=True))
        assert [(e.command, e.response) for e in back.exchanges] == [
            (e.command, e.response) for e in trace.exchanges
        ]
        last = trace.entries[-1]
        if isinstance(last, TraceEvent):
            assert back.entries[-1] == TraceEvent(last.kind, last.command)
        # By default the log holds the redacted trace, exchange for exchange.
        redacted, _ = redact(trace)
        back = log_to_trace(export_log(trace))
        assert [(e.command, e.response) for e in back.exchanges] == [
            (e.command, e.response) for e in redacted.exchanges
        ]


def test_an_exported_log_has_scriptors_line_layout() -> None:
    trace = Trace(
        TraceHeader(protocol="T1"),
        (
            Exchange(bytes.fromhex("00B2010C00"), bytes(range(30)) + bytes.fromhex("9000")),
            TraceEvent("reset", extra={"atr": "3B00"}),
            Exchange(bytes.fromhex("00B2010C00"), bytes(range(14)) + bytes.fromhex("6A83")),
        ),
    )
    assert export_log(trace).splitlines() == [
        "Using T=1 protocol",
        "> 00 B2 01 0C 00",
        "< 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F ",
        "10 11 12 13 14 15 16 17 18 19 1A 1B 1C 1D 90 00 : Normal processing.",
        "> RESET",
        "< OK: 3B 00 ",
        "> 00 B2 01 0C 00",
        "< 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 6A 83 : "
        "Wrong parameter(s) P1-P2. Record not found.",
    ]


@needs_perl
def test_status_word_texts_match_scriptors_perl_for_every_status_word() -> None:
    words = [f"{sw >> 8:02X} {sw & 0xFF:02X}" for sw in range(0x10000)]
    program = (
        "use Chipcard::PCSC::Card; "
        'while (<STDIN>) { chomp; print Chipcard::PCSC::Card::ISO7816Error($_), "\\n" }'
    )
    expected = _perl(program, "\n".join(words) + "\n").split("\n")[:-1]
    ours = [scriptor_meaning(sw >> 8, sw & 0xFF) for sw in range(0x10000)]
    different = [(w, a, b) for w, a, b in zip(words, ours, expected, strict=True) if a != b]
    assert different == []


@needs_perl
@pytest.mark.parametrize("size", [1, 2, 15, 16, 17, 31, 32, 33, 48, 100, 258])
def test_answer_wrapping_matches_scriptors_perl(size: int) -> None:
    data = bytes(i & 0xFF for i in range(size))
    program = (
        "use Chipcard::PCSC; my @a = map { hex } split / /, <STDIN>; "
        'my $r = Chipcard::PCSC::array_to_ascii(\\@a); my $m = ".. " x 16; '
        '$r =~ s/($m)/$1\\n/g; print "< $r : X\\n";'
    )
    expected = _perl(program, " ".join(f"{b:02X}" for b in data) + "\n")
    trace = Trace(TraceHeader(), (Exchange(b"\x00\xb2\x01\x0c", data),))
    line = export_log(trace).split("> 00 B2 01 0C\n", 1)[1]
    assert line.rsplit(" : ", 1)[0] == expected.rsplit(" : ", 1)[0]


# --- the CLI and the real scriptor --------------------------------------------------------------


def test_cli_exports_and_imports(tmp_path: Path) -> None:
    runner = CliRunner()
    trace_path = tmp_path / "visa.jsonl"
    write_trace(record_trace("sim:visa"), trace_path)
    script = runner.invoke(cli, ["trace", "export-scriptor", str(trace_path)])
    assert script.exit_code == 0 and script.stdout.startswith("# visa.jsonl: 6 exchange(s)")
    log_path = tmp_path / "visa.log"
    done = runner.invoke(
        cli, ["trace", "export-scriptor", str(trace_path), "--log", "-o", str(log_path)]
    )
    assert done.exit_code == 0
    back = tmp_path / "back.jsonl"
    done = runner.invoke(cli, ["trace", "import-scriptor", str(log_path), "-o", str(back)])
    assert done.exit_code == 0, done.output
    imported = read_trace(back)
    assert imported.header.redacted is True
    assert replay(imported, transaction=False).brand == "visa"

    script_path = tmp_path / "visa.script"
    script_path.write_text(script.stdout)
    done = runner.invoke(cli, ["trace", "import-scriptor", str(script_path), "-o", str(back)])
    assert done.exit_code == 2 and "pass --reader URI" in done.stderr
    done = runner.invoke(
        cli, ["trace", "import-scriptor", str(script_path), "-o", str(back), "-r", "sim:visa"]
    )
    assert done.exit_code == 0, done.output
    assert len(read_trace(back).exchanges) == 6
    done = runner.invoke(cli, ["trace", "import-scriptor", str(tmp_path / "none"), "-o", str(back)])
    assert done.exit_code == 2 and "cannot read" in done.stderr


@pytest.mark.e2e
def test_the_real_scriptor_runs_an_exported_script_and_its_log_imports_back(tmp_path: Path) -> None:
    trace = record_trace("sim:visa")
    script = tmp_path / "visa.script"
    script.write_text(export_script(trace))
    done = subprocess.run(
        [sys.executable, str(HERE / "scriptor_e2e_run.py"), "visa", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode == 77:
        if os.environ.get("CI"):
            pytest.fail(f"e2e stack missing in CI: {done.stderr.strip()}")
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stderr
    log = done.stdout
    assert log.startswith("Using T=1 protocol")
    assert "< 6F 4D 84 0E 32 50 41 59 2E 53 59 53 2E 44 44 46 \n30 31 A5 3B BF 0C" in log
    imported = log_to_trace(log, source="scriptor")
    # A fresh card with the same commands (the same unpredictable number and date) gives
    # the same answers, cryptogram included.
    assert [(e.command, e.response) for e in imported.exchanges] == [
        (e.command, e.response) for e in trace.exchanges
    ]
    assert imported.header.protocol == "T=1"


@pytest.mark.parametrize("answer", ["< 90", "< "])
def test_a_log_answer_without_sw1_sw2_is_refused_naming_the_line(answer: str) -> None:
    with pytest.raises(ConfigError, match=r"session\.log: line 2: the answer holds [01] byte"):
        log_to_trace(f"> 00 A4 04 00 00\n{answer}\n", source="session.log")
