"""The pytest plugin (contactless.testing.pytest_plugin), run in inner pytest sessions with
pytester: fixtures, the apdu_trace marker and record modes, trace folders as tests,
readable failures, and pytest-xdist."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from visa_card import VISA_NAME, VISA_PAN, visa_data_in

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors" / "traces"

READ_TEST = """
from contactless.emv.driver import run
from contactless.emv.flow import read_flow
from contactless.emv.terminal import TerminalConfig
from contactless.session import Card


def read(reader, **kwargs):
    return run(Card(reader), read_flow(TerminalConfig(), **kwargs))
"""


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # The plugin comes in through its pytest11 entry point; name it when autoload is off.
    extra = ["-p", "contactless.testing.pytest_plugin"]
    if not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        extra = []
    return pytester.runpytest(*extra, *args)


def test_the_plugin_is_loaded_through_its_entry_point(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--help")
    result.stdout.fnmatch_lines(["*--apdu-record-mode*", "*--apdu-record-reader*"])
    result.stdout.fnmatch_lines(["*apdu_trace_dirs*"])
    markers = _run(pytester, "--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.apdu_trace(*", "@pytest.mark.sim_card(*"])


def test_sim_reader_by_default_by_parametrization_and_by_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        READ_TEST
        + """
import pytest
from contactless.errors import CardRemoved


def test_default(sim_reader):
    assert sim_reader.uri == "sim:visa"
    assert read(sim_reader).brand == "visa"


@pytest.mark.parametrize(
    "sim_reader", ["mastercard?t0=1", "sim:amex", {"profile": "jcb", "faults": {"t0": "1"}}],
    indirect=True,
)
def test_parametrized(sim_reader):
    assert sim_reader.uri in ("sim:mastercard?t0=1", "sim:amex", "sim:jcb?t0=1")
    assert read(sim_reader).brand in ("mastercard", "amex", "jcb")


@pytest.mark.sim_card("discover", faults="remove_after=2")
def test_marker_with_faults(sim_reader):
    with pytest.raises(CardRemoved):
        read(sim_reader)
"""
    )
    result = _run(pytester, "-q")
    result.assert_outcomes(passed=5)


def _marked_test(pytester: pytest.Pytester, body: str = "") -> None:
    pytester.makepyfile(
        test_cards=READ_TEST
        + """
import pytest


@pytest.mark.apdu_trace("amex-read", reader="sim:amex")
def test_amex(replay_reader):
    assert read(replay_reader).brand == "amex"
"""
        + body
    )


def test_a_missing_trace_fails_in_record_mode_none(pytester: pytest.Pytester) -> None:
    _marked_test(pytester)
    result = _run(pytester, "-q")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no APDU trace *traces/test_cards/amex-read.jsonl*once*"])


def test_record_once_then_replay(pytester: pytest.Pytester) -> None:
    _marked_test(pytester)
    recorded = _run(pytester, "-q", "--apdu-record-mode=once")
    recorded.assert_outcomes(passed=1)
    path = pytester.path / "traces" / "test_cards" / "amex-read.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["transport"] == "sim:amex" and lines[0]["redacted"] is True
    assert "test_cards.py::test_amex" in lines[0]["note"]
    text = path.read_text()
    _run(pytester, "-q").assert_outcomes(passed=1)  # now replayed
    _run(pytester, "-q", "--apdu-record-mode=once").assert_outcomes(passed=1)
    assert path.read_text() == text  # once: an existing trace is kept


def test_record_all_records_again_from_the_reader_given(pytester: pytest.Pytester) -> None:
    _marked_test(
        pytester,
        """

@pytest.mark.apdu_trace("any-card")
def test_any(replay_reader):
    assert read(replay_reader).brand
""",
    )
    _run(pytester, "-q", "--apdu-record-mode=once").assert_outcomes(passed=2)
    trace = pytester.path / "traces" / "test_cards" / "any-card.jsonl"
    assert json.loads(trace.read_text().splitlines()[0])["transport"] == "sim:visa"
    _run(
        pytester, "-q", "--apdu-record-mode=all", "--apdu-record-reader=sim:unionpay", "-k", "any"
    ).assert_outcomes(passed=1, deselected=1)
    assert json.loads(trace.read_text().splitlines()[0])["transport"] == "sim:unionpay"


def test_a_failing_test_records_no_trace(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_failing=READ_TEST
        + """
import pytest


@pytest.mark.apdu_trace
def test_wrong_brand(replay_reader):
    assert read(replay_reader).brand == "amex"
"""
    )
    _run(pytester, "-q", "--apdu-record-mode=once").assert_outcomes(failed=1)
    assert not (pytester.path / "traces").exists() or not any(
        (pytester.path / "traces").rglob("*.jsonl")
    )


def test_unused_recorded_exchanges_fail_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_partial=READ_TEST
        + """
import pytest


@pytest.mark.apdu_trace("jcb")
def test_full(replay_reader):
    read(replay_reader, transaction=True)


@pytest.mark.apdu_trace("jcb")
def test_read_only(replay_reader):
    read(replay_reader)


@pytest.mark.apdu_trace("jcb", allow_unused=True)
def test_read_only_allowed(replay_reader):
    read(replay_reader)


@pytest.mark.apdu_trace("jcb", match="loose")
def test_loose_other_terminal(replay_reader):
    from contactless.emv.terminal import TerminalConfig
    from contactless.emv.driver import run
    from contactless.emv.flow import read_flow
    from contactless.session import Card
    config = TerminalConfig(country=826, amount=5)
    assert run(Card(replay_reader), read_flow(config, transaction=True)).brand == "jcb"
"""
    )
    _run(
        pytester, "-q", "--apdu-record-mode=once", "--apdu-record-reader=sim:jcb", "-k", "full"
    ).assert_outcomes(passed=1, deselected=3)
    result = _run(pytester, "-q")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_read_only*", "*recorded entr*not replayed*GENERATE AC*"])


def test_a_marked_test_without_the_fixture_still_needs_its_trace(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_nofixture="""
import pytest


@pytest.mark.apdu_trace("missing")
def test_marked():
    pass
"""
    )
    _run(pytester, "-q").assert_outcomes(errors=1)


def test_a_strict_mismatch_names_the_field(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_drift=READ_TEST
        + """
import pytest
from contactless.emv.driver import run
from contactless.emv.flow import read_flow
from contactless.emv.terminal import TerminalConfig
from contactless.session import Card


@pytest.mark.apdu_trace("visa")
def test_country(replay_reader, request):
    country = 840 if request.config.getoption("--apdu-record-mode") else 826
    run(Card(replay_reader), read_flow(TerminalConfig(country=country)))
"""
    )
    _run(pytester, "-q", "--apdu-record-mode=once").assert_outcomes(passed=1)
    result = _run(pytester, "-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*ExchangeMismatch*Terminal Country Code (9F1A) differs: sent 0826, recorded 0840*"]
    )


# --- trace folders as tests ------------------------------------------------------------------


def _trace_folder(pytester: pytest.Pytester, *names: str) -> Path:
    folder = pytester.path / "vectors"
    folder.mkdir()
    for name in names:
        shutil.copy(VECTORS / f"{name}.jsonl", folder)
        shutil.copy(VECTORS / f"{name}.expected.json", folder)
    pytester.makeini("[pytest]\napdu_trace_dirs = vectors\n")
    return folder


def test_every_trace_in_apdu_trace_dirs_is_a_test(pytester: pytest.Pytester) -> None:
    _trace_folder(pytester, "visa-read", "mastercard-t0-transaction", "visa-removed-mid-read")
    (pytester.path / "elsewhere.jsonl").write_text("not a trace, and not collected\n")
    result = _run(pytester, "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*vectors/visa-read.jsonl::replay PASSED*"])


def test_a_changed_outcome_is_reported_readably(pytester: pytest.Pytester) -> None:
    folder = _trace_folder(pytester, "visa-read")
    expected_path = folder / "visa-read.expected.json"
    expected = json.loads(expected_path.read_text())
    expected["result"]["expiry"] = "2099-01"
    expected["result"]["responses"][0]["tlvs"][0]["children"][0]["value"] = "00"
    expected_path.write_text(json.dumps(expected))
    result = _run(pytester, "-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*replaying visa-read.jsonl no longer gives visa-read.expected.json:*",
            '*result.expiry: got "2028-12", expected "2099-01"*',
        ]
    )
    assert (
        "result.responses[0].tlvs[0:6F File Control Information (FCI) Template]"
        '.children[0:84 Dedicated File (DF) Name].value: got "325041592E5359532E4444463031"'
        ', expected "00"'
    ) in result.stdout.str()
    assert VISA_PAN not in result.stdout.str()


def test_a_trace_that_drifted_shows_the_mismatch(pytester: pytest.Pytester) -> None:
    folder = _trace_folder(pytester, "mastercard-read")
    path = folder / "mastercard-read.jsonl"
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header["terminal"]["country"] = 826
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    result = _run(pytester, "-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the replay failed with ExchangeMismatch:*",
            "*Terminal Country Code (9F1A) differs: sent 0826, recorded 0840*",
        ]
    )


def test_a_missing_expected_outcome_fails_or_is_written(pytester: pytest.Pytester) -> None:
    folder = _trace_folder(pytester, "jcb-read")
    expected = folder / "jcb-read.expected.json"
    stored = json.loads(expected.read_text())
    expected.unlink()
    result = _run(pytester, "-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no expected outcome*jcb-read.expected.json*"])
    _run(pytester, "-q", "--apdu-record-mode=once").assert_outcomes(passed=1)
    assert json.loads(expected.read_text()) == stored
    _run(pytester, "-q").assert_outcomes(passed=1)


def test_a_broken_trace_file_fails_with_its_line(pytester: pytest.Pytester) -> None:
    folder = _trace_folder(pytester)
    (folder / "broken.jsonl").write_text('{"format": "contactless-trace", "version": 7}\n')
    result = _run(pytester, "-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cannot replay broken.jsonl*line 1*version 7*"])


# --- readable assertion failures ---------------------------------------------------------------


def test_comparing_exchanges_shows_a_hex_diff_with_tag_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
from contactless.apdu import Response
from contactless.trace import Exchange


def test_exchange():
    a = Exchange(bytes.fromhex("00A4040000"), bytes.fromhex("6F0B8402A000A5059F3802 9F66 9000"))
    b = Exchange(bytes.fromhex("00A4040000"), bytes.fromhex("6F0B8402A000A5059F3802 9F67 9000"))
    assert a == b


def test_response():
    a = Response(bytes.fromhex("5A084761739001010010"), 0x90, 0x00)
    b = Response(bytes.fromhex("5A084761739001010011"), 0x90, 0x00)
    assert a == b
"""
    )
    result = _run(pytester, "-q")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*Exchange == Exchange failed:*",
            "*^^ byte 12*",
            "*6F/A5/9F38 Processing Options Data Object List (PDOL): 9F66 vs 9F67*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*Response == Response failed:*", "*5A Application Primary Account Number (PAN)*masked*"]
    )
    explanations = [line for line in result.outlines if line.startswith("E ")]
    assert explanations and not any(VISA_PAN in line for line in explanations)


def test_entries_that_differ_in_timing_or_note_name_the_fields_only(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
import dataclasses

from contactless import read_card
from contactless.trace import Recorder


def test_retried():
    recorder = Recorder()
    read_card("sim:visa", wait=5, timeout=5, on_card=recorder.attach)
    record = next(e for e in recorder.entries if e.command == bytes.fromhex("00B2010C00"))
    assert record == dataclasses.replace(record, ms=12.5, note="retried")
"""
    )
    # -l: pytest prints every local's repr too (the recorder's entries, the record).
    result = _run(pytester, "-q", "-vv", "-l")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*Exchange == Exchange failed:*",
            "*exchange READ RECORD SFI 1 record 1*",
            "*ms: * vs 12.5*",
            "*note: None vs 'retried'*",
            "*<Exchange READ RECORD SFI 1 record 1 -> SW 9000, 67 data bytes, *",
        ]
    )
    assert visa_data_in(result.stdout.str()) == []


def test_comparing_card_reads_lists_the_fields_masked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import dataclasses

from contactless import read_card


def test_same_card():
    card = read_card("sim:visa", wait=5, timeout=5)
    again = dataclasses.replace(
        card,
        pan="4111111111111111",
        cardholder_name=card.cardholder_name.lower(),
        track2=dataclasses.replace(card.track2, pan="4111111111111111"),
        apdus=card.apdus + 1,
    )
    assert card == again
"""
    )
    result = _run(pytester, "-q", "-vv", "-l")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*CardData == CardData failed:*",
            "*pan: 476173******0010 vs 411111******1111*",
            "*cardholder_name: ******** vs ******** (masked*",
            "*track2: 476173******0010D2812201************* vs 411111******1111D2812201****",
            "*apdus: 6 vs 7*",
        ]
    )
    output = result.stdout.str()
    assert visa_data_in(output) == [] and VISA_NAME.lower() not in output
    assert "Differing attributes" not in output  # pytest's own dataclass diff did not run


# --- pytest-xdist ---------------------------------------------------------------------------------


def test_everything_works_under_xdist(pytester: pytest.Pytester) -> None:
    _trace_folder(pytester, "visa-read", "amex-transaction", "discover-record-not-found")
    _marked_test(pytester)
    pytester.makepyfile(
        test_sim="""
import pytest


@pytest.mark.parametrize("sim_reader", ["visa", "amex", "jcb", "unionpay"], indirect=True)
def test_sim(sim_reader):
    assert sim_reader.card_present()
"""
    )
    recorded = pytester.runpytest_subprocess("-n", "2", "--apdu-record-mode=once")
    recorded.assert_outcomes(passed=8)
    replayed = pytester.runpytest_subprocess("-n", "2")
    replayed.assert_outcomes(passed=8)
