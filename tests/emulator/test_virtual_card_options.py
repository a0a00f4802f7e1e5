"""CardOptions: T=0 answers (61xx + GET RESPONSE, 6Cxx), status-word overrides, corrupted
TLV, the PIN try counter and an expired card."""

from __future__ import annotations

import datetime

import pytest
from virtual_terminal import Terminal

from contactless.emulator import CardOptions, VirtualCard, load_profile
from contactless.errors import ConfigError, TlvError
from contactless.tlv import decode

MASTERCARD = bytes.fromhex("A0000000041010")
SELECT_MASTERCARD = "00A4040007A000000004101000"


def plain_answer(name: str, apdus: list[str]) -> bytes:
    """What the default (T=1 style) card answers to the last of ``apdus``."""
    terminal = Terminal(VirtualCard(load_profile(name)))
    for apdu in apdus[:-1]:
        terminal.send(apdu)
    return terminal.send(apdus[-1]).data


# --- T=0 ----------------------------------------------------------------------------------


def test_t0_case4_answer_comes_through_get_response_in_chunks() -> None:
    expected = plain_answer("mastercard", [SELECT_MASTERCARD])
    terminal = Terminal(VirtualCard(load_profile("mastercard"), options=CardOptions(t0=True)))
    first = terminal.send(SELECT_MASTERCARD)
    assert (first.data, first.sw) == (b"", 0x6100 | len(expected))
    collected = b""
    answer = terminal.send("00C0000010")  # ask for 16 bytes at a time
    while answer.sw >> 8 == 0x61:
        assert len(answer.data) == 16
        collected += answer.data
        assert answer.sw & 0xFF == len(expected) - len(collected)
        answer = terminal.send(bytes((0x00, 0xC0, 0x00, 0x00, min(16, answer.sw & 0xFF))))
    assert answer.sw == 0x9000
    assert collected + answer.data == expected
    assert terminal.send("00C0000010").sw == 0x6985  # nothing left


def test_t0_get_response_with_too_large_le_gets_6cxx() -> None:
    terminal = Terminal(VirtualCard(load_profile("visa"), options=CardOptions(t0=True)))
    size = terminal.send("00A404000E325041592E5359532E444446303100").sw & 0xFF
    assert terminal.send("00C0000000").sw == 0x6C00 | size  # Le 256 > size
    assert len(terminal.send(bytes((0x00, 0xC0, 0x00, 0x00, size))).data) == size


def test_t0_case2_with_wrong_le_gets_6cxx_with_the_right_length() -> None:
    expected = plain_answer("mastercard", [SELECT_MASTERCARD, "00B2011400"])
    terminal = Terminal(VirtualCard(load_profile("mastercard"), options=CardOptions(t0=True)))
    terminal.send(SELECT_MASTERCARD)
    for wrong_le in ("00", "10", "FF"):
        answer = terminal.send("00B20114" + wrong_le)
        assert (answer.data, answer.sw) == (b"", 0x6C00 | len(expected))
    assert terminal.send("00B20114").sw == 0x6C00 | len(expected)  # no Le at all
    right = terminal.send(bytes.fromhex("00B20114") + bytes((len(expected),)))
    assert (right.data, right.sw) == (expected, 0x9000)


def test_t0_another_command_drops_the_pending_answer() -> None:
    terminal = Terminal(VirtualCard(load_profile("visa"), options=CardOptions(t0=True)))
    assert terminal.send("00A404000E325041592E5359532E444446303100").sw >> 8 == 0x61
    assert terminal.send("0084000008").sw == 0x6D00
    assert terminal.send("00C0000000").sw == 0x6985


def test_t0_errors_are_plain_status_words() -> None:
    terminal = Terminal(VirtualCard(load_profile("jcb"), options=CardOptions(t0=True)))
    assert terminal.send("00A404000E325041592E5359532E444446303100").sw == 0x6A82


def test_t0_generate_ac_answer_is_fetched_whole() -> None:
    card = VirtualCard(load_profile("jcb"), options=CardOptions(t0=True))
    terminal = Terminal(card)
    assert terminal.send("00A4040007A000000065101000").sw >> 8 == 0x61
    assert terminal.send("80A80000028300").sw == 0x610C  # 80 0A AIP AFL
    gpo = terminal.send("00C000000C")
    assert gpo.sw == 0x9000 and decode(gpo.data)[0].tag_hex == "80"


# --- sw_override / corrupt_ins --------------------------------------------------------------


def test_sw_override_answers_the_status_word_and_skips_the_command() -> None:
    card = VirtualCard(load_profile("mastercard"), options=CardOptions(sw_override={0xA8: 0x6985}))
    terminal = Terminal(card)
    assert terminal.send(SELECT_MASTERCARD).sw == 0x9000
    atc = card.atc
    answer = terminal.send("80A80000098307220826600000F0A00100")
    assert (answer.data, answer.sw) == (b"", 0x6985)
    assert card.atc == atc  # the GPO did not run


def test_sw_override_for_several_instructions() -> None:
    options = CardOptions(sw_override={0xA4: 0x6A81, 0xB2: 0x6400})
    terminal = Terminal(VirtualCard(load_profile("visa"), options=options))
    assert terminal.send("00A404000E325041592E5359532E444446303100").sw == 0x6A81
    assert terminal.send("00B2010C00").sw == 0x6400


@pytest.mark.parametrize("ins", [0xA4, 0xB2])
def test_corrupt_ins_breaks_the_tlv_of_that_answer(ins: int) -> None:
    terminal = Terminal(
        VirtualCard(load_profile("mastercard"), options=CardOptions(corrupt_ins={ins}))
    )
    select = terminal.send(SELECT_MASTERCARD)
    record = terminal.send("00B2011400")
    broken, intact = (select, record) if ins == 0xA4 else (record, select)
    assert broken.sw == intact.sw == 0x9000
    with pytest.raises(TlvError, match="runs past the end"):
        decode(broken.data)
    decode(intact.data)


# --- pin_tries ---------------------------------------------------------------------------


def test_pin_tries_zero_blocks_verify_and_declines() -> None:
    card = VirtualCard(load_profile("mastercard"), options=CardOptions(pin_tries=0))
    terminal = Terminal(card)
    app = card.profile.applications[0]
    terminal.select(app.aid)
    assert terminal.get_data(0x9F17).find("9F17") == b"\x00"
    assert terminal.verify("4315").sw == 0x6983
    assert terminal.send("0020008000").sw == 0x6983
    terminal.gpo(app.pdol)
    answer = terminal.generate_ac(0x80, app.cdol1 or b"")
    assert answer.sw == 0x9000 and answer.find("77/9F27") == b"\x00"  # AAC: declined


def test_pin_tries_sets_the_counter() -> None:
    terminal = Terminal(VirtualCard(load_profile("visa"), options=CardOptions(pin_tries=1)))
    terminal.select(bytes.fromhex("A0000000031010"))
    assert terminal.get_data(0x9F17).find("9F17") == b"\x01"
    assert terminal.verify("9999").sw == 0x63C0
    assert terminal.verify("1234").sw == 0x6983


# --- expired -----------------------------------------------------------------------------


def _dates(name: str, options: CardOptions) -> tuple[datetime.date, datetime.date, str]:
    terminal = Terminal(VirtualCard(load_profile(name), options=options))
    app = terminal.card.profile.applications[0]
    terminal.select(app.aid)
    found = {}
    for sfi, number in [(r.sfi, r.number) for r in app.records]:
        for node in decode(terminal.read_record(sfi, number).data)[0].children or []:
            found[node.tag_hex] = node.value.hex()
    expiry, effective = found["5F24"], found["5F25"]
    track2 = found["57"].upper()
    to_date = lambda text: datetime.date(2000 + int(text[:2]), int(text[2:4]), int(text[4:6]))  # noqa: E731
    return to_date(expiry), to_date(effective), track2[track2.index("D") + 1 :][:4]


@pytest.mark.parametrize("name", ["visa", "amex", "discover"])
def test_expired_card_has_its_dates_in_the_past(name: str) -> None:
    today = datetime.date.today()
    expiry, effective, track2_expiry = _dates(name, CardOptions())
    assert effective < expiry
    old_expiry, old_effective, old_track2 = _dates(name, CardOptions(expired=True))
    assert old_expiry < today and old_effective < old_expiry
    assert (old_expiry.year, old_expiry.month) == (expiry.year - 10, expiry.month)
    assert old_track2 == old_expiry.strftime("%y%m") != track2_expiry
    assert track2_expiry == expiry.strftime("%y%m")


def test_expired_card_still_computes_cryptograms() -> None:
    card = VirtualCard(load_profile("unionpay"), options=CardOptions(expired=True))
    terminal = Terminal(card)
    app = card.profile.applications[0]
    terminal.select(app.aid)
    terminal.gpo(app.pdol)
    assert terminal.generate_ac(0x80, app.cdol1 or b"").find("80")[0] == 0x80


# --- option validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sw_override": {0x100: 0x9000}},
        {"sw_override": {0xA4: 0x10000}},
        {"corrupt_ins": {256}},
        {"pin_tries": 16},
        {"pin_tries": -1},
    ],
)
def test_invalid_card_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        CardOptions(**kwargs)  # type: ignore[arg-type]


def test_card_options_are_immutable() -> None:
    source = {0xA4: 0x6A82}
    options = CardOptions(sw_override=source)
    source[0xB2] = 0x6A83
    assert dict(options.sw_override) == {0xA4: 0x6A82}
    with pytest.raises(TypeError):
        options.sw_override[0xB2] = 0x6A83  # type: ignore[index]
