"""parse_faults: query strings and mappings to Faults, and ConfigError for anything wrong."""

from __future__ import annotations

import pytest

from contactless.emulator import FAULT_KEYS, CardOptions, Faults, parse_faults
from contactless.errors import ConfigError


def test_empty_query_gives_no_faults() -> None:
    assert parse_faults("") == Faults()
    assert parse_faults("?") == Faults()
    assert parse_faults({}) == Faults()
    faults = parse_faults("")
    assert faults.card_options == CardOptions()
    assert (faults.latency_ms, faults.error_rate, faults.seed) == (0.0, 0.0, None)
    assert faults.mute_after is faults.remove_after is faults.hang_after is faults.firmware is None


def test_every_option() -> None:
    faults = parse_faults(
        "?latency_ms=40&error_rate=0.25&seed=7&mute_after=3&remove_after=5&hang_after=9"
        "&firmware=1.2.3%20beta&sw=A8:6985,b2:6a83&corrupt=B2,ae&t0=1&pin_tries=0&expired=1"
    )
    assert faults.latency_ms == 40.0 and faults.error_rate == 0.25 and faults.seed == 7
    assert (faults.mute_after, faults.remove_after, faults.hang_after) == (3, 5, 9)
    assert faults.firmware == "1.2.3 beta"
    options = faults.card_options
    assert dict(options.sw_override) == {0xA8: 0x6985, 0xB2: 0x6A83}
    assert options.corrupt_ins == frozenset({0xB2, 0xAE})
    assert options.t0 and options.expired and options.pin_tries == 0


def test_mapping_input_and_fractions() -> None:
    faults = parse_faults({"latency_ms": "12.5", "t0": "0", "expired": "true"})
    assert faults.latency_ms == 12.5
    assert not faults.card_options.t0 and faults.card_options.expired


def test_unknown_key_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        parse_faults("latency=40")
    message = str(info.value)
    assert "'latency'" in message
    for key in FAULT_KEYS:
        assert key in message


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("latency_ms=-1", "latency_ms"),
        ("latency_ms=fast", "latency_ms"),
        ("latency_ms=inf", "latency_ms"),
        ("error_rate=1.5", "error_rate"),
        ("error_rate=nan", "error_rate"),
        ("seed=x", "seed"),
        ("mute_after=-2", "mute_after"),
        ("remove_after=1.5", "remove_after"),
        ("hang_after=", "hang_after"),
        ("firmware=", "firmware"),
        ("sw=A8", "sw"),
        ("sw=A8:69", "sw"),
        ("sw=A8:69851", "sw"),
        ("sw=ZZ:6985", "sw"),
        ("sw=A8:6985,", "sw"),
        ("sw=1A8:6985", "sw"),
        ("corrupt=B", "corrupt"),
        ("corrupt=B2,,A8", "corrupt"),
        ("t0=2", "t0"),
        ("t0=yep", "t0"),
        ("pin_tries=16", "pin_tries"),
        ("pin_tries=-1", "pin_tries"),
        ("expired=maybe", "expired"),
    ],
)
def test_bad_values_name_the_key_and_what_is_expected(query: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"fault option {key}=.* is invalid: expected"):
        parse_faults(query)


def test_repeated_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match="'seed' is given twice"):
        parse_faults("seed=1&seed=2")


def test_garbage_query_and_wrong_types() -> None:
    with pytest.raises(ConfigError, match="not key=value"):
        parse_faults("&&&")
    with pytest.raises(ConfigError, match="must be text"):
        parse_faults({"seed": 7})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="query string or a mapping"):
        parse_faults(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["t0", "expired"])
@pytest.mark.parametrize(
    ("spelling", "meaning"),
    [
        ("1", True),
        ("true", True),
        ("Yes", True),
        ("ON", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("Off", False),
    ],
)
def test_every_yes_no_option_takes_the_same_spellings(
    key: str, spelling: str, meaning: bool
) -> None:
    assert getattr(parse_faults({key: spelling}).card_options, key) is meaning


def test_a_bad_yes_no_value_lists_the_spellings() -> None:
    with pytest.raises(ConfigError, match="expected one of 1, true, yes, on, 0, false, no, off"):
        parse_faults("expired=maybe")


def test_firmware_is_at_most_64_characters() -> None:
    assert parse_faults({"firmware": "F" * 64}).firmware == "F" * 64
    with pytest.raises(ConfigError, match=r"firmware=.* is invalid: expected .*1-64 characters"):
        parse_faults({"firmware": "F" * 65})


def test_an_overlong_value_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError, match="'sw' is 100000 characters long") as caught:
        parse_faults({"sw": "A" * 100_000})
    assert len(str(caught.value)) < 200
