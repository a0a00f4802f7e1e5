"""`contactless selftest` and `contactless baseline` from the command line: exit statuses,
the three report formats, the language, and card data kept masked everywhere."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner, Result
from selftest_support import VISA_PAN, english_words, run

from contactless.cli import cli
from contactless.selftest import load_catalog, load_schema, report_json

#: No locale from the machine running the tests leaks into the default language.
ENGLISH = {
    "LC_ALL": None,
    "LC_MESSAGES": None,
    "LANG": "C.UTF-8",
    "COLUMNS": "160",
    "CONTACTLESS_READER": None,
}


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={**ENGLISH, **(env or {})})


def test_the_healthy_sim_terminal_passes_with_exit_0_in_a_fresh_process() -> None:
    # The brief's bound is "well under 10 s"; 10 s here is only the anti-hang deadline.
    completed = subprocess.run(
        [sys.executable, "-m", "contactless", "selftest", "--reader", "sim:visa"],
        capture_output=True,
        text=True,
        timeout=10,
        env={**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "COLUMNS": "160"},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Verdict: PASS" in completed.stdout


@pytest.mark.parametrize(
    ("reader", "status"),
    [
        ("sim:visa", 0),
        ("sim:visa?error_rate=0.1&seed=2", 1),
        ("sim:visa?pin_tries=0", 2),
    ],
)
def test_exit_status_follows_the_verdict(reader: str, status: int) -> None:
    result = invoke("selftest", "--reader", reader, "--json")
    assert result.exit_code == status, result.output
    assert json.loads(result.output)["verdict"] == ["pass", "warn", "fail"][status]


@pytest.mark.parametrize(
    "args",
    [
        ["--reader", "nosuch:x"],
        ["--reader", "sim:visa?colour=blue"],
        ["--reader", "sim:visa", "--baseline", "/nonexistent/baseline.json"],
        ["--reader", "sim:visa", "--loops", "0"],
        ["--reader", "sim:visa", "--lang", "fr"],
        ["--reader", "sim:visa", "--host", "no-port"],
        ["--reader", "sim:visa", "--junit", "/nonexistent/dir/report.xml"],
        ["--no-such-option"],
    ],
)
def test_a_self_test_that_cannot_run_exits_3(args: list[str]) -> None:
    result = invoke("selftest", *args)
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output


def test_the_json_report_validates_against_the_shipped_schema() -> None:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for reader in ("sim:visa", "sim:visa?pin_tries=0", "sim:visa?hang_after=0&seed=1"):
        result = invoke("selftest", "--reader", reader, "--json", "--loops", "5")
        document = json.loads(result.output)
        jsonschema.validate(document, schema, format_checker=jsonschema.FormatChecker())
        assert document["schema"] == 1


def test_the_schema_rejects_what_it_should() -> None:
    schema = load_schema()
    document = json.loads(invoke("selftest", "--reader", "sim:visa?pin_tries=0", "--json").output)
    for broken in (
        {**document, "verdict": "ok"},
        {**document, "checks": [{**document["checks"][0], "status": "maybe"}]},
        {**document, "diagnosis": [{**document["diagnosis"][0], "category": "weather"}]},
        {k: v for k, v in document.items() if k != "checks"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_the_junit_report_has_one_case_per_check(tmp_path: Path) -> None:
    target = tmp_path / "selftest.xml"
    result = invoke("selftest", "--reader", "sim:visa?pin_tries=0", "--junit", str(target))
    assert result.exit_code == 2
    root = ET.parse(target).getroot()
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == [
        check["id"]
        for check in json.loads(invoke("selftest", "--reader", "sim:visa", "--json").output)[
            "checks"
        ]
    ]
    failures = [case for case in cases if case.find("failure") is not None]
    skipped = [case for case in cases if case.find("skipped") is not None]
    assert suite.get("tests") == str(len(cases))
    assert suite.get("failures") == str(len(failures)) and failures
    assert suite.get("skipped") == str(len(skipped))
    assert suite.get("errors") == "0"
    pin = next(case for case in cases if case.get("name") == "card.pin_tries")
    failure = pin.find("failure")
    assert failure is not None and failure.get("type") == "card.pin_blocked"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["verdict"] == "fail"
    assert properties["diagnosis.1"].startswith("card_or_pin ")
    for case in cases:
        assert case.get("classname", "").startswith("selftest.")
        float(case.get("time", "x"))


def test_warnings_show_in_junit_system_out(tmp_path: Path) -> None:
    target = tmp_path / "selftest.xml"
    invoke("selftest", "--reader", "sim:visa?error_rate=0.1&seed=2", "--junit", str(target))
    cases = {case.get("name"): case for case in ET.parse(target).getroot().iter("testcase")}
    link = cases["link.quality"]
    assert link.find("failure") is None
    assert (link.findtext("system-out") or "").startswith("WARN: ")


def test_the_text_report(tmp_path: Path) -> None:
    result = invoke("selftest", "--reader", "sim:visa?pin_tries=0")
    assert result.exit_code == 2
    text = result.output
    assert "Verdict: FAIL" in text
    assert "Diagnosis" in text and "1. Card number, PIN or card (confidence" in text
    assert "No PIN tries left: the PIN is blocked." in text
    assert "After fixing, run a test transaction." in text


def test_chinese_by_option_and_by_locale() -> None:
    by_option = invoke("selftest", "--reader", "sim:visa", "--lang", "zh")
    by_locale = invoke("selftest", "--reader", "sim:visa", env={"LANG": "zh_CN.UTF-8"})
    for result in (by_option, by_locale):
        assert result.exit_code == 0
        assert "结论：通过" in result.output
    assert "Verdict" not in by_locale.output


@pytest.mark.parametrize(
    "reader",
    [
        "sim:visa",
        "sim:visa?pin_tries=0",
        "sim:visa?expired=1",
        "sim:visa?error_rate=0.2&seed=1",
        "sim:visa?hang_after=0",
        "sim:visa?sw=A4:6A81",
        "sim:visa?firmware=9.9.9",
    ],
)
def test_the_chinese_report_has_no_english_message_text(reader: str) -> None:
    report = run(reader, loops=10, host="127.0.0.1:1")
    catalog = load_catalog("zh")
    document = report_json(report, catalog)
    checked = 0
    for result, shown in zip(report.checks, document["checks"], strict=True):
        for text in (shown["message"], shown["remedy"] or "", shown["title"]):
            assert english_words(text, result.params) == [], (result.id, text)
            checked += 1
    for diagnosis, shown in zip(report.diagnosis, document["diagnosis"], strict=True):
        assert english_words(shown["name"]) == []
        for item, evidence in zip(diagnosis.evidence, shown["evidence"], strict=True):
            assert english_words(evidence["message"], item.params) == [], evidence
        for remedy in shown["remedies"]:
            assert english_words(remedy) == [], remedy
            checked += 1
    assert checked > 40


def test_the_chinese_text_report_has_no_english_words_but_values() -> None:
    report = run("sim:visa?pin_tries=0", host="127.0.0.1:1")
    values = {f"{r.id}.{k}": v for r in report.checks for k, v in r.params.items()}
    # Raw error details are English in every language, on their own "详情：" line.
    details = {f"{r.id}.error": str(r.data["error"]) for r in report.checks if r.data.get("error")}
    assert details
    values.update(details)
    ids = {r.id for r in report.checks} | {r.outcome for r in report.checks}
    result = invoke(
        "selftest", "--reader", "sim:visa?pin_tries=0", "--host", "127.0.0.1:1", "--lang", "zh"
    )
    text = result.output
    assert "…" not in text  # a Chinese sentence has no spaces: it must fold, not be cut
    assert text.count("详情：") == len(details)
    for name in sorted(ids, key=len, reverse=True):
        text = text.replace(name, " ")
    assert english_words(text, values) == []


def test_card_data_stays_masked_in_every_output(tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    baseline = tmp_path / "baseline.json"
    outputs = [
        invoke("selftest", "--reader", "sim:visa").output,
        invoke("selftest", "--reader", "sim:visa", "--json").output,
        invoke("selftest", "--reader", "sim:visa", "--lang", "zh").output,
        invoke("selftest", "--reader", "sim:visa", "--junit", str(junit)).output,
        invoke("baseline", "save", str(baseline), "--reader", "sim:visa").output,
        invoke("baseline", "show", str(baseline)).output,
        invoke("baseline", "show", str(baseline), "--json").output,
        invoke("selftest", "--baseline", str(baseline), "--json").output,
        junit.read_text(),
        baseline.read_text(),
    ]
    for output in outputs:
        assert VISA_PAN not in output
        assert "VISA ACQUIRER TEST" not in output  # the cardholder name
        assert "4761739001010010D" not in output  # Track 2
    assert "476173******0010" in outputs[1]


# --- contactless baseline ------------------------------------------------------------------


def test_save_then_compare(tmp_path: Path) -> None:
    baseline = tmp_path / "before-upgrade.json"
    saved = invoke("baseline", "save", str(baseline), "--reader", "sim:visa")
    assert saved.exit_code == 0, saved.output
    assert f"Baseline saved to {baseline}." in saved.output
    same = invoke("selftest", "--baseline", str(baseline), "--json")
    document = json.loads(same.output)
    assert same.exit_code == 0 and document["reader"] == "sim:visa"  # the baseline's reader
    changed = invoke("selftest", "--baseline", str(baseline), "--reader", "sim:visa?firmware=2.0")
    assert changed.exit_code == 2
    assert "Changed since the baseline" in changed.output
    assert "reader.firmware" in changed.output and "2.0" in changed.output


def test_a_failing_terminal_gets_no_baseline(tmp_path: Path) -> None:
    baseline = tmp_path / "b.json"
    refused = invoke("baseline", "save", str(baseline), "--reader", "sim:visa?pin_tries=0")
    assert refused.exit_code == 2
    assert not baseline.exists()
    assert "Not saved" in refused.output
    forced = invoke(
        "baseline", "save", str(baseline), "--reader", "sim:visa?pin_tries=0", "--force"
    )
    assert forced.exit_code == 0 and baseline.exists()


def test_show_verifies_the_checksum(tmp_path: Path) -> None:
    baseline = tmp_path / "b.json"
    assert invoke("baseline", "save", str(baseline), "--reader", "sim:visa").exit_code == 0
    shown = invoke("baseline", "show", str(baseline))
    assert shown.exit_code == 0
    assert "checksum verified" in shown.output and "************0010" in shown.output
    document = json.loads(baseline.read_text())
    document["link"]["p95_ms"] = 0.0
    baseline.write_text(json.dumps(document))
    damaged = invoke("baseline", "show", str(baseline), "--lang", "zh")
    assert damaged.exit_code == 2
    assert "校验和不符" in damaged.output
    assert invoke("baseline", "show", str(tmp_path / "none.json")).exit_code == 3


def test_the_progress_display_draws_on_a_terminal() -> None:
    from rich.console import Console

    from contactless.selftest.progress import RichProgress

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with RichProgress(console, load_catalog("zh")) as progress:
        report = run("sim:visa", loops=5, progress=progress)
    assert report.verdict == "pass"
    assert "通信质量" in screen.getvalue()


# --- a self-test that cannot run, or cannot finish ---------------------------------------

CANNOT_RUN = [
    ["--reader", "nosuch:x"],
    ["--reader", "sim:visa", "--baseline", "/nonexistent/baseline.json"],
    ["--reader", "sim:visa", "--loops", "0"],
    ["--reader", "sim:visa", "--lang", "fr"],
]


@pytest.mark.parametrize("args", CANNOT_RUN)
def test_json_still_says_why_the_self_test_cannot_run(args: list[str]) -> None:
    result = invoke("selftest", *args, "--json")
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)
    jsonschema.validate(document, load_schema(), format_checker=jsonschema.FormatChecker())
    assert document["schema"] == 1
    assert (document["verdict"], document["complete"], document["checks"]) == ("error", False, [])
    assert document["error"]["detail"]
    assert document["error"]["message"].startswith("The self-test cannot run")


def test_a_directory_as_baseline_is_named_as_such(tmp_path: Path) -> None:
    result = invoke("selftest", "--reader", "sim:visa", "--baseline", str(tmp_path), "--json")
    assert result.exit_code == 3
    document = json.loads(result.stdout)
    assert "is a directory" in document["error"]["detail"]
    assert "JSON" not in result.stderr


def test_the_schema_ties_an_error_to_the_error_verdict() -> None:
    schema = load_schema()
    ok = json.loads(invoke("selftest", "--reader", "sim:visa", "--json", "--loops", "3").stdout)
    failed = json.loads(invoke("selftest", "--reader", "nosuch:x", "--json").stdout)
    for broken in (
        {**ok, "error": failed["error"]},  # an error, yet a verdict
        {**failed, "error": {**failed["error"], "detail": ""}},
        {k: v for k, v in failed.items() if k != "error"},  # no checks and no reason
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_junit_gets_one_errored_case_when_the_self_test_cannot_run(tmp_path: Path) -> None:
    target = tmp_path / "selftest.xml"
    result = invoke("selftest", "--reader", "nosuch:x", "--junit", str(target))
    assert result.exit_code == 3
    root = ET.parse(target).getroot()
    assert (root.get("tests"), root.get("errors")) == ("1", "1")
    [case] = root.iter("testcase")
    [error] = case.findall("error")
    assert "nosuch" in (error.text or "")
    assert error.get("type") == "ConfigError"


def test_cannot_run_in_chinese_keeps_the_english_detail_apart() -> None:
    result = invoke("selftest", "--reader", "nosuch:x", "--lang", "zh")
    assert result.exit_code == 3
    sentence, detail = result.stderr.strip().split("\n详情：", 1)
    assert english_words(sentence) == [], sentence
    assert "unknown reader scheme" in detail


def test_the_chinese_text_report_shows_which_config_key_is_wrong(tmp_path: Path) -> None:
    config = tmp_path / "terminal.toml"
    config.write_text('ttq = "3600"\n')
    english = invoke("selftest", "--reader", "sim:visa", "--config", str(config))
    chinese = invoke("selftest", "--reader", "sim:visa", "--config", str(config), "--lang", "zh")
    assert "ttq" in english.stdout
    assert "详情：" in chinese.stdout
    assert "ttq" in chinese.stdout


def test_a_replayed_trace_skips_the_link_and_the_transaction_with_a_reason(
    tmp_path: Path,
) -> None:
    # A replayed trace answers one recorded EMV read, in order: it cannot repeat round
    # trips nor do the self-test's own transaction. Those checks say so; they do not crash
    # and ask for a bug report.
    trace = tmp_path / "visa.jsonl"
    recorded = invoke("record", "--reader", "sim:visa", "--output", str(trace))
    assert recorded.exit_code == 0, recorded.output
    reader = f"replay:{trace}"
    document = json.loads(invoke("selftest", "--reader", reader, "--loops", "3", "--json").stdout)
    jsonschema.validate(document, load_schema())
    checks = {check["id"]: check for check in document["checks"]}
    assert checks["link.quality"]["outcome"] == "link.skipped_replay"
    assert checks["emv.transaction"]["outcome"] == "emv.skipped_replay"
    for check in (checks["link.quality"], checks["emv.transaction"]):
        assert check["status"] == "skip"
        assert "replays a recorded trace" in check["message"] and reader in check["message"]
    assert not document["incomplete"]
    text = invoke("selftest", "--reader", reader, "--loops", "3")
    assert "crashed" not in text.stdout.lower() and "report" not in text.stdout.lower()
    assert text.exit_code == 0, text.output
    chinese = invoke("selftest", "--reader", reader, "--loops", "3", "--lang", "zh", "--json")
    messages = {check["id"]: check["message"] for check in json.loads(chinese.stdout)["checks"]}
    assert "回放的是录制的通信记录" in messages["link.quality"]
    assert "回放的是录制的通信记录" in messages["emv.transaction"]
