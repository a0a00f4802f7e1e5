"""TerminalConfig: defaults, terminal data encoding, TOML loading and its errors."""

from __future__ import annotations

import random
import re
from datetime import datetime
from pathlib import Path

import pytest

from contactless.emv.terminal import DEFAULT_AIDS, SupportedAid, TerminalConfig
from contactless.errors import ConfigError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "terminal-config.md"
WHEN = datetime(2024, 5, 17, 14, 30, 5)


def _hex(data: dict[bytes, bytes], tag: str) -> str:
    return data[bytes.fromhex(tag)].hex().upper()


def test_defaults_are_valid_and_documented() -> None:
    config = TerminalConfig()
    assert config.country == 840 and config.currency == 840
    assert config.ttq == bytes.fromhex("36004000")
    assert config.supported_aids == DEFAULT_AIDS
    text = DOCS.read_text(encoding="utf-8")
    for aid in DEFAULT_AIDS:  # the documented default list is the real one
        assert aid.aid.hex().upper() in text
    assert '`"36004000"`' in text and '`"E0F8C8"`' in text


def test_terminal_data_encodes_each_setting() -> None:
    config = TerminalConfig(amount=1250, other_amount=0, country=250, currency=978)
    data = config.terminal_data(WHEN, bytes.fromhex("A1B2C3D4"))
    assert _hex(data, "9F02") == "000000001250"
    assert _hex(data, "9F03") == "000000000000"
    assert _hex(data, "9F1A") == "0250"
    assert _hex(data, "5F2A") == "0978"
    assert _hex(data, "5F36") == "02"
    assert _hex(data, "9A") == "240517"
    assert _hex(data, "9F21") == "143005"
    assert _hex(data, "9C") == "00"
    assert _hex(data, "9F35") == "22"
    assert _hex(data, "9F37") == "A1B2C3D4"
    assert _hex(data, "9F15") == "5999"
    assert data[bytes.fromhex("9F1C")] == b"CLTEST01"
    assert _hex(data, "9F01") == "000000000000"


def test_refund_transaction_type_is_bcd() -> None:
    data = TerminalConfig(transaction_type=20).terminal_data(WHEN, bytes(4))
    assert _hex(data, "9C") == "20"


def test_extra_data_overrides_and_extends() -> None:
    config = TerminalConfig(extra_data={b"\x9f\x09": b"\x00\x02", b"\x9f\x66": b"\xb6\x20\xc0\x00"})
    data = config.terminal_data(WHEN, bytes(4))
    assert _hex(data, "9F09") == "0002"
    assert _hex(data, "9F66") == "B620C000"


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"ttq": b"\x36"}, "ttq"),
        ({"amount": -1}, "amount"),
        ({"amount": 10**12}, "amount"),
        ({"country": "840"}, "country"),
        ({"transaction_type": 100}, "transaction_type"),
        ({"cryptogram": "online"}, "cryptogram"),
        ({"terminal_id": "TOO-LONG-ID"}, "terminal_id"),
        ({"acquirer_id": "12ab56"}, "acquirer_id"),
        ({"supported_aids": ()}, "supported_aids"),
        ({"supported_aids": (SupportedAid(b"\xa0\x00"),)}, "aid"),
        ({"extra_data": {b"\x9f": b"\x00"}}, "data"),
    ],
)
def test_bad_settings_raise_config_error_naming_the_key(
    settings: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
        TerminalConfig(**settings)  # type: ignore[arg-type]


def test_supported_aid_matching() -> None:
    partial = SupportedAid(bytes.fromhex("A0000000031010"), partial=True)
    exact = SupportedAid(bytes.fromhex("A0000000031010"), partial=False)
    longer = bytes.fromhex("A000000003101001")
    assert partial.matches(bytes.fromhex("A0000000031010"))
    assert partial.matches(longer)
    assert not exact.matches(longer)
    assert exact.matches(bytes.fromhex("A0000000031010"))
    assert not partial.matches(bytes.fromhex("A00000000310"))  # shorter never matches
    assert not partial.matches(bytes.fromhex("A0000000041010"))


def test_clock_and_rng_are_injectable() -> None:
    a = TerminalConfig(clock=lambda: WHEN, rng=random.Random(5))
    b = TerminalConfig(clock=lambda: WHEN, rng=random.Random(5))
    assert a.now() == WHEN
    assert a.random_bytes(4) == b.random_bytes(4)
    assert TerminalConfig(rng=lambda n: b"\x11" * n).random_bytes(4) == b"\x11" * 4


def test_a_broken_rng_or_clock_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="RNG"):
        TerminalConfig(rng=lambda n: b"\x00").random_bytes(4)
    with pytest.raises(ConfigError, match="clock"):
        TerminalConfig(clock=lambda: "noon").now()  # type: ignore[arg-type, return-value]


# --- TOML ------------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "terminal.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _doc_example() -> str:
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/terminal-config.md has no TOML example"
    return blocks[-1]


def test_the_documented_example_loads(tmp_path: Path) -> None:
    config = TerminalConfig.load(_write(tmp_path, _doc_example()))
    assert config.country == 250 and config.currency == 978 and config.amount == 1250
    assert config.ttq == bytes.fromhex("36004000")
    assert config.merchant_category_code == 5814
    assert [a.aid.hex().upper() for a in config.supported_aids] == [
        "A0000000031010",
        "A0000000041010",
    ]
    assert [a.partial for a in config.supported_aids] == [True, False]
    assert config.extra_data[b"\x9f\x09"] == b"\x00\x02"
    # seed + fixed_time: a repeatable terminal
    again = TerminalConfig.load(_write(tmp_path, _doc_example()))
    assert config.now() == again.now() == datetime(2024, 5, 17, 12, 0)
    assert config.random_bytes(8) == again.random_bytes(8)
    assert config.source is not None and config.source.endswith("terminal.toml")


def test_an_empty_file_means_defaults_and_overrides_win(tmp_path: Path) -> None:
    config = TerminalConfig.load(_write(tmp_path, ""), amount=999)
    assert config.amount == 999
    assert config.supported_aids == DEFAULT_AIDS
    assert TerminalConfig.load(None, amount=5).amount == 5


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('ttq = "3600"', "ttq", "must be 4 bytes, got 2"),
        ('ttq = "36zz4000"', "ttq", "not hex"),
        ("amount = 1.5", "amount", "expected an integer"),
        ("amount = -3", "amount", "must be 0-999999999999"),
        ('cryptogram = "maybe"', "cryptogram", "must be one of"),
        ("colour = 1", "colour", "unknown key"),
        ("[[aid]]\npartial = true", "aid #1", "missing"),
        ('[[aid]]\naid = "A000"', "aid #1", "5-16 bytes"),
        ('[[aid]]\naid = "A0000000031010"\npartial = "yes"', "aid #1", "true or false"),
        ('[[aid]]\naid = "A0000000031010"\nkernel = 3', "aid #1", "unknown"),
        ('[data]\nZZ = "00"', "data.ZZ", "not a well-formed tag"),
        ('[data]\n9F09 = "0x02"', "data.9F09", "not hex"),
        ('fixed_time = "noon"', "fixed_time", "date-time"),
        ('seed = "x"', "seed", "integer"),
    ],
)
def test_bad_files_name_the_file_and_the_key(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        TerminalConfig.load(path)
    message = str(caught.value)
    assert str(path) in message
    assert key in message
    assert reason in message


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        TerminalConfig.load(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        TerminalConfig.load(_write(tmp_path, "amount = = 3"))
    with pytest.raises(ConfigError, match="cannot read"):
        TerminalConfig.load(tmp_path)  # a directory


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "fixed_time = 2025-01-02",
            "2025-01-02 is a date without a time; write 2025-01-02T00:00:00",
        ),
        ("fixed_time = 12:30:00", "12:30:00 is a time without a date"),
        ("amount = 2025-01-02", "expected an integer, got 2025-01-02"),
        ('[[aid]]\naid = "A0000000031010"\npartial = 1979-05-27', "got 1979-05-27"),
    ],
)
def test_toml_dates_and_times_are_named_as_toml_writes_them(
    tmp_path: Path, text: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        TerminalConfig.load(_write(tmp_path, text))
    assert says in str(caught.value)
    assert "datetime." not in str(caught.value)  # no Python repr


def test_a_fixed_time_at_midnight_is_written_as_a_date_time(tmp_path: Path) -> None:
    config = TerminalConfig.load(_write(tmp_path, "fixed_time = 2025-01-02T00:00:00"))
    assert config.now() == datetime(2025, 1, 2)
