"""The fault matrix: inject each category's faults and require the diagnosis to name that
category first, for the right reason (the expected check is among its evidence).

Faults come from the real components: sim: query options (the emulator's fault
injection), damaged or changed config files and baselines, a closed local port, an
installed distribution (dist-info + RECORD, read by importlib.metadata) with a file
tampered, an upgrade marker left behind, reader firmware that differs from the baseline,
error rates and latency. Readers with a fault sim: cannot express (a garbled ATR, no
card, a card number that fails the Luhn check, latency spikes) are a virtual card on a
small in-process Transport (selftest_support.CardOnReader).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from selftest_support import (
    PACKAGE_FILES,
    card_with_pan,
    install,
    install_package_copy,
    opener,
    outcomes,
    run,
    run_installed,
    top,
    write,
)

from contactless.selftest import (
    CATEGORIES,
    baseline_from_report,
    load_baseline,
    load_catalog,
    load_schema,
    report_json,
    save_baseline,
)

SCHEMA = load_schema()
CUSTOM_CONFIG = 'country = 250\ncurrency = 978\nmerchant_id = "BOULANGERIE01"\n'


@dataclass
class Lab:
    """What a fault's setup may use: a scratch directory, monkeypatch (sys.path), two
    baselines saved from healthy runs (default settings; a custom config), and a local
    port that accepts TCP connections but speaks no TLS."""

    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    baseline: Path
    custom_baseline: Path
    custom_config: Path
    plain_port: int

    def config(self, text: str) -> str:
        return str(write(self.tmp / "terminal.toml", text))


@dataclass(frozen=True)
class Fault:
    name: str
    category: str
    check: str  # the check whose result must be among the top diagnosis's evidence
    setup: Callable[[Lab], dict[str, Any]]


def tampered(lab: Lab) -> dict[str, Any]:
    dist = install(lab.tmp / "site", PACKAGE_FILES)
    (lab.tmp / "site/contactless/session.py").write_text("SESSION = 'half new'\n")
    return {"distribution": dist}


def file_missing(lab: Lab) -> dict[str, Any]:
    dist = install(lab.tmp / "site", PACKAGE_FILES)
    (lab.tmp / "site/contactless/tlv/_pytlv.py").unlink()
    return {"distribution": dist}


def marker(lab: Lab) -> dict[str, Any]:
    write(lab.tmp / "upgrade-in-progress", "started\n")
    return {"config": lab.config(f'[selftest]\nupgrade_markers = ["{lab.tmp}/upgrade-*"]\n')}


def metadata_disagrees(lab: Lab) -> dict[str, Any]:
    return {"distribution": install(lab.tmp / "site", PACKAGE_FILES, version="9.9.9")}


def backend_gone(lab: Lab) -> dict[str, Any]:
    # A reader plugin the terminal is configured for; its code did not survive the upgrade.
    install(
        lab.tmp / "plugin",
        {},
        extra_dist_files={"entry_points.txt": "[contactless.transports]\nacme = acme_reader:X\n"},
    )
    lab.monkeypatch.syspath_prepend(str(lab.tmp / "plugin"))
    return {"config": lab.config('[selftest]\nbackends = ["acme"]\n')}


def sim(query: str, config: str = "") -> Callable[[Lab], dict[str, Any]]:
    def setup(lab: Lab) -> dict[str, Any]:
        options: dict[str, Any] = {"reader": f"sim:visa?{query}" if query else "sim:visa"}
        if config:
            options["config"] = lab.config(config)
        return options

    return setup


def sim_card(profile: str, query: str) -> Callable[[Lab], dict[str, Any]]:
    return lambda lab: {"reader": f"sim:{profile}?{query}"}


def with_opener(config: str = "", **knobs: Any) -> Callable[[Lab], dict[str, Any]]:
    def setup(lab: Lab) -> dict[str, Any]:
        options: dict[str, Any] = {"opener": opener(**knobs)}
        if config:
            options["config"] = lab.config(config)
        return options

    return setup


def host(port: Callable[[Lab], int], tls: bool = False) -> Callable[[Lab], dict[str, Any]]:
    return lambda lab: {"host": f"127.0.0.1:{port(lab)}", "tls": tls}


def closed_port(lab: Lab) -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def against_baseline(query: str = "", **options: Any) -> Callable[[Lab], dict[str, Any]]:
    def setup(lab: Lab) -> dict[str, Any]:
        reader = f"sim:visa?{query}" if query else "sim:visa"
        return {"reader": reader, "baseline": str(lab.baseline), **options}

    return setup


def config_changed(lab: Lab) -> dict[str, Any]:
    lab.custom_config.write_text(CUSTOM_CONFIG.replace("250", "826"))
    return {"baseline": str(lab.custom_baseline)}


def config_reset(lab: Lab) -> dict[str, Any]:
    lab.custom_config.write_text("# restored by the upgrade\n")
    return {"baseline": str(lab.custom_baseline)}


def config_deleted(lab: Lab) -> dict[str, Any]:
    lab.custom_config.unlink()
    return {"baseline": str(lab.custom_baseline)}


def baseline_edited(lab: Lab) -> dict[str, Any]:
    document = json.loads(lab.baseline.read_text())
    document["reader"]["firmware"] = "0.0.1"
    edited = write(lab.tmp / "edited.json", json.dumps(document))
    return {"baseline": str(edited)}


def baseline_cut(lab: Lab) -> dict[str, Any]:
    cut = lab.tmp / "cut.json"
    cut.write_bytes(lab.baseline.read_bytes()[:300])
    return {"baseline": str(cut), "reader": "sim:visa"}


def baseline_untrusted(damage: Callable[[bytes], bytes]) -> Callable[[Lab], dict[str, Any]]:
    """A damaged baseline and no --reader: the baseline was to name the reader."""

    def setup(lab: Lab) -> dict[str, Any]:
        damaged = lab.tmp / "damaged.json"
        damaged.write_bytes(damage(lab.baseline.read_bytes()))
        return {"baseline": str(damaged), "reader": None}

    return setup


def altered_firmware(raw: bytes) -> bytes:
    document = json.loads(raw)
    document["reader"]["firmware"] = "0.0.1"
    return json.dumps(document).encode()


def spikes(every: int, seconds: float) -> Callable[[int], float]:
    return lambda count: seconds if count % every == 0 else 0.0


FAULTS: list[Fault] = [
    # --- the software upgrade did not finish
    Fault("installed file tampered", "upgrade_incomplete", "software.integrity", tampered),
    Fault("installed file missing", "upgrade_incomplete", "software.integrity", file_missing),
    Fault("upgrade marker left", "upgrade_incomplete", "software.upgrade_marker", marker),
    Fault("metadata vs code", "upgrade_incomplete", "software.version", metadata_disagrees),
    Fault("configured backend gone", "upgrade_incomplete", "software.backends", backend_gone),
    # --- the reader or its card interface is broken
    Fault(
        "reader stops responding",
        "reader_fault",
        "link.quality",
        sim("hang_after=0", "[selftest]\nexchange_timeout = 0.2\n"),
    ),
    Fault("every exchange fails", "reader_fault", "link.quality", sim("error_rate=1")),
    Fault(
        "card interface silent",
        "reader_fault",
        "link.quality",
        sim("mute_after=0", "[selftest]\nexchange_timeout = 0.2\n"),
    ),
    Fault("card leaves the field", "reader_fault", "link.quality", sim("remove_after=0")),
    Fault(
        "garbled ATR",
        "reader_fault",
        "card.atr",
        with_opener(atr=bytes.fromhex("3B8F800180")),
    ),
    Fault(
        "test card not detected",
        "reader_fault",
        "card.presence",
        with_opener("[selftest]\ncard_wait = 0.2\n", present=False),
    ),
    # --- the link to the acquirer is down
    Fault("acquirer port closed", "network", "host.link", host(closed_port)),
    Fault("acquirer speaks no TLS", "network", "host.link", host(lambda lab: lab.plain_port, True)),
    # --- card number, PIN or the card itself
    Fault("PIN tries exhausted", "card_or_pin", "card.pin_tries", sim("pin_tries=0")),
    Fault("card expired", "card_or_pin", "card.expiry", sim("expired=1")),
    Fault("application blocked", "card_or_pin", "emv.transaction", sim("sw=A4:6A81")),
    Fault("not a payment card", "card_or_pin", "emv.transaction", sim("sw=A4:6A82")),
    Fault("card refuses GPO", "card_or_pin", "emv.transaction", sim("sw=A8:6985")),
    Fault(
        "PIN blocked at GENERATE AC",
        "card_or_pin",
        "emv.transaction",
        sim_card("mastercard", "sw=AE:6983"),
    ),
    Fault(
        "card number fails Luhn",
        "card_or_pin",
        "card.pan",
        with_opener(card=card_with_pan("4761739001010011")),
    ),
    # --- terminal software and reader firmware do not fit
    Fault(
        "firmware differs from baseline",
        "version_incompatible",
        "reader.firmware",
        against_baseline("firmware=9.9.9"),
    ),
    Fault(
        "firmware not supported",
        "version_incompatible",
        "reader.firmware",
        sim("firmware=1.4.0", '[selftest]\nsupported_firmware = ["2.*"]\n'),
    ),
    # --- configuration or data corrupted or reset
    Fault("config not TOML", "data_anomaly", "config.integrity", sim("", "country = \n")),
    Fault("config bad value", "data_anomaly", "config.integrity", sim("", 'ttq = "3600"\n')),
    Fault(
        "config file missing",
        "data_anomaly",
        "config.integrity",
        lambda lab: {"reader": "sim:visa", "config": str(lab.tmp / "gone.toml")},
    ),
    Fault("config differs from baseline", "data_anomaly", "config.integrity", config_changed),
    Fault("config back at factory defaults", "data_anomaly", "config.integrity", config_reset),
    Fault("config deleted since baseline", "data_anomaly", "config.integrity", config_deleted),
    Fault("baseline altered", "data_anomaly", "baseline.integrity", baseline_edited),
    Fault("baseline truncated", "data_anomaly", "baseline.integrity", baseline_cut),
    Fault(
        "baseline altered, no --reader",
        "data_anomaly",
        "baseline.integrity",
        baseline_untrusted(altered_firmware),
    ),
    Fault(
        "baseline truncated, no --reader",
        "data_anomaly",
        "baseline.integrity",
        baseline_untrusted(lambda raw: raw[:300]),
    ),
    Fault(
        "baseline garbage, no --reader",
        "data_anomaly",
        "baseline.integrity",
        baseline_untrusted(lambda raw: bytes(range(256)) * 4),
    ),
    # --- interference, unstable power
    Fault("20% of exchanges lost", "interference", "link.quality", sim("error_rate=0.2&seed=1")),
    Fault("10% of exchanges lost", "interference", "link.quality", sim("error_rate=0.1&seed=2")),
    Fault(
        "latency spikes",
        "interference",
        "link.quality",
        with_opener("[selftest]\nlatency_spike_ms = 100\n", delay=spikes(25, 0.15)),
    ),
    Fault(
        "slower than at the baseline",
        "interference",
        "link.quality",
        against_baseline("latency_ms=25", loops=20),
    ),
]


@pytest.fixture(scope="module")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    """Baselines of two healthy terminals: default settings, and a custom config file."""
    root = tmp_path_factory.mktemp("baselines")
    plain = root / "plain.json"
    save_baseline(plain, baseline_from_report(run("sim:visa")))
    config = write(root / "custom.toml", CUSTOM_CONFIG)
    custom = root / "custom.json"
    save_baseline(custom, baseline_from_report(run("sim:visa", config=str(config))))
    yield plain, custom, config


@pytest.fixture(scope="module")
def plain_port() -> Iterator[int]:
    """A local port that accepts connections and closes them: TCP works, TLS does not."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(5)
    server.close()


@pytest.fixture
def lab(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    baselines: tuple[Path, Path, Path],
    plain_port: int,
) -> Lab:
    plain, custom, config = baselines
    # Faults may change the custom config: each test gets its own copy of it, and of the
    # baseline, pointing at that copy.
    config_copy = write(tmp_path / "custom.toml", config.read_text())
    recorded = load_baseline(custom)
    moved = dataclasses.replace(recorded.config, path=str(config_copy))
    custom_copy = tmp_path / "custom.json"
    save_baseline(custom_copy, dataclasses.replace(recorded, config=moved))
    return Lab(tmp_path, monkeypatch, plain, custom_copy, config_copy, plain_port)


def test_the_matrix_covers_every_category() -> None:
    assert {fault.category for fault in FAULTS} == set(CATEGORIES)


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
def test_the_fault_is_diagnosed_first(fault: Fault, lab: Lab) -> None:
    options = {"reader": "sim:visa", **fault.setup(lab)}
    report = run(**options)
    assert report.verdict in ("warn", "fail"), outcomes(report)
    assert top(report) == fault.category, (
        [(d.category, d.confidence) for d in report.diagnosis],
        outcomes(report),
    )
    evidence = {item.check for item in report.diagnosis[0].evidence}
    assert fault.check in evidence, outcomes(report)
    assert not report.incomplete
    # Every report, whatever went wrong, serialises to the documented JSON shape.
    document = json.loads(json.dumps(report_json(report, load_catalog("zh"))))
    jsonschema.validate(document, SCHEMA)


def test_a_healthy_baseline_comparison_raises_no_alarm(lab: Lab) -> None:
    report = run("sim:visa", baseline=str(lab.custom_baseline))
    assert report.verdict == "pass", outcomes(report)
    assert report.diagnosis == ()
    found = outcomes(report)
    assert found["baseline.integrity"] == "baseline.ok"
    assert found["config.integrity"] == "config.matches_baseline"
    assert found["reader.firmware"] == "reader.firmware_ok"
    assert found["card.match"] == "card.match_ok"


def test_an_untrusted_baseline_skips_the_reader_checks_saying_why(lab: Lab) -> None:
    report = run(**baseline_untrusted(lambda raw: raw[:300])(lab))
    found = outcomes(report)
    assert found["reader.presence"] == "reader.baseline_untrusted"
    assert report.result("reader.presence").status == "skip"
    assert found["card.presence"] == "check.needs"
    assert [d.category for d in report.diagnosis] == ["data_anomaly"]


# --- files an interrupted upgrade deleted, in a real installation ------------------------
#
# The code that needs them is already loaded in this process, so these run in a fresh
# interpreter that imports a throwaway installed copy of the package (as in
# test_selftest_install.py). The checks that need the file cannot run (they are listed as
# incomplete); the self-test must still name the unfinished upgrade first.

DELETED_FILES = [
    "contactless/tlv/tags.csv",  # a data file, read when the EMV code first needs a tag
    "contactless/tlv/schemes.csv",
    "contactless/emv/flow.py",  # a module: the EMV flow itself
]


@pytest.fixture(scope="module")
def installed_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("installed") / "site"
    install_package_copy(site)
    return site


@pytest.mark.parametrize("deleted", DELETED_FILES)
def test_an_installed_file_deleted_is_an_incomplete_upgrade(
    deleted: str, installed_copy: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    shutil.copytree(installed_copy, site)
    (site / deleted).unlink()
    status, document = run_installed(site)
    jsonschema.validate(document, SCHEMA)
    assert "error" not in document, document["error"]  # it ran, and diagnosed
    found = {check["id"]: check for check in document["checks"]}
    assert found["software.integrity"]["data"]["missing"] == [deleted]
    first = document["diagnosis"][0]
    assert first["category"] == "upgrade_incomplete", document["diagnosis"]
    assert "software.integrity" in {item["check"] for item in first["evidence"]}
    for check_id in document["incomplete"]:  # could not run: skipped, saying why
        assert found[check_id]["outcome"] == "check.crashed"
    assert (document["verdict"], status) == ("fail", 2)
