"""Reading the emulated cards through the real PC/SC stack: pcscd, vpcd, pyscard.

Every profile is read through ``pcsc:`` (in-process with the EMV flow, and with the
``contactless read`` CLI against a ``contactless emulate`` process) and must give exactly
what ``sim:`` gives for the same profile.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import SLOT_NAMES, CardFactory, PcscdService

from contactless.emulator.card import VirtualCard
from contactless.emulator.profiles import list_profiles, load_profile
from contactless.emv.card import CardData
from contactless.emv.driver import run
from contactless.emv.flow import read_flow
from contactless.emv.terminal import TerminalConfig
from contactless.errors import NoCard
from contactless.reader import open_reader
from contactless.session import Card
from contactless.transport import detect
from contactless.transport.pcsc import PcscTransport, reader_uri
from contactless.transport.pcsc_features import probe_reader

pytestmark = pytest.mark.e2e

PROFILES = sorted(list_profiles())
SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")
CLI_DEADLINE = 60


@pytest.fixture
def repeatable_config(tmp_path: Path) -> Path:
    """A terminal config with a fixed clock and a seeded RNG, so two reads of the same card
    send the same commands (same unpredictable number, same date: same cryptogram)."""
    path = tmp_path / "terminal.toml"
    path.write_text("seed = 7\nfixed_time = 2024-05-17T12:00:00\n")
    return path


def read_through(uri: str, config_path: Path, *, transaction: bool = False) -> CardData:
    """The EMV flow over ``uri``, as `contactless read` runs it."""
    config = TerminalConfig.load(config_path)
    with open_reader(uri, timeout=5.0) as reader:
        reader.wait_for_card(10.0)
        card = Card(reader, timeout=5.0)
        data = run(card, read_flow(config, transaction=transaction))
        return data.with_reader(uri, card.atr)


def without_reader(payload: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if key != "reader"}


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_reads_the_same_through_pcscd_as_through_sim(
    vpcd_card: CardFactory, repeatable_config: Path, profile: str
) -> None:
    vpcd_card.thread(profile)
    through_pcsc = read_through(f"pcsc:{SLOT_NAMES[0]}", repeatable_config)
    through_sim = read_through(f"sim:{profile}", repeatable_config)
    assert through_pcsc.reader == f"pcsc:{SLOT_NAMES[0]}"
    assert without_reader(through_pcsc.to_json(show_pan=True)) == without_reader(
        through_sim.to_json(show_pan=True)
    )


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "contactless", *args],
        capture_output=True,
        text=True,
        timeout=CLI_DEADLINE,
        check=False,
    )


@pytest.mark.parametrize("profile", PROFILES)
def test_contactless_read_json_on_vpcd_prints_what_sim_prints(
    vpcd_card: CardFactory, repeatable_config: Path, profile: str
) -> None:
    emulator = vpcd_card.process(profile)
    config = ("--config", str(repeatable_config))
    on_vpcd = run_cli("read", "--reader", "pcsc:", "--json", *config)
    on_sim = run_cli("read", "--reader", f"sim:{profile}", "--json", *config)
    assert on_vpcd.returncode == 0, on_vpcd.stderr
    assert on_sim.returncode == 0, on_sim.stderr
    pcsc_json, sim_json = json.loads(on_vpcd.stdout), json.loads(on_sim.stdout)
    assert pcsc_json["reader"] == "pcsc:"
    assert without_reader(pcsc_json) == without_reader(sim_json)
    # The PAN stays masked on this path too.
    pan = load_profile(profile).applications[0].pan
    assert pan not in on_vpcd.stdout
    assert emulator.process is not None and emulator.process.poll() is None


def test_transaction_through_pcscd_matches_sim(
    vpcd_card: CardFactory, repeatable_config: Path
) -> None:
    vpcd_card.thread("mastercard")
    data = read_through(f"pcsc:{SLOT_NAMES[0]}", repeatable_config, transaction=True)
    sim = read_through("sim:mastercard", repeatable_config, transaction=True)
    assert without_reader(data.to_json()) == without_reader(sim.to_json())
    assert data.to_json()["cryptogram"]


def test_reader_identity_atr_and_uid_come_from_the_stack(vpcd_card: CardFactory) -> None:
    card = vpcd_card.thread("visa")
    profile = load_profile("visa")
    virtual = VirtualCard(profile)
    with open_reader(card.uri) as reader:
        assert isinstance(reader, PcscTransport)
        assert reader.reader == SLOT_NAMES[0]
        assert reader.atr == virtual.atr  # the PC/SC contactless ATR built from the ATS
        assert reader.uid == profile.uid  # FF CA 00 00 00, answered by the vpcd bridge
        assert reader.protocol == "T1"
        assert reader.identity.model == "Virtual PCD"
        # The card answers through pcscd exactly what the emulator answers directly.
        assert reader.transmit(SELECT_PPSE) == virtual.process(SELECT_PPSE)


def test_readers_are_selected_by_index_name_prefix_and_url_encoding(
    vpcd_card: CardFactory,
) -> None:
    vpcd_card.thread("amex", slot=1)
    for uri in ("pcsc:", "pcsc:1", "pcsc:Virtual PCD", "pcsc:Virtual%20PCD%2000%2001"):
        with open_reader(uri) as reader:
            assert isinstance(reader, PcscTransport)
            # pcsc: and prefixes prefer a reader with a card: slot 1 here.
            assert reader.reader == SLOT_NAMES[1], uri
    with open_reader("pcsc:0") as reader:
        assert isinstance(reader, PcscTransport)
        assert reader.reader == SLOT_NAMES[0]
        assert not reader.card_present()
        with pytest.raises(NoCard, match="no card"):
            reader.wait_for_card(0.3)


def test_exclusive_mode_blocks_a_second_connection(vpcd_card: CardFactory) -> None:
    from contactless.errors import ReaderBusy

    card = vpcd_card.thread("visa")
    with open_reader(card.uri + "?mode=exclusive&protocol=T1") as first:
        assert first.atr is not None
        with pytest.raises(ReaderBusy, match="SHARING_VIOLATION"), open_reader(card.uri):
            pass
    with open_reader(card.uri) as again:
        assert again.atr is not None


def test_reset_and_reconnect_keep_the_session_usable(vpcd_card: CardFactory) -> None:
    card = vpcd_card.thread("jcb")
    profile = load_profile("jcb")
    virtual = VirtualCard(profile)
    aid = profile.applications[0].aid
    select = bytes([0x00, 0xA4, 0x04, 0x00, len(aid)]) + aid + b"\x00"
    with open_reader(card.uri) as reader:
        assert isinstance(reader, PcscTransport)
        assert reader.transmit(select)[-2:] == b"\x90\x00"
        reader.reset()
        assert reader.atr == virtual.atr
        reader.reconnect()
        assert reader.transmit(select) == virtual.process(select)


def test_detect_lists_both_vpcd_slots_with_card_state(vpcd_card: CardFactory) -> None:
    vpcd_card.thread("discover", slot=1)
    found = {info.name: info for info in detect() if info.backend == "pcsc"}
    assert set(found) == set(SLOT_NAMES)
    assert found[SLOT_NAMES[0]].card_present is False
    assert found[SLOT_NAMES[1]].card_present is True
    assert found[SLOT_NAMES[1]].uri == reader_uri(SLOT_NAMES[1])
    assert (
        "ATR " + VirtualCard(load_profile("discover")).atr.hex().upper()
        in found[SLOT_NAMES[1]].detail
    )
    with open_reader(found[SLOT_NAMES[1]].uri) as reader:
        assert reader.card_present()


def test_probe_reports_no_part10_features_and_reads_acr122u_firmware(
    vpcd_card: CardFactory,
) -> None:
    # vpcd has no IFDHControl, so the driver lists no features; the bridge answers the
    # ACR122U firmware pseudo-APDU when given a firmware string.
    card = vpcd_card.thread("visa", faults="firmware=ACR122U215")
    with open_reader(card.uri) as reader:
        assert isinstance(reader, PcscTransport)
        findings = probe_reader(reader, model="ACS ACR122U PICC Interface")
        assert findings.features == {}
        assert findings.firmware == "ACR122U215"
        by_check = {finding.check: finding for finding in findings.findings}
        assert by_check["features"].status == "skipped"
        assert by_check["firmware"].status == "ok"
        unknown = probe_reader(reader)  # "Virtual PCD" has no documented firmware command
        assert {finding.check: finding.status for finding in unknown.findings}[
            "firmware"
        ] == "skipped"


def test_scriptor_selects_the_ppse_and_gets_the_fci(
    vpcd_card: CardFactory, pcscd: PcscdService, tmp_path: Any
) -> None:
    import shutil

    if shutil.which("scriptor") is None:
        import os

        if os.environ.get("CI"):
            pytest.fail("scriptor (pcsc-tools) is not installed")
        pytest.skip("scriptor (pcsc-tools) is not installed")
    vpcd_card.thread("visa")
    script = tmp_path / "ppse.script"
    script.write_text("# SELECT PPSE\n" + SELECT_PPSE.hex(" ").upper() + "\n")
    result = subprocess.run(
        ["scriptor", "-r", SLOT_NAMES[0], str(script)],
        capture_output=True,
        text=True,
        timeout=CLI_DEADLINE,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # "< 6F 4D 84 ... (16 bytes a line, continued on the next lines) 90 00 : Normal processing."
    _, marker, reply = result.stdout.partition("\n< ")
    assert marker, result.stdout
    answer = bytes.fromhex(reply.split(":", 1)[0])
    assert answer == VirtualCard(load_profile("visa")).process(SELECT_PPSE), result.stdout
    assert answer[0] == 0x6F  # the FCI template
