"""The self-test's fault matrix, reader side, through the real PC/SC stack: virtual cards
served to a private pcscd by vsmartcard's vpcd driver (fixtures in conftest.py), faults
injected by the same query options as sim:, read by the pcsc: backend."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import SLOT_NAMES, CardFactory, PcscdService

from contactless.selftest import (
    SelftestOptions,
    SelftestReport,
    baseline_from_report,
    run_selftest,
    save_baseline,
)

pytestmark = pytest.mark.e2e

READER = SLOT_NAMES[0]
EMPTY_READER = SLOT_NAMES[1]
NOW = datetime(2025, 6, 1, 12, 0, 0)

#: Short waits: an absent card or a dead link must not take the default seconds.
FAST = "[selftest]\ncard_wait = 0.5\nexchange_timeout = 0.5\nloops = 20\n"
#: The vpcd bridge answers the ACR122U firmware pseudo-APDU when given a firmware string.
ACR122U = FAST + 'reader_model = "ACS ACR122U PICC Interface"\n'


def selftest(reader: str, tmp_path: Path, config: str = FAST, **options: Any) -> SelftestReport:
    path = tmp_path / "terminal.toml"
    path.write_text(config)
    return run_selftest(
        SelftestOptions(reader=reader, config=str(path), clock=lambda: NOW, **options)
    )


def outcomes(report: SelftestReport) -> dict[str, str]:
    return {result.id: result.outcome for result in report.checks}


def diagnosed(report: SelftestReport) -> list[tuple[str, float]]:
    return [(d.category, d.confidence) for d in report.diagnosis]


def test_a_healthy_card_through_pcscd_passes(vpcd_card: CardFactory, tmp_path: Path) -> None:
    card = vpcd_card.thread("visa")
    report = selftest(card.uri, tmp_path)
    found = outcomes(report)
    assert report.verdict == "pass", found
    assert report.diagnosis == ()
    assert found["service.pcscd"] == "service.pcscd_ok"
    assert found["reader.presence"] == "reader.ok"
    assert found["emv.transaction"] == "emv.ok"
    assert report.result("service.pcscd").data["readers"] == list(SLOT_NAMES)


@pytest.mark.parametrize(
    ("faults", "category", "check"),
    [
        ("hang_after=0", "reader_fault", "link.quality"),
        ("pin_tries=0", "card_or_pin", "card.pin_tries"),
        ("expired=1", "card_or_pin", "card.expiry"),
        ("sw=A4:6A81", "card_or_pin", "emv.transaction"),
        ("error_rate=0.2&seed=1", "interference", "link.quality"),
    ],
)
def test_a_card_side_fault_is_diagnosed_first(
    vpcd_card: CardFactory, tmp_path: Path, faults: str, category: str, check: str
) -> None:
    card = vpcd_card.thread("visa", faults=faults)
    report = selftest(card.uri, tmp_path)
    assert report.diagnosis, outcomes(report)
    assert report.diagnosis[0].category == category, (diagnosed(report), outcomes(report))
    assert check in {item.check for item in report.diagnosis[0].evidence}


def test_no_card_on_the_reader_is_a_reader_fault(pcscd: PcscdService, tmp_path: Path) -> None:
    report = selftest(f"pcsc:{EMPTY_READER}", tmp_path)
    assert outcomes(report)["card.presence"] == "card.absent"
    assert report.diagnosis[0].category == "reader_fault", diagnosed(report)


def test_a_reader_that_is_not_enumerated_is_a_reader_fault(
    pcscd: PcscdService, tmp_path: Path
) -> None:
    report = selftest("pcsc:ACS ACR1252 Dual Reader", tmp_path)
    assert outcomes(report)["reader.presence"] == "reader.not_found"
    assert report.diagnosis[0].category == "reader_fault", diagnosed(report)


def test_reader_firmware_changed_since_the_baseline(vpcd_card: CardFactory, tmp_path: Path) -> None:
    before = vpcd_card.thread("visa", faults="firmware=ACR122U215")
    healthy = selftest(before.uri, tmp_path, ACR122U)
    assert healthy.verdict == "pass", outcomes(healthy)
    assert healthy.result("reader.presence").data["firmware"] == "ACR122U215"
    baseline = tmp_path / "baseline.json"
    save_baseline(baseline, baseline_from_report(healthy))

    # After the "upgrade" the reader reports other firmware. (The other slot: a new card
    # on a slot just emptied can race pcscd's card detection, which is not what this
    # test is about.)
    after = vpcd_card.thread("visa", slot=1, faults="firmware=ACR122U103")
    report = selftest(after.uri, tmp_path, ACR122U, baseline=str(baseline))
    firmware = report.result("reader.firmware")
    assert firmware.outcome == "reader.firmware_changed"
    assert firmware.params == {"before": "ACR122U215", "after": "ACR122U103"}
    assert report.diagnosis[0].category == "version_incompatible", diagnosed(report)


def test_pcscd_down_after_an_upgrade(pcscd: PcscdService, tmp_path: Path) -> None:
    pcscd.stop()
    try:
        report = selftest(f"pcsc:{READER}", tmp_path)
    finally:
        pcscd.start()
    found = outcomes(report)
    assert found["service.pcscd"] == "service.pcscd_down"
    assert found["reader.presence"] == "check.needs"  # reported once, not again per check
    assert report.diagnosis[0].category == "upgrade_incomplete", diagnosed(report)


def test_the_cli_through_pcscd(vpcd_card: CardFactory, tmp_path: Path) -> None:
    card = vpcd_card.thread("mastercard", faults="pin_tries=0")
    config = tmp_path / "terminal.toml"
    config.write_text(FAST)
    completed = subprocess.run(
        [
            sys.executable, "-m", "contactless", "selftest", "--reader", card.uri,
            "--config", str(config), "--json", "--lang", "zh",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert completed.returncode == 2, completed.stderr
    document = json.loads(completed.stdout)
    assert document["diagnosis"][0]["category"] == "card_or_pin"
    assert document["diagnosis"][0]["name"] == "卡号、密码或卡片问题"
