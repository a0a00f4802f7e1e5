"""The [selftest] table of the terminal config, and the config values a baseline keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from selftest_support import write

from contactless.emv.terminal import TerminalConfig
from contactless.errors import ConfigError
from contactless.selftest.settings import (
    ConfigFileMissing,
    SelftestSettings,
    build_terminal,
    config_hash,
    config_values,
    load_setup,
    parse_host,
    parse_settings,
)


def test_an_empty_table_gives_the_defaults() -> None:
    assert parse_settings({}) == SelftestSettings()
    assert SelftestSettings().loops == 50
    assert build_terminal(load_setup(None)) == TerminalConfig()


def test_a_full_config_file_splits_into_terminal_and_selftest(tmp_path: Path) -> None:
    path = write(
        tmp_path / "terminal.toml",
        'country = 250\ncurrency = 978\nmerchant_id = "SHOP42"\n\n'
        "[selftest]\n"
        'host = "acquirer.example:443"\ntls = true\nloops = 20\n'
        'supported_firmware = ["1.*", "2.0.*"]\naccelerator = "required"\n',
    )
    setup = load_setup(str(path))
    terminal = build_terminal(setup)
    assert terminal.country == 250 and terminal.merchant_id == "SHOP42"
    assert "selftest" not in setup.document
    assert setup.settings.host == "acquirer.example:443" and setup.settings.tls is True
    assert setup.settings.loops == 20
    assert setup.settings.supported_firmware == ("1.*", "2.0.*")
    assert setup.settings.accelerator == "required"
    assert (
        setup.path == str(path) and setup.file_sha256 is not None and len(setup.file_sha256) == 64
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[selftest]\nloops = 0\n", "'loops' must be an integer from 1"),
        ("[selftest]\nloops = true\n", "'loops' must be an integer"),
        ('[selftest]\nhost = "nowhere"\n', "'host' must be"),
        ('[selftest]\nhost = "h:70000"\n', "'host' must be"),
        ('[selftest]\naccelerator = "maybe"\n', "'accelerator' must be"),
        ("[selftest]\ncolour = 1\n", "unknown key 'colour'"),
        ("[selftest]\nlink_fail_rate = 0.99\n", "link_fail_rate <= link_warn_rate"),
        ("selftest = 3\n", "expected a table"),
        ("country = 9999\n", "key 'country'"),
        ("country = \n", "not valid TOML"),
    ],
)
def test_a_bad_config_is_a_config_error_naming_the_key(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path / "terminal.toml", text)
    with pytest.raises(ConfigError, match=problem) as info:
        build_terminal(load_setup(str(path)))
    assert str(path) in info.value.message


def test_a_missing_file_is_its_own_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileMissing, match="file not found"):
        load_setup(str(tmp_path / "gone.toml"))


def test_bytes_that_are_not_utf8_are_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "terminal.toml"
    path.write_bytes(b"country = 250\n\xff\xfe\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_setup(str(path))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com:443", ("example.com", 443)),
        ("127.0.0.1:8583", ("127.0.0.1", 8583)),
        ("[::1]:443", ("::1", 443)),
    ],
)
def test_hosts_parse(text: str, expected: tuple[str, int]) -> None:
    assert parse_host(text) == expected


@pytest.mark.parametrize("text", ["example.com", ":443", "host:0", "host:port", "host:65536"])
def test_bad_hosts_do_not(text: str) -> None:
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_host(text)


def test_config_values_are_json_and_their_hash_tracks_every_setting() -> None:
    defaults = config_values(TerminalConfig())
    assert defaults["country"] == 840
    assert defaults["ttq"] == "36004000"
    assert defaults["supported_aids"][0] == {
        "aid": "A0000000031010",
        "partial": True,
        "label": "Visa",
    }
    assert "clock" not in defaults and "rng" not in defaults and "source" not in defaults
    assert config_hash(defaults) == config_hash(config_values(TerminalConfig()))
    assert config_hash(defaults) != config_hash(config_values(TerminalConfig(currency=978)))
    extra = TerminalConfig(extra_data={b"\x9f\x09": b"\x00\x02"})
    assert config_values(extra)["extra_data"] == {"9F09": "0002"}
