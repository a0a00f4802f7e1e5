"""Baselines: saved from a real run, read back verified, and refused when damaged."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from selftest_support import VISA_PAN, run

from contactless.errors import ConfigError
from contactless.selftest import (
    Baseline,
    BaselineDamaged,
    baseline_from_report,
    load_baseline,
    save_baseline,
)
from contactless.selftest.baseline import Fingerprint, pan_hint, parse_baseline


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("baseline") / "terminal.json"
    save_baseline(path, baseline_from_report(run("sim:visa")))
    return path


def document(path: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(path.read_text())
    return loaded


def test_a_saved_baseline_reads_back_the_same(saved: Path) -> None:
    baseline = load_baseline(saved)
    assert isinstance(baseline, Baseline)
    assert baseline.source == str(saved)
    assert baseline.reader is not None and baseline.reader.uri == "sim:visa"
    assert baseline.reader.serial == "SIM-VISA"
    assert baseline.card is not None and baseline.card.aid == "A0000000031010"
    assert baseline.card.masked_pan == "************0010"
    assert baseline.card.expiry == "2028-12"
    assert baseline.link is not None and baseline.link.success_rate == 1.0
    assert baseline.link.p50_ms is not None and baseline.link.p95_ms is not None
    assert baseline.config.values["country"] == 840
    assert baseline.software.backends["sim"] is True
    # The document round-trips byte for byte through the dataclasses.
    assert baseline.to_document() == document(saved)


def test_the_baseline_never_holds_the_pan(saved: Path) -> None:
    text = saved.read_text()
    assert VISA_PAN not in text
    assert VISA_PAN[:6] + "*" not in text  # not even the first six digits with the last four
    assert "VISA ACQUIRER TEST" not in text  # nor the cardholder name


def test_the_fingerprint_recognises_the_card_and_only_it(saved: Path) -> None:
    card = load_baseline(saved).card
    assert card is not None and card.fingerprint is not None
    assert card.fingerprint.matches(VISA_PAN)
    assert not card.fingerprint.matches("4917300800000000")
    # Salted: the same PAN fingerprints differently each time.
    assert Fingerprint.of(VISA_PAN).digest != Fingerprint.of(VISA_PAN).digest
    fixed = Fingerprint.of(VISA_PAN, salt=card.fingerprint.salt)
    assert fixed.digest == card.fingerprint.digest


def test_pan_hint_keeps_the_last_four_digits() -> None:
    assert pan_hint("4761739001010010") == "************0010"
    assert pan_hint("378282246310005") == "***********0005"


def test_a_changed_value_breaks_the_checksum(saved: Path, tmp_path: Path) -> None:
    doc = document(saved)
    doc["config"]["values"]["country"] = 250  # type: ignore[index]
    target = tmp_path / "edited.json"
    target.write_text(json.dumps(doc))
    with pytest.raises(BaselineDamaged) as info:
        load_baseline(target)
    assert info.value.outcome == "baseline.checksum_mismatch"


def test_text_that_is_not_json_is_unreadable(saved: Path, tmp_path: Path) -> None:
    target = tmp_path / "cut.json"
    target.write_bytes(saved.read_bytes()[:200])
    with pytest.raises(BaselineDamaged) as info:
        load_baseline(target)
    assert info.value.outcome == "baseline.unreadable"


def test_another_schema_version_is_unsupported(saved: Path) -> None:
    doc = document(saved)
    doc["schema_version"] = 2
    with pytest.raises(BaselineDamaged) as info:
        parse_baseline(doc)
    assert info.value.outcome == "baseline.unsupported"
    assert info.value.params == {"version": "2", "supported": "1"}


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda doc: doc.pop("software"), "software"),
        (lambda doc: doc["reader"].update(features="nfc"), "reader.features"),
        (lambda doc: doc["link"].update(loops=True), "link.loops"),
        (lambda doc: doc["card"]["fingerprint"].update(n=2**30), "card.fingerprint"),
        (lambda doc: doc["card"]["fingerprint"].update(salt="zz"), "card.fingerprint.salt"),
        (lambda doc: doc.update(format="something else"), "format"),
    ],
)
def test_a_malformed_document_names_the_field(saved: Path, edit: object, field: str) -> None:
    doc = document(saved)
    edit(doc)  # type: ignore[operator]
    # Re-sign it, so the structure check (not the checksum) is what refuses it.
    from contactless.selftest.baseline import _checksum

    doc["checksum"] = _checksum(doc)
    with pytest.raises(BaselineDamaged) as info:
        parse_baseline(doc)
    assert info.value.outcome == "baseline.malformed"
    assert info.value.params["field"] == field


def test_a_document_that_is_not_an_object_is_malformed() -> None:
    with pytest.raises(BaselineDamaged) as info:
        parse_baseline([1, 2, 3])
    assert info.value.params["field"] == "document"


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_baseline(tmp_path / "nowhere.json")


def test_a_directory_is_a_config_error_that_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory") as caught:
        load_baseline(tmp_path)
    assert "JSON" not in str(caught.value)


def test_a_huge_file_is_not_read_whole(tmp_path: Path) -> None:
    target = tmp_path / "huge.json"
    target.write_bytes(b" " * (2 << 20))
    with pytest.raises(BaselineDamaged) as info:
        load_baseline(target)
    assert info.value.outcome == "baseline.unreadable"


def test_saving_replaces_the_file_whole_and_leaves_no_temporary(
    saved: Path, tmp_path: Path
) -> None:
    target = tmp_path / "b.json"
    target.write_text("old")
    save_baseline(target, load_baseline(saved))
    assert load_baseline(target).to_document() == document(saved)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["b.json"]


def test_saving_into_a_missing_directory_is_a_config_error(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write"):
        save_baseline(tmp_path / "no" / "dir" / "b.json", load_baseline(saved))


_HEX = re.compile(r"(?:sha256:)?[0-9A-Fa-f]{8,}")


def hex_strings(value: object) -> Iterator[str]:
    """Every string in a JSON value that is (possibly prefixed) hex of 8+ digits."""
    if isinstance(value, dict):
        for item in value.values():
            yield from hex_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from hex_strings(item)
    elif isinstance(value, str) and _HEX.fullmatch(value) and not value.isdigit():
        yield value


def test_hex_in_the_baseline_and_the_json_report_is_upper_case(saved: Path, tmp_path: Path) -> None:
    from contactless.selftest import load_catalog, report_json

    saved_document = document(saved)
    card = saved_document["card"]
    assert isinstance(card, dict)
    config = saved_document["config"]
    assert isinstance(config, dict)
    for value in (card["fingerprint"]["salt"], card["fingerprint"]["hash"], config["sha256"]):
        assert re.fullmatch(r"[0-9A-F]+", value), value
    assert re.fullmatch(r"sha256:[0-9A-F]{64}", str(saved_document["checksum"]))
    terminal = tmp_path / "terminal.toml"
    terminal.write_text("country = 250\n")
    report = run("sim:visa", baseline=str(saved), config=str(terminal))
    found = list(hex_strings(report_json(report, load_catalog("en"))))
    assert report.result("config.integrity").data["file_sha256"] in found
    assert [value for value in found if value != value.upper()] == []


def test_a_checksum_in_lower_case_hex_is_still_accepted(saved: Path, tmp_path: Path) -> None:
    lowered = document(saved)
    lowered["checksum"] = str(lowered["checksum"]).lower()
    path = tmp_path / "lower.json"
    path.write_text(json.dumps(lowered))
    assert load_baseline(path).created == lowered["created"]
