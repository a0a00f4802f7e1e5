"""Every card profile read through nfcpy's real reader stack over its UDP driver.

The card is ``contactless emulate --nfc-udp`` in its own process (an ISO 14443-4 card on
nfcpy's UDP wire format); the reader side is ``nfc:udp:...``: nfcpy's ContactlessFrontend,
its UDP driver and its ISO-DEP initiator. What ``contactless read --json`` prints must be
what it prints for ``sim:PROFILE``, field for field.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from nfc_conftest import emulated_card, terminal_config

from contactless import tlv
from contactless.atr import parse_ats
from contactless.commands.read import read
from contactless.emulator.card import VirtualCard
from contactless.emulator.isodep import atqa_for_uid
from contactless.emulator.nfcudp import NfcUdpCard
from contactless.emulator.profiles import list_profiles, load_profile
from contactless.emv.driver import run
from contactless.emv.flow import read_flow
from contactless.emv.terminal import TerminalConfig
from contactless.session import Card
from contactless.transport import nfc_logging
from contactless.transport import open as open_transport
from contactless.transport.nfc import NfcTransport

pytest.importorskip("nfc")
pytestmark = pytest.mark.e2e

SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")


def read_json(uri: str, config: str) -> dict[str, object]:
    result = CliRunner().invoke(read, ["--reader", uri, "--json", "--config", config])
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.output)
    return data


@pytest.mark.parametrize("profile", sorted(list_profiles()))
def test_read_through_nfcpy_prints_what_sim_prints(profile: str, tmp_path: Path) -> None:
    config = terminal_config(tmp_path)
    with emulated_card(profile) as card:
        over_nfc = read_json(card.uri, config)
    over_sim = read_json(f"sim:{profile}", config)
    assert over_nfc.pop("reader") == card.uri
    assert over_sim.pop("reader") == f"sim:{profile}"
    assert over_nfc == over_sim


def test_nfcpy_debug_log_carries_no_card_data_without_the_opt_in(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG, logger="nfc")

    def read_with_nfcpy_logging() -> tuple[str, list[str]]:
        caplog.clear()
        with emulated_card("visa") as card, open_transport(card.uri, timeout=5) as reader:
            assert reader.wait_for_card(10)
            data = run(Card(reader), read_flow(TerminalConfig()))
        assert data.pan and data.cardholder_name and data.track2
        secrets = [
            data.pan,
            data.cardholder_name.encode().hex(),
            data.pan + "d",  # track 2 equivalent data: the PAN, then the separator
        ]
        nfcpy = [r.getMessage() for r in caplog.records if r.name.split(".")[0] == "nfc"]
        assert any(m.startswith(">>> ") for m in nfcpy), "nfcpy logged no frames"
        assert any(m.startswith("<<< ") for m in nfcpy), "nfcpy logged no frames"
        return "\n".join(nfcpy).lower(), [secret.lower() for secret in secrets]

    monkeypatch.delenv(nfc_logging.OPT_IN, raising=False)
    text, secrets = read_with_nfcpy_logging()
    assert not [secret for secret in secrets if secret in text]
    assert re.search(r"<<< [0-9a-f]{2}<\+\d+ bytes> ", text)  # frames shortened, not dropped
    # The same read with the opt-in: nfcpy did log the card data, the filter kept it out.
    monkeypatch.setenv(nfc_logging.OPT_IN, "1")
    text, secrets = read_with_nfcpy_logging()
    assert all(secret in text for secret in secrets)


def test_select_ppse_through_the_transport_exposes_the_card() -> None:
    profile = load_profile("visa")
    with emulated_card("visa") as card, open_transport(card.uri, timeout=5) as reader:
        assert isinstance(reader, NfcTransport)
        assert reader.wait_for_card(10)
        answer = reader.transmit(SELECT_PPSE)
        assert answer[-2:] == b"\x90\x00"
        assert tlv.find_value(answer[:-2], "84") == b"2PAY.SYS.DDF01"
        # What activation learned, against the profile the card was built from.
        assert reader.technology == "A"
        assert reader.uid == profile.uid
        assert reader.atqa == atqa_for_uid(profile.uid)
        assert reader.sak is not None and reader.sak & 0x20
        expected = parse_ats(profile.ats)
        assert reader.ats_info is not None
        assert (reader.ats_info.fsc, reader.ats_info.fwi) == (expected.fsc, expected.fwi)
        assert reader.ats_info.historical_bytes == expected.historical_bytes
        assert reader.atr == profile.atr
        assert reader.identity.driver is not None and "nfcpy" in reader.identity.driver
        assert reader.card_present()


def test_type_b_card_is_sensed_and_answers() -> None:
    with (
        emulated_card("mastercard", settings="type=B&fsci=6&fwi=7") as card,
        open_transport(card.uri, timeout=5) as reader,
    ):
        assert isinstance(reader, NfcTransport)
        # nfcpy senses type A first and waits 1 s for an answer before trying type B.
        assert reader.wait_for_card(15)
        assert reader.technology == "B"
        assert reader.atqb is not None and reader.atqb[0] == 0x50
        assert reader.uid == load_profile("mastercard").uid[:4]  # the PUPI
        assert reader.atqb_info is not None
        assert (reader.atqb_info.fsc, reader.atqb_info.fwi) == (96, 7)
        assert reader.ats is None and reader.atqa is None
        assert reader.atr is not None and reader.atr[:4] == bytes.fromhex("3B888001")
        answer = reader.transmit(SELECT_PPSE)
        assert answer[-2:] == b"\x90\x00"


def test_closing_the_reader_turns_the_field_off() -> None:
    # In-process card, to look at its state: the reader's close() sends RFOFF, and the card
    # drops back to IDLE (powered down).
    server = NfcUdpCard(VirtualCard(load_profile("visa")), "127.0.0.1", 0)
    stop = threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        with open_transport(server.uri) as reader:
            reader.wait_for_card(10)
            assert reader.transmit(SELECT_PPSE)[-2:] == b"\x90\x00"
            assert server.picc.state == "protocol"
            generation = server.picc.generation
        deadline = time.monotonic() + 10
        while server.picc.generation == generation and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.picc.state == "idle"
    finally:
        stop.set()
        thread.join(10)
        server.close()
