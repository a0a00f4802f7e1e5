"""Every profile answers a whole contactless read and transaction the way an EMV card does:
PPSE, SELECT, GET PROCESSING OPTIONS, READ RECORD, GENERATE AC; answers are decoded with
contactless.tlv and checked against the profile's data."""

from __future__ import annotations

import pytest
from virtual_terminal import TERMINAL_DATA, Terminal, dol_data, parse_dol

from contactless.emulator import VirtualCard, list_profiles, load_profile
from contactless.emulator.crypto import TERMINAL_DATA_TAGS, application_cryptogram, icc_master_key
from contactless.emulator.profiles import Application, Profile, luhn_valid
from contactless.tlv import decode, find, find_all

PPSE = b"2PAY.SYS.DDF01"
ARQC, TC, AAC = 0x80, 0x40, 0x00
VSDC_TTQ = {"9F66": "46004000"}  # contactless VSDC (bit 7), not qVSDC: GENERATE AC follows


def transaction_ttq(app: Application) -> dict[str, str]:
    """TTQ that makes every profile run the GENERATE AC path."""
    return VSDC_TTQ if app.gpo_cryptogram else {}


@pytest.fixture(params=list_profiles())
def profile(request: pytest.FixtureRequest) -> Profile:
    return load_profile(request.param)


def split(dol: bytes, data: bytes) -> dict[bytes, bytes]:
    values, pos = {}, 0
    for tag, length in parse_dol(dol):
        values[tag] = data[pos : pos + length]
        pos += length
    return values


def expected_cryptogram(app: Application, *, atc: int, iad: bytes, cdol_data: bytes) -> bytes:
    """Recompute the AC from what the terminal sent and saw (the card's inputs)."""
    config = app.cryptogram
    assert config is not None
    values = split(app.cdol1 or b"", cdol_data)
    key = icc_master_key(
        config.issuer_master_key, app.pan, app.pan_sequence, config.method.master_key_derivation
    )
    return application_cryptogram(
        config.method,
        key,
        terminal_data={tag: values[tag] for tag in TERMINAL_DATA_TAGS},
        aip=app.aip,
        atc=atc,
        iad=iad,
        cvr=slice(config.cvr_offset, config.cvr_offset + config.cvr_length),
    )


def test_ppse_lists_every_application_or_is_absent(profile: Profile) -> None:
    terminal = Terminal(VirtualCard(profile))
    answer = terminal.select(PPSE)
    if not profile.ppse:
        assert (answer.sw, answer.data) == (0x6A82, b"")
        return
    assert answer.sw == 0x9000
    assert answer.find("6F/84") == PPSE
    entries = find_all(answer.tlv, "6F/A5/BF0C/61")
    assert len(entries) == len(profile.applications)
    for entry, app in zip(entries, profile.applications, strict=True):
        children = entry.children or []
        assert [node.tag_hex for node in children][:2] == ["4F", "50"]
        assert find(children, "4F").value == app.aid  # type: ignore[union-attr]
        assert find(children, "50").value == app.label.encode()  # type: ignore[union-attr]
        assert find(children, "87").value == bytes((app.priority,))  # type: ignore[union-attr]


def test_select_answers_the_application_fci(profile: Profile) -> None:
    terminal = Terminal(VirtualCard(profile))
    for app in profile.applications:
        answer = terminal.select(app.aid)
        assert answer.sw == 0x9000
        assert answer.find("6F/84") == app.aid
        assert answer.find("6F/A5/50") == app.label.encode("ascii")
        pdol = find(answer.tlv, "6F/A5/9F38")
        assert (pdol.value if pdol else None) == app.pdol


def test_full_transaction(profile: Profile) -> None:
    card = VirtualCard(profile)
    terminal = Terminal(card)
    for app in profile.applications:
        atc_before = card.atc
        assert terminal.select(app.aid).sw == 0x9000
        gpo = terminal.gpo(app.pdol, transaction_ttq(app))
        assert gpo.sw == 0x9000
        assert card.atc == atc_before + 1
        if app.gpo_format == 1:
            assert gpo.tlv[0].tag_hex == "80"
            assert gpo.find("80") == app.aip + app.afl
        else:
            assert gpo.find("77/82") == app.aip and gpo.find("77/94") == app.afl

        records = terminal.afl_records(app.afl)
        seen: dict[str, bytes] = {}
        for (sfi, number), answer in records.items():
            assert answer.sw == 0x9000, (sfi, number)
            nodes = decode(answer.data)
            assert [node.tag_hex for node in nodes] == ["70"]
            definition = next(r for r in app.records if (r.sfi, r.number) == (sfi, number))
            assert [child.tag for child in nodes[0].children or []] == [
                int.from_bytes(tag, "big") for tag in definition.tags
            ]
            seen.update({child.tag_hex: child.value for child in nodes[0].children or []})
        pan = seen["5A"].hex().upper().rstrip("F")
        assert pan == app.pan and luhn_valid(pan)
        if "57" in seen:
            assert seen["57"].hex().upper().startswith(app.pan + "D")

        cdol_data = dol_data(app.cdol1 or b"")
        answer = terminal.generate_ac(ARQC, app.cdol1 or b"")
        assert answer.sw == 0x9000
        if app.generate_ac_format == 1:
            body = answer.find("80")
            cid, atc, ac, iad = body[0], body[1:3], body[3:11], body[11:]
        else:
            cid, atc = answer.find("77/9F27")[0], answer.find("77/9F36")
            ac, iad = answer.find("77/9F26"), answer.find("77/9F10")
        assert cid == ARQC
        assert int.from_bytes(atc, "big") == card.atc == atc_before + 1
        assert ac == expected_cryptogram(app, atc=card.atc, iad=iad, cdol_data=cdol_data)


def test_atc_increments_per_transaction_and_survives_reset() -> None:
    card = VirtualCard(load_profile("mastercard"))
    terminal = Terminal(card)
    app = card.profile.applications[0]
    counters = []
    for _ in range(3):
        terminal.select(app.aid)
        terminal.gpo(app.pdol)
        answer = terminal.generate_ac(ARQC, app.cdol1 or b"")
        counters.append(int.from_bytes(answer.find("77/9F36"), "big"))
        card.reset()
    assert counters == [counters[0], counters[0] + 1, counters[0] + 2]
    terminal.select(app.aid)
    assert terminal.get_data(0x9F36).find("9F36") == counters[-1].to_bytes(2, "big")


def test_cryptograms_differ_by_atc_and_unpredictable_number() -> None:
    card = VirtualCard(load_profile("amex"))
    terminal = Terminal(card)
    app = card.profile.applications[0]
    seen = set()
    for number in ("11111111", "11111111", "22222222"):
        terminal.select(app.aid)
        terminal.gpo(app.pdol)
        answer = terminal.generate_ac(ARQC, app.cdol1 or b"", {"9F37": number})
        seen.add(answer.find("80")[3:11])
    assert len(seen) == 3


def test_qvsdc_gpo_carries_track2_and_the_arqc() -> None:
    card = VirtualCard(load_profile("visa"))
    terminal = Terminal(card)
    app = card.profile.applications[0]
    terminal.select(app.aid)
    pdol_data = dol_data(app.pdol or b"")
    gpo = terminal.gpo(app.pdol)
    assert gpo.sw == 0x9000
    assert gpo.find("77/57").hex().upper().startswith("4761739001010010D2812201")
    assert gpo.find("77/9F27") == b"\x80"
    assert gpo.find("77/9F36") == card.atc.to_bytes(2, "big")
    iad = gpo.find("77/9F10")
    assert iad == bytes.fromhex("06011203A00000")  # CVR byte 2: ARQC, no second AC
    config = app.cryptogram
    assert config is not None
    terminal_values = split(app.pdol or b"", pdol_data)
    key = icc_master_key(config.issuer_master_key, app.pan, app.pan_sequence, "B")
    expected = application_cryptogram(
        config.method,
        key,
        terminal_data={tag: terminal_values[tag] for tag in TERMINAL_DATA_TAGS},
        aip=app.aip,
        atc=card.atc,
        iad=iad,
    )
    assert gpo.find("77/9F26") == expected
    # The transaction is over: a GENERATE AC now is out of sequence.
    assert terminal.generate_ac(ARQC, app.cdol1 or b"").sw == 0x6985


def test_qvsdc_card_refuses_a_reader_without_qvsdc_or_vsdc() -> None:
    card = VirtualCard(load_profile("visa"))
    terminal = Terminal(card)
    app = card.profile.applications[0]
    terminal.select(app.aid)
    atc = card.atc
    assert terminal.gpo(app.pdol, {"9F66": "80000000"}).sw == 0x6985  # MSD only
    assert card.atc == atc


def test_contactless_vsdc_path_answers_aip_afl_only() -> None:
    terminal = Terminal(VirtualCard(load_profile("visa")))
    app = terminal.card.profile.applications[1]
    terminal.select(app.aid)
    gpo = terminal.gpo(app.pdol, VSDC_TTQ)
    assert [node.tag_hex for node in gpo.tlv[0].children or []] == ["82", "94"]


def test_generate_ac_decisions() -> None:
    """TC requests go online on an online-only card, are approved on an offline-capable one;
    AAC requests always get an AAC; the IAD's CVR says which AC the card returned."""
    cases = [
        ("mastercard", TC, ARQC),
        ("mastercard", AAC, AAC),
        ("jcb", TC, TC),
        ("jcb", ARQC, ARQC),
    ]
    for name, requested, returned in cases:
        card = VirtualCard(load_profile(name))
        terminal = Terminal(card)
        app = card.profile.applications[0]
        terminal.select(app.aid)
        terminal.gpo(app.pdol)
        answer = terminal.generate_ac(requested, app.cdol1 or b"")
        assert answer.find("77/9F27")[0] == returned, (name, requested)
        config = app.cryptogram
        assert config is not None and config.ac_type_offset is not None
        cvr_byte = answer.find("77/9F10")[config.ac_type_offset]
        assert cvr_byte >> 4 == 0b1000 | {AAC: 0, TC: 1, ARQC: 2}[returned]


def test_second_generate_ac_completes_an_online_transaction() -> None:
    card = VirtualCard(load_profile("mastercard"))
    terminal = Terminal(card)
    app = card.profile.applications[0]
    terminal.select(app.aid)
    terminal.gpo(app.pdol)
    first = terminal.generate_ac(ARQC, app.cdol1 or b"")
    assert first.find("77/9F27") == b"\x80"
    assert terminal.generate_ac(ARQC, app.cdol2 or b"").sw == 0x6A86  # no ARQC twice
    assert terminal.generate_ac(TC, app.cdol1 or b"").sw == 0x6700  # CDOL2 length now
    second = terminal.generate_ac(TC, app.cdol2 or b"")
    assert second.sw == 0x9000 and second.find("77/9F27") == b"\x40"
    assert second.find("77/9F36") == first.find("77/9F36")  # same transaction, same ATC
    assert second.find("77/9F10")[2] >> 4 == 0b0110  # second: TC, first: ARQC
    assert second.find("77/9F26") != first.find("77/9F26")
    assert terminal.generate_ac(TC, app.cdol2 or b"").sw == 0x6985  # the transaction is over
    assert terminal.get_data(0x9F13).find("9F13") == card.atc.to_bytes(2, "big")


def test_transaction_log_records_each_cryptogram() -> None:
    card = VirtualCard(load_profile("mastercard"))
    terminal = Terminal(card)
    app = card.profile.applications[0]
    terminal.select(app.aid)
    assert terminal.read_record(11, 1).sw == 0x6A83  # empty log
    assert terminal.get_data(0x9F4F).find("9F4F") == bytes.fromhex(
        "9F27019F02065F2A029A039F36029F5206"
    )
    for amount in ("000000000100", "000000000200"):
        terminal.select(app.aid)
        terminal.gpo(app.pdol)
        terminal.generate_ac(ARQC, app.cdol1 or b"", {"9F02": amount})
    newest = terminal.read_record(11, 1)
    assert newest.sw == 0x9000
    # CID | amount | currency | date | ATC | ADA (zeros): no template, values only.
    assert newest.data == bytes.fromhex(
        "80" + "000000000200" + TERMINAL_DATA["5F2A"] + TERMINAL_DATA["9A"]
    ) + card.atc.to_bytes(2, "big") + bytes(6)
    assert terminal.read_record(11, 2).data[1:7] == bytes.fromhex("000000000100")
    assert terminal.read_record(11, 3).sw == 0x6A83


def test_reset_deselects_but_keeps_counters() -> None:
    card = VirtualCard(load_profile("unionpay"))
    terminal = Terminal(card)
    app = card.profile.applications[0]
    terminal.select(app.aid)
    terminal.gpo(app.pdol)
    atc = card.atc
    card.reset()
    assert terminal.gpo(app.pdol).sw == 0x6985  # nothing selected after a power cycle
    assert terminal.read_record(1, 1).sw == 0x6985
    assert card.atc == atc


@pytest.mark.parametrize(
    ("name", "published_atr"),
    [
        # ATRs as listed for real contactless payment cards in pcsc-tools' smartcard_list.txt.
        ("visa", "3B 87 80 01 73 C8 40 00 00 90 00 6D"),
        ("mastercard", "3B 86 80 01 44 49 20 30 32 4D 65"),
        ("amex", "3B 8B 80 01 00 31 C0 64 08 44 03 76 00 90 00 36"),
        ("unionpay", "3B 8D 80 01 00 04 D0 84 21 86 64 00 00 00 00 00 00 9F"),
        ("jcb", "3B 8E 80 01 80 31 80 66 B1 84 0C 01 6E 01 83 00 90 00 1C"),
        ("discover", "3B 86 80 01 4B 4F 4E 41 14 11 09"),
    ],
)
def test_atr_is_built_from_the_ats_like_a_pcsc_reader(name: str, published_atr: str) -> None:
    card = VirtualCard(load_profile(name))
    assert card.atr == bytes.fromhex(published_atr)
    assert card.ats[0] == len(card.ats) and card.ats[1] & 0x70 == 0x70  # TA, TB, TC present
    assert len(card.uid) in (4, 7)
