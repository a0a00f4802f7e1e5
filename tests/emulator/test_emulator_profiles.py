"""The built-in profiles cover what the issue asks for, and broken profile files are
ConfigErrors naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

import contactless.emulator
from contactless.emulator import list_profiles, load_profile, load_profile_file
from contactless.emulator.profiles import luhn_valid
from contactless.errors import ConfigError, TlvError
from contactless.tlv.dol import dol_length, parse_dol

PROFILES = Path(contactless.emulator.__file__).parent / "profiles"
VISA_PDOL_TAGS = ["9F66", "9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37"]


def test_the_required_profiles_exist() -> None:
    names = list_profiles()
    assert {"visa", "mastercard", "amex", "unionpay"} <= set(names)
    assert {"jcb", "discover", "interac"} & set(names)
    assert names == sorted(names) and len(names) >= 5


@pytest.mark.parametrize("name", list_profiles())
def test_every_profile_loads_with_valid_pans(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name and profile.applications
    for app in profile.applications:
        assert luhn_valid(app.pan)
        objects = app.data_objects()
        for tag in ("5A", "5F24", "5F28", "5F2D", "50", "82", "94", "8E", "9F07"):
            assert bytes.fromhex(tag) in objects, (name, tag)


def test_profile_variety() -> None:
    profiles = [load_profile(name) for name in list_profiles()]
    apps = [app for profile in profiles for app in profile.applications]
    assert any(len(p.applications) >= 2 and p.ppse for p in profiles)  # two apps, priorities
    assert any(app.gpo_format == 1 for app in apps)
    assert any(not p.ppse for p in profiles)
    assert any(len(app.pan) == 19 for app in apps)  # exercises key derivation option B


def test_visa_is_qvsdc_with_the_standard_pdol() -> None:
    visa = load_profile("visa")
    priorities = [app.priority for app in visa.applications]
    assert len(visa.applications) == 2 and priorities == [1, 2]
    for app in visa.applications:
        assert [tag.hex().upper() for tag, _ in parse_dol(app.pdol or b"")] == VISA_PDOL_TAGS
        assert app.gpo_format == 2 and app.gpo_cryptogram
        assert bytes.fromhex("57") in app.gpo_tags
    assert visa.applications[0].pan == "4761739001010010"


def test_mastercard_has_certificates_of_real_sizes() -> None:
    app = load_profile("mastercard").applications[0]
    objects = app.data_objects()
    sizes = {
        tag: len(objects[bytes.fromhex(tag)]) for tag in ("8F", "90", "9F32", "92", "9F46", "9F47")
    }
    assert sizes == {"8F": 1, "90": 176, "9F32": 1, "92": 36, "9F46": 176, "9F47": 1}
    assert app.pdol and app.cdol1 and dol_length(parse_dol(app.cdol1)) == 43


def test_unknown_profile_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load_profile("diners-club-1962")
    assert "diners-club-1962" in str(info.value)
    for name in list_profiles():
        assert name in str(info.value)
    with pytest.raises(ConfigError):
        load_profile("Visa")  # names are exact
    with pytest.raises(ConfigError, match="cannot read profile"):
        load_profile("/nonexistent/card.toml")


def test_a_profile_file_path_loads(tmp_path: Path) -> None:
    path = tmp_path / "mycard.toml"
    path.write_text((PROFILES / "amex.toml").read_text(encoding="utf-8"), encoding="utf-8")
    profile = load_profile(str(path))
    assert profile.name == "mycard" and profile.source == str(path)


def test_luhn_and_dol_helpers() -> None:
    assert luhn_valid("4761739001010010") and luhn_valid("378282246310005")
    assert not luhn_valid("4761739001010011") and not luhn_valid("47617390A1010010")
    assert parse_dol(bytes.fromhex("9F6604 9505 DF810102")) == [
        (bytes.fromhex("9F66"), 4),
        (bytes.fromhex("95"), 5),
        (bytes.fromhex("DF8101"), 2),
    ]
    for broken in ("9F66", "9F", "00 01", "DF81818181 01"):
        with pytest.raises(TlvError):
            parse_dol(bytes.fromhex(broken))


# --- broken files -------------------------------------------------------------------------


def write_variant(tmp_path: Path, base: str, old: str, new: str) -> Path:
    text = (PROFILES / f"{base}.toml").read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {base}.toml"
    path = tmp_path / f"broken-{base}.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("base", "old", "new", "field", "problem"),
    [
        ("mastercard", 'pan = "5413330089010434"', 'pan = "5413330089010435"', "pan", "Luhn"),
        ("mastercard", "20 01 02 00", "20 01 03 00", "afl", "SFI 4 record 3 is not defined"),
        ("mastercard", "08 01 01 00", "08 02 01 00", "afl", "bad record range"),
        ("mastercard", 'pdol = "9F35 01 9F1A 02 9F40 05"', 'pdol = "9F35 01 9F1A"', "pdol",
         "not a valid data object list"),
        ("mastercard", 'tags = ["9F46"]', 'tags = ["9F46", "DF7F"]', "records",
         "tag DF7F"),
        ("mastercard", 'tags = ["9F46"]', 'tags = ["9F46", "90"]', "records",
         "too long for one short READ RECORD answer"),
        ("mastercard", 'expiry = "2029-02"', 'expiry = "2029-13"', "expiry", "does not match"),
        ("mastercard", 'expiry = "2029-02"', 'expiry = "2020-02"', "effective",
         "after the expiry"),
        ("mastercard", 'label = "Debit Mastercard"', "label = 7", "label", "must be a string"),
        ("mastercard", 'method = "mastercard-cvn16"', 'method = "rot13"', "method",
         "unknown 'rot13'"),
        ("mastercard", '"9F07" = "FF00"', '"9F07" = "FF0"', "9F07", "odd number of hex digits"),
        ("mastercard", '"9F07" = "FF00"', '"5A" = "5413330089010434"', "5A",
         "derived from the profile's fields"),
        ("mastercard", 'service_code = "201"', 'service_code = "201"\nfavourite = 1',
         "favourite", "unknown key"),
        ("mastercard", "cdol1 = \"9F02 06", "cdol1 = \"9F03 06", "cdol1", "lacks 9F02"),
        ("mastercard", '"9F4D" = "0B0A"', '"9F4D" = "010A"', "data", "SFI 1, which holds records"),
        ("visa", '"5F34", "9F6E"]', '"5F34", "DF01"]', "gpo_tags", "tag DF01 is not defined"),
        ("visa", 'gpo_tags = ["57", "5F20", "9F10", "9F26", "9F27", "9F36", ',
         'gpo_tags = ["57", "5F20", "9F10", "9F27", "9F36", ', "gpo_tags",
         "lacks 9F26 for the GPO cryptogram"),
        ("visa", 'ats = "0C 78', 'ats = "0D 78', "ats", "TL is 13"),
        ("visa", 'uid = "08 5A 1C 3E"', 'uid = "08 5A 1C"', "uid", "4, 7 or 10 bytes"),
        ("amex", "gpo_format = 1", "gpo_format = 3", "gpo_format", "outside 1..2"),
        ("amex", "cvr_offset = 3\n", "", "cvr_offset", "is missing"),
        ("jcb", 'pin = "2468"', 'pin = "24x8"', "pin", "does not match"),
        ("jcb", 'aid = "A0000000651010"', 'aid = "A000"', "aid", "expected 5..16"),
    ],
)  # fmt: skip
def test_broken_profiles_name_file_and_field(
    tmp_path: Path, base: str, old: str, new: str, field: str, problem: str
) -> None:
    path = write_variant(tmp_path, base, old, new)
    with pytest.raises(ConfigError) as info:
        load_profile_file(path)
    message = str(info.value)
    assert str(path) in message
    assert f"field {field!r}" in message
    assert problem in message


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('ats = "0C\n[[application', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml is not valid TOML"):
        load_profile_file(path)


def test_profile_without_applications(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text(
        'ats = "05 78 80 70 02"\nuid = "08010203"\napplication = []\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="at least one"):
        load_profile_file(path)


def test_duplicate_aids_are_refused(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "visa", 'aid = "A0000000032010"', 'aid = "A0000000031010"')
    with pytest.raises(ConfigError, match="same AID"):
        load_profile_file(path)
