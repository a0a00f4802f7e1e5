"""``contactless read`` end to end over ``sim:`` readers (the emulator), with CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from contactless.cli import cli
from contactless.emulator.profiles import Application, list_profiles, load_profile
from contactless.masking import mask_pan
from contactless.tlv.bitfields import decode_afl
from contactless.tlv.tags import scheme_for_aid

PROFILES = list_profiles()


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["read", *args])


def _application(profile: str, aid_hex: str) -> Application:
    apps = {app.aid.hex().upper(): app for app in load_profile(profile).applications}
    assert aid_hex in apps, f"read selected {aid_hex}, not an application of {profile}"
    return apps[aid_hex]


def _all_pans(profile: str) -> list[str]:
    return [app.pan for app in load_profile(profile).applications]


def _assert_one_error_line(result: Result) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def test_there_are_profiles_to_read() -> None:
    assert len(PROFILES) >= 2


@pytest.mark.parametrize("profile", PROFILES)
def test_read_json_prints_brand_masked_pan_and_expiry(profile: str) -> None:
    result = _invoke("--reader", f"sim:{profile}", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    app = _application(profile, out["aid"])
    assert out["reader"] == f"sim:{profile}"
    assert out["atr"] == load_profile(profile).atr.hex().upper()
    assert out["brand"] == scheme_for_aid(app.aid) and out["brand"]
    assert out["pan"] == mask_pan(app.pan)
    assert out["pan_last4"] == app.pan[-4:]
    assert out["expiry"] == f"{app.expiry[0]:04d}-{app.expiry[1]:02d}"
    assert out["apdus"] >= 3
    for pan in _all_pans(profile):
        assert pan not in result.output


@pytest.mark.parametrize("profile", PROFILES)
def test_read_human_output_masks_the_pan(profile: str) -> None:
    result = _invoke("--reader", f"sim:{profile}")
    assert result.exit_code == 0, result.output
    text = result.stdout
    for pan in _all_pans(profile):
        assert pan not in text
    assert "PAN" in text and "Expiry" in text and "Brand" in text
    assert any(mask_pan(pan) in text for pan in _all_pans(profile))


@pytest.mark.parametrize("profile", PROFILES)
def test_transaction_returns_a_cryptogram(profile: str) -> None:
    result = _invoke("--reader", f"sim:{profile}", "--json", "--transaction", "--tlvs")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["cryptogram_type"] in ("ARQC", "TC", "AAC")
    assert isinstance(out["atc"], int)
    assert len(out["cryptogram"]) == 16
    for pan in _all_pans(profile):  # the raw TLVs are masked too
        assert pan not in result.output


def test_show_pan_prints_the_full_pan() -> None:
    profile = PROFILES[0]
    result = _invoke("--reader", f"sim:{profile}", "--json", "--show-pan")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["pan"] == _application(profile, out["aid"]).pan


def test_amount_and_config_reach_the_card(tmp_path: Path) -> None:
    config = tmp_path / "terminal.toml"
    config.write_text("seed = 1\nfixed_time = 2024-05-17T12:00:00\n", encoding="utf-8")
    args = ["--reader", f"sim:{PROFILES[0]}", "--json", "--transaction", "--config", str(config)]
    first = json.loads(_invoke(*args, "--amount", "100").stdout)
    again = json.loads(_invoke(*args, "--amount", "100").stdout)
    other = json.loads(_invoke(*args, "--amount", "250").stdout)
    # Same terminal, same card state (each sim: reader starts from the profile): same
    # cryptogram; another amount: another cryptogram.
    assert first["cryptogram"] == again["cryptogram"]
    assert first["cryptogram"] != other["cryptogram"]


def test_card_removed_is_one_clear_line() -> None:
    # visa: PPSE, SELECT, GPO, then the card leaves during the first READ RECORD.
    read = json.loads(_invoke("--reader", "sim:visa", "--json").stdout)
    first = decode_afl(_application("visa", read["aid"]).afl)[0]
    result = _invoke("--reader", "sim:visa?remove_after=3")
    assert result.exit_code == 1
    line = _assert_one_error_line(result)
    assert line.startswith(
        f"error: card removed during READ RECORD SFI {first.sfi} record {first.first}"
    )


def test_unknown_profile_is_a_setup_error() -> None:
    result = _invoke("--reader", "sim:no-such-card")
    assert result.exit_code == 2
    _assert_one_error_line(result)


def test_bad_config_file_is_a_setup_error(tmp_path: Path) -> None:
    config = tmp_path / "terminal.toml"
    config.write_text('ttq = "36"\n', encoding="utf-8")
    result = _invoke("--reader", f"sim:{PROFILES[0]}", "--config", str(config))
    assert result.exit_code == 2
    line = _assert_one_error_line(result)
    assert str(config) in line and "'ttq'" in line


def test_unknown_scheme_is_a_setup_error() -> None:
    result = _invoke("--reader", "carrier-pigeon:1")
    assert result.exit_code == 2
    _assert_one_error_line(result)


def test_read_is_listed_in_help() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "read" in result.output
    help_text = CliRunner().invoke(cli, ["read", "--help"]).output
    for option in ("--reader", "--json", "--amount", "--transaction", "--show-pan", "--config"):
        assert option in help_text


def test_a_live_read_and_the_replay_of_its_redacted_trace_mask_the_name_alike(
    tmp_path: Path,
) -> None:
    # The redacted trace holds a placeholder name of another length: one star per
    # character would tell the two apart (and tell how long the real name is).
    trace = tmp_path / "visa.jsonl"
    recorded = CliRunner().invoke(cli, ["record", "--reader", "sim:visa", "--output", str(trace)])
    assert recorded.exit_code == 0, recorded.output
    live = _invoke("--reader", "sim:visa")
    replayed = _invoke("--reader", f"replay:{trace}")
    assert live.exit_code == 0 and replayed.exit_code == 0, live.output + replayed.output

    def cardholder(output: str) -> list[str]:
        return [line.split()[-1] for line in output.splitlines() if "Cardholder" in line]

    assert cardholder(live.stdout) == cardholder(replayed.stdout) == ["********"]
    live_json = json.loads(_invoke("--reader", "sim:visa", "--json").stdout)
    replay_json = json.loads(_invoke("--reader", f"replay:{trace}", "--json").stdout)
    assert live_json["cardholder_name"] == replay_json["cardholder_name"] == "********"


def test_expired_card_is_flagged(tmp_path: Path) -> None:
    config = tmp_path / "terminal.toml"
    config.write_text("fixed_time = 2025-06-01T12:00:00\n")
    reader = "sim:visa?expired=1"
    out = json.loads(_invoke("--reader", reader, "--config", str(config), "--json").stdout)
    assert out["expired"] is True and out["not_yet_effective"] is False
    assert "(expired)" in _invoke("--reader", reader, "--config", str(config)).stdout
    healthy = json.loads(_invoke("--reader", "sim:visa", "--config", str(config), "--json").stdout)
    assert healthy["expired"] is False
