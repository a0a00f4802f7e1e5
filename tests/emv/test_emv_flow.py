"""The read flow, fed real-world-shaped answers by hand (no emulator, no driver)."""

from __future__ import annotations

import re

import pytest
from emv_cards import (
    FIXED_TIME,
    MASTERCARD,
    MC_AFL,
    MC_PAN,
    NAME,
    PAN,
    SELECT_PPSE,
    VISA,
    VISA_CRYPTOGRAM,
    VISA_ELECTRON,
    VISA_IAD,
    ScriptedCard,
    config,
    fci,
    feed,
    mc_card,
    ok,
    ppse,
    ppse_entry,
    select,
    status,
    tlv,
    visa_card,
    visa_record,
)

from contactless.apdu import Command, Response
from contactless.emv.flow import (
    PPSE,
    candidates_from_directory,
    fallback_candidates,
    read_flow,
)
from contactless.emv.terminal import DEFAULT_AIDS, SupportedAid, TerminalConfig
from contactless.errors import (
    LocalProtocolError,
    RemoteProtocolError,
    StatusWordError,
    TlvError,
)
from contactless.tlv import decode

AMEX_LONG = bytes.fromhex("A000000025010801")
UNKNOWN = bytes.fromhex("A0000009999999")


# --- candidate list -------------------------------------------------------------------------


def _aids(candidates: list) -> list[str]:  # type: ignore[type-arg]
    return [c.aid.hex().upper() for c in candidates]


def test_candidates_are_ordered_by_priority_then_card_order() -> None:
    answer = ppse(
        ppse_entry(VISA_ELECTRON, b"VISA ELECTRON", 0x02),
        ppse_entry(UNKNOWN, b"LOYALTY", 0x01),  # not supported: dropped
        ppse_entry(MASTERCARD, b"MASTERCARD"),  # no priority: after all with one
        ppse_entry(VISA, b"VISA", 0x81),  # bit 8 (confirmation) ignored, nibble 1
        ppse_entry(AMEX_LONG, b"AMEX", 0x00),  # 0 = no priority: card order among those
        ppse_entry(bytes.fromhex("A0000000651010"), b"JCB", 0x02),  # tie with Electron
    )
    candidates = candidates_from_directory(decode(answer), DEFAULT_AIDS)
    assert _aids(candidates) == [
        "A0000000031010",
        "A0000000032010",
        "A0000000651010",
        "A0000000041010",
        "A000000025010801",
    ]
    assert [c.priority for c in candidates] == [1, 2, 2, None, None]
    assert candidates[0].label == "VISA"
    # partial match: the terminal's A00000002501 accepted the longer card AID
    assert candidates[-1].supported.aid == bytes.fromhex("A00000002501")


def test_exact_only_terminal_aid_rejects_longer_card_aid() -> None:
    answer = ppse(ppse_entry(bytes.fromhex("A000000003101001"), b"VISA", 1))
    exact = (SupportedAid(VISA, partial=False),)
    partial = (SupportedAid(VISA, partial=True),)
    assert candidates_from_directory(decode(answer), exact) == []
    assert _aids(candidates_from_directory(decode(answer), partial)) == ["A000000003101001"]


def test_entries_without_a_valid_adf_name_are_skipped() -> None:
    answer = ppse(
        ("61", [("50", b"NO AID")]),
        ppse_entry(bytes.fromhex("A000000003"), b"SHORT BUT VALID", 1),
        ppse_entry(bytes.fromhex("A0000000"), b"TOO SHORT", 1),
    )
    supported = (SupportedAid(bytes.fromhex("A000000003"), partial=False),)
    assert _aids(candidates_from_directory(decode(answer), supported)) == ["A000000003"]


def test_fallback_candidates_keep_terminal_order() -> None:
    candidates = fallback_candidates(DEFAULT_AIDS)
    assert [c.aid for c in candidates] == [a.aid for a in DEFAULT_AIDS]
    assert not any(c.from_directory for c in candidates)


# --- whole reads ----------------------------------------------------------------------------


def test_visa_qvsdc_read() -> None:
    card = visa_card()
    data = feed(read_flow(config()), card)
    assert card.described == [
        SELECT_PPSE,
        select(VISA),
        "GET PROCESSING OPTIONS",
        "READ RECORD SFI 3 record 1",
    ]
    assert card.sent[0].hex() == "00A404000E325041592E5359532E444446303100"
    assert card.sent[3].hex() == "00B2011C00"  # P2 = SFI 3 << 3 | 4
    assert data.aid == VISA
    assert data.label == "VISA CREDIT"
    assert data.brand == "visa"
    assert data.pan == PAN and data.pan_last4 == "0010"
    assert data.expiry == "2022-12"
    assert data.effective_date == "2019-01-01"
    assert data.service_code == "201"
    assert data.cardholder_name == NAME.decode()
    assert data.issuer_country == 840 and data.currency == 840
    assert data.language_preference == ("en", "fr")
    assert data.pan_sequence_number == "01"
    assert data.aip == bytes.fromhex("2000") and data.aip_bits["dda_supported"]
    assert [(e.sfi, e.first, e.last, e.oda) for e in data.afl] == [(3, 1, 1, 0)]
    assert data.track2 is not None and data.track2.expiry == "2212"
    assert data.apdus == 4
    # qVSDC: the cryptogram came in the GPO answer, without GENERATE AC
    assert data.cryptogram is not None
    assert data.cryptogram_type == "ARQC" and data.atc == 0x27
    assert data.cryptogram.cryptogram == VISA_CRYPTOGRAM and data.cryptogram.iad == VISA_IAD
    assert data.cryptogram.source == "GET PROCESSING OPTIONS"
    assert [r.kind for r in data.responses] == ["directory", "fci", "gpo", "record"]
    assert data.find("9F6C") == bytes.fromhex("1600")


def test_pdol_is_built_from_the_terminal_config() -> None:
    card = visa_card()
    settings = TerminalConfig(
        amount=1250,
        country=250,
        currency=978,
        clock=lambda: FIXED_TIME,
        rng=lambda n: bytes.fromhex("A1B2C3D4")[:n],
    )
    feed(read_flow(settings), card)
    gpo = card.sent[2]
    assert (gpo.cla, gpo.ins, gpo.p1, gpo.p2, gpo.le) == (0x80, 0xA8, 0x00, 0x00, 256)
    assert gpo.data.hex().upper() == (
        "8321"
        "36004000"  # 9F66 TTQ
        "000000001250"  # 9F02 amount
        "000000000000"  # 9F03 other amount
        "0250"  # 9F1A France
        "0000000000"  # 95 TVR
        "0978"  # 5F2A EUR
        "240517"  # 9A date
        "00"  # 9C purchase
        "A1B2C3D4"  # 9F37 unpredictable number
    )


def test_pdol_with_unknown_tags_is_zero_filled() -> None:
    pdol = bytes.fromhex("9F6604DF81170 29F1A01".replace(" ", ""))
    card = visa_card()
    card.answers[select(VISA)] = ok(fci(VISA, pdol=pdol))
    feed(read_flow(config()), card)
    # TTQ, then 2 zero bytes for the unknown DF8117, then 9F1A 0840 cut to its last byte
    assert card.sent[2].data.hex().upper() == "8307" + "36004000" + "0000" + "40"


def test_no_pdol_sends_an_empty_83_template() -> None:
    card = mc_card()
    feed(read_flow(config()), card)
    assert card.sent[2].hex() == "80A80000028300" + "00"


def test_two_runs_with_the_same_clock_and_seed_send_identical_apdus() -> None:
    runs = []
    for _ in range(2):
        card = mc_card()
        card.answers["GENERATE AC"] = ok(tlv("80", bytes.fromhex("80001201020304050607080A0B")))
        feed(read_flow(config(seed=42), transaction=True), card)
        runs.append([command.to_bytes() for command in card.sent])
    assert runs[0] == runs[1]
    other = mc_card()
    other.answers["GENERATE AC"] = ok(tlv("80", bytes.fromhex("80001201020304050607080A0B")))
    feed(read_flow(config(seed=43), transaction=True), other)
    assert other.sent[-1].to_bytes() != runs[0][-1]  # another unpredictable number


def test_no_ppse_falls_back_to_the_terminal_aids() -> None:
    card = ScriptedCard(
        {
            SELECT_PPSE: status(0x6A82),
            select(MASTERCARD): ok(fci(MASTERCARD, b"MASTERCARD", pdol=None)),
            "GET PROCESSING OPTIONS": ok(tlv("80", bytes.fromhex("1980") + MC_AFL)),
            **{k: v for k, v in mc_card().answers.items() if k.startswith("READ")},
        }
    )
    data = feed(read_flow(config()), card)
    # Visa, Visa Electron, V PAY are not on the card (6A82), then Mastercard answers.
    assert card.described[:5] == [
        SELECT_PPSE,
        select(VISA),
        select(VISA_ELECTRON),
        select(bytes.fromhex("A0000000032020")),
        select(MASTERCARD),
    ]
    assert data.aid == MASTERCARD and data.pan == MC_PAN
    assert data.label == "MASTERCARD"
    assert data.responses[0].kind == "fci"  # no directory


def test_fallback_partial_selection_accepts_a_longer_df_name() -> None:
    amex = SupportedAid(bytes.fromhex("A00000002501"), partial=True, label="Amex")
    card = ScriptedCard(
        {
            SELECT_PPSE: status(0x6A82),
            select(amex.aid): ok(fci(AMEX_LONG, b"AMERICAN EXPRESS", pdol=None)),
            "GET PROCESSING OPTIONS": ok(
                tlv("80", bytes.fromhex("1800") + bytes.fromhex("08010100"))
            ),
            "READ RECORD SFI 1 record 1": ok(visa_record()),
        }
    )
    data = feed(read_flow(config(supported_aids=(amex,))), card)
    assert data.aid == AMEX_LONG
    assert data.brand == "amex"


def test_ppse_without_a_match_falls_back_too() -> None:
    card = visa_card()
    card.answers[SELECT_PPSE] = ok(ppse(ppse_entry(UNKNOWN, b"LOYALTY", 1)))
    data = feed(read_flow(config()), card)
    assert card.described[:2] == [SELECT_PPSE, select(VISA)]
    assert data.aid == VISA
    assert data.responses[0].kind == "directory"


def test_final_select_failure_moves_to_the_next_candidate() -> None:
    card = visa_card()
    card.answers[SELECT_PPSE] = ok(
        ppse(ppse_entry(VISA_ELECTRON, b"ELECTRON", 1), ppse_entry(VISA, b"VISA", 2))
    )
    card.answers[select(VISA_ELECTRON)] = status(0x6283)  # application blocked
    data = feed(read_flow(config()), card)
    assert card.described[:3] == [SELECT_PPSE, select(VISA_ELECTRON), select(VISA)]
    assert data.aid == VISA


def test_df_name_mismatch_moves_to_the_next_candidate() -> None:
    card = visa_card()
    card.answers[SELECT_PPSE] = ok(
        ppse(ppse_entry(VISA_ELECTRON, b"ELECTRON", 1), ppse_entry(VISA, b"VISA", 2))
    )
    card.answers[select(VISA_ELECTRON)] = ok(fci(MASTERCARD))  # answers with another DF name
    data = feed(read_flow(config()), card)
    assert data.aid == VISA
    assert [r.kind for r in data.responses][:3] == ["directory", "select", "fci"]


def test_gpo_6985_tries_the_next_candidate() -> None:
    gpo_answers = iter([status(0x6985), ok(tlv("80", bytes.fromhex("1980") + MC_AFL))])
    card = mc_card()
    card.answers[SELECT_PPSE] = ok(
        ppse(ppse_entry(VISA, b"VISA", 1), ppse_entry(MASTERCARD, b"MASTERCARD", 2))
    )
    card.answers[select(VISA)] = ok(fci(VISA))
    card.answers["GET PROCESSING OPTIONS"] = lambda command: next(gpo_answers)
    data = feed(read_flow(config()), card)
    assert card.described[:5] == [
        SELECT_PPSE,
        select(VISA),
        "GET PROCESSING OPTIONS",
        select(MASTERCARD),
        "GET PROCESSING OPTIONS",
    ]
    assert data.aid == MASTERCARD


def test_no_application_at_all_is_a_status_word_error() -> None:
    card = ScriptedCard({SELECT_PPSE: status(0x6A82)})
    with pytest.raises(StatusWordError) as caught:
        feed(read_flow(config()), card)
    error = caught.value
    assert error.sw == 0x6A82
    assert f"{len(DEFAULT_AIDS)} tried" in str(error)
    assert "[[aid]]" in str(error)  # the remedy says what to change
    assert len(card.sent) == 1 + len(DEFAULT_AIDS)


def test_ppse_error_other_than_6a82_names_the_command() -> None:
    card = ScriptedCard({SELECT_PPSE: status(0x6A81)})
    with pytest.raises(StatusWordError) as caught:
        feed(read_flow(config()), card)
    assert caught.value.sw == 0x6A81
    assert caught.value.command == SELECT_PPSE
    assert SELECT_PPSE in str(caught.value)


def test_gpo_error_names_the_command() -> None:
    card = visa_card()
    card.answers["GET PROCESSING OPTIONS"] = status(0x6700)
    with pytest.raises(StatusWordError) as caught:
        feed(read_flow(config()), card)
    assert caught.value.command == "GET PROCESSING OPTIONS"


def test_read_record_error_names_sfi_and_record() -> None:
    card = mc_card()
    card.answers["READ RECORD SFI 3 record 2"] = status(0x6A83)
    with pytest.raises(StatusWordError) as caught:
        feed(read_flow(config()), card)
    assert caught.value.command == "READ RECORD SFI 3 record 2"
    assert "6A83" in str(caught.value)


# --- GPO answer formats ---------------------------------------------------------------------


def test_format_1_gpo_and_afl_walk() -> None:
    card = mc_card()
    data = feed(read_flow(config()), card)
    assert card.described[3:] == [
        "READ RECORD SFI 1 record 1",
        "READ RECORD SFI 2 record 1",
        "READ RECORD SFI 2 record 2",
        "READ RECORD SFI 3 record 1",
        "READ RECORD SFI 3 record 2",
        "READ RECORD SFI 4 record 1",
        "READ RECORD SFI 4 record 2",
    ]
    assert data.aip == bytes.fromhex("1980")
    assert [(r.sfi, r.record, r.oda) for r in data.records] == [
        (1, 1, False),
        (2, 1, True),
        (2, 2, False),
        (3, 1, True),
        (3, 2, False),
        (4, 1, False),
        (4, 2, False),
    ]
    assert data.pan == MC_PAN and data.expiry == "2027-11" and data.brand == "mastercard"
    assert data.issuer_country == 56
    assert data.cvm_list is not None and len(data.cvm_list.rules) == 3
    assert data.cryptogram is None  # no transaction asked, none in the GPO answer


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (tlv("80", bytes.fromhex("1980080101")), "format 1 (80) must hold"),
        (tlv("77", [("94", bytes.fromhex("08010100"))]), "has no AIP (82)"),
        (tlv("77", [("82", b"\x19"), ("94", bytes.fromhex("08010100"))]), "AIP (82) must be 2"),
        (tlv("70", [("82", bytes.fromhex("1980"))]), "must be one 80 or 77 template, found 70"),
        (b"", "found nothing"),
        (tlv("80", bytes.fromhex("1980") + bytes.fromhex("00010100")), "SFI 0 is outside"),
    ],
)
def test_malformed_gpo_answers(answer: bytes, message: str) -> None:
    card = mc_card(gpo=ok(answer))
    with pytest.raises(RemoteProtocolError, match=re.escape(message)) as caught:
        feed(read_flow(config()), card)
    assert "the answer to GET PROCESSING OPTIONS" in str(caught.value)


def test_format_2_without_afl_reads_no_records() -> None:
    card = visa_card()
    card.answers["GET PROCESSING OPTIONS"] = ok(
        tlv(
            "77", [("82", bytes.fromhex("0080")), ("57", bytes.fromhex("4761739001010010D2512201"))]
        )
    )
    data = feed(read_flow(config()), card)
    assert data.records == () and len(card.sent) == 3
    assert data.pan == PAN  # from Track 2
    assert data.expiry == "2025-12"
    assert data.service_code == "201"


# --- records --------------------------------------------------------------------------------


def test_records_with_padding_and_long_form_lengths() -> None:
    # 70 81 10: a long-form length where the short form would do (cards do this).
    record = bytes.fromhex("708110" + "5A084761739001010010" + "5F2403221231")
    card = visa_card()
    card.answers["READ RECORD SFI 3 record 1"] = ok(record + bytes(6))  # 00 padding after
    data = feed(read_flow(config()), card)
    assert data.pan == PAN and data.expiry == "2022-12"
    padded_before = bytes(3) + record
    card = visa_card()
    card.answers["READ RECORD SFI 3 record 1"] = ok(padded_before)
    assert feed(read_flow(config()), card).pan == PAN


def test_record_with_82_length_and_ff_padding() -> None:
    inner = tlv("5A", bytes.fromhex(PAN)) + tlv("9F4A", b"\x82")
    record = bytes.fromhex("7082") + len(inner).to_bytes(2, "big") + inner + b"\xff\xff"
    card = visa_card()
    card.answers["READ RECORD SFI 3 record 1"] = ok(record)
    assert feed(read_flow(config()), card).pan == PAN


@pytest.mark.parametrize(
    "record",
    [
        tlv("5A", bytes.fromhex(PAN)),  # not wrapped in 70
        tlv("70", [("5A", bytes.fromhex(PAN))]) * 2,  # two templates
        b"",  # empty record
        tlv("77", [("5A", bytes.fromhex(PAN))]),
    ],
)
def test_a_record_that_is_not_a_70_template_names_sfi_and_record(record: bytes) -> None:
    card = mc_card()
    card.answers["READ RECORD SFI 2 record 2"] = ok(record)
    with pytest.raises(RemoteProtocolError, match="READ RECORD SFI 2 record 2") as caught:
        feed(read_flow(config()), card)
    assert "not a 70 template" in str(caught.value)
    assert PAN not in str(caught.value)


def test_malformed_tlv_in_a_record_names_offset_tag_and_command() -> None:
    card = mc_card()
    card.answers["READ RECORD SFI 2 record 1"] = ok(bytes.fromhex("7010 5A08 4761739001010010"))
    with pytest.raises(TlvError) as caught:
        feed(read_flow(config()), card)
    assert caught.value.offset == 0 and caught.value.tag == "70"
    assert "READ RECORD SFI 2 record 1" in str(caught.value)


def test_malformed_pdol_is_a_tlv_error_naming_the_pdol() -> None:
    card = visa_card()
    card.answers[select(VISA)] = ok(fci(VISA, pdol=bytes.fromhex("9F6604 9F02")))
    with pytest.raises(TlvError, match="PDOL") as caught:
        feed(read_flow(config()), card)
    assert caught.value.offset == 3 and caught.value.tag == "9F02"


# --- GENERATE AC ----------------------------------------------------------------------------


def test_generate_ac_format_1() -> None:
    card = mc_card()
    iad = bytes.fromhex("0110A00003220000000000000000000000FF")
    card.answers["GENERATE AC"] = ok(
        tlv("80", b"\x80" + bytes.fromhex("0012") + bytes.fromhex("1122334455667788") + iad)
    )
    data = feed(read_flow(config(), transaction=True), card)
    genac = card.sent[-1]
    assert (genac.cla, genac.ins, genac.p1, genac.p2) == (0x80, 0xAE, 0x80, 0x00)
    assert len(genac.data) == 66  # CDOL1 total length
    assert genac.data[:6] == bytes.fromhex("000000000100")  # 9F02 amount
    assert genac.data[29:30] == bytes.fromhex("22")  # 9F35 terminal type
    assert genac.data[30:32] == bytes(2)  # 9F45 Data Authentication Code: zero-filled
    assert genac.data[40:43] == bytes.fromhex("3F0000")  # 9F34 CVM results
    assert genac.data[43:46] == bytes.fromhex("143005")  # 9F21 time
    assert genac.data[46:] == bytes(20)  # 9F7C: no value -> zeros
    assert data.cryptogram is not None
    assert data.cryptogram_type == "ARQC" and data.atc == 0x12
    assert data.cryptogram.cryptogram == bytes.fromhex("1122334455667788")
    assert data.cryptogram.iad == iad and data.cryptogram.source == "GENERATE AC"
    assert data.apdus == 11


def test_pdol_and_cdol1_carry_the_same_unpredictable_number_and_date() -> None:
    card = visa_card()
    card.answers["GET PROCESSING OPTIONS"] = ok(
        tlv("80", bytes.fromhex("1980") + bytes.fromhex("18010100"))
    )
    card.answers["READ RECORD SFI 3 record 1"] = ok(
        tlv("70", [("5A", bytes.fromhex(PAN)), ("8C", bytes.fromhex("9A039F3704"))])
    )
    card.answers["GENERATE AC"] = ok(tlv("80", bytes.fromhex("40000102030405060708090A")[:11]))
    data = feed(read_flow(config(), transaction=True), card)
    pdol_data = card.sent[2].data[2:]
    assert card.sent[-1].data == pdol_data[-8:-5] + pdol_data[-4:]
    assert data.cryptogram_type == "TC"


def test_generate_ac_format_2_and_tc_request() -> None:
    card = mc_card()
    card.answers["GENERATE AC"] = ok(
        tlv(
            "77",
            [
                ("9F27", b"\x40"),
                ("9F36", bytes.fromhex("0102")),
                ("9F26", bytes.fromhex("A1A2A3A4A5A6A7A8")),
                ("9F10", bytes.fromhex("0110A000")),
            ],
        )
    )
    data = feed(read_flow(config(cryptogram="tc"), transaction=True), card)
    assert card.sent[-1].p1 == 0x40
    assert data.cryptogram_type == "TC" and data.atc == 0x0102
    assert data.to_json()["cryptogram"] == "A1A2A3A4A5A6A7A8"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (tlv("80", bytes.fromhex("80001211")), "11 bytes or more"),
        (tlv("77", [("9F27", b"\x80"), ("9F36", b"\x00\x01")]), "no Application Cryptogram"),
        (tlv("77", [("9F26", bytes(8)), ("9F36", b"\x00\x01")]), "no CID (9F27)"),
        (tlv("77", [("9F26", bytes(4)), ("9F27", b"\x80"), ("9F36", b"\x00\x01")]), "8 bytes"),
        (tlv("77", [("9F26", bytes(8)), ("9F27", b"\x80"), ("9F36", b"\x01")]), "ATC (9F36)"),
    ],
)
def test_malformed_generate_ac_answers(answer: bytes, message: str) -> None:
    card = mc_card()
    card.answers["GENERATE AC"] = ok(answer)
    with pytest.raises(RemoteProtocolError, match=re.escape(message)) as caught:
        feed(read_flow(config(), transaction=True), card)
    assert "GENERATE AC" in str(caught.value)


def test_generate_ac_status_word_error() -> None:
    card = mc_card()
    card.answers["GENERATE AC"] = status(0x6985)
    with pytest.raises(StatusWordError) as caught:
        feed(read_flow(config(), transaction=True), card)
    assert caught.value.command == "GENERATE AC"


def test_transaction_without_cdol1_is_a_clear_error() -> None:
    card = visa_card()
    card.answers["GET PROCESSING OPTIONS"] = ok(
        tlv("80", bytes.fromhex("1980") + bytes.fromhex("18010100"))
    )
    with pytest.raises(RemoteProtocolError, match="no CDOL1"):
        feed(read_flow(config(), transaction=True), card)


def test_a_qvsdc_cryptogram_skips_generate_ac() -> None:
    card = visa_card()
    data = feed(read_flow(config(), transaction=True), card)
    assert "GENERATE AC" not in card.described
    assert data.cryptogram_type == "ARQC"


# --- misuse ---------------------------------------------------------------------------------


def test_sending_something_other_than_a_response_is_a_local_error() -> None:
    flow = read_flow(config())
    assert next(flow).data == PPSE
    with pytest.raises(LocalProtocolError, match="must be sent a Response"):
        flow.send(b"\x90\x00")  # type: ignore[arg-type]


def test_the_flow_yields_commands() -> None:
    flow = read_flow(config())
    first = next(flow)
    assert isinstance(first, Command)
    second = flow.send(Response(b"", 0x6A, 0x82))
    assert second.describe() == select(VISA)
    flow.close()


def test_every_candidate_refusing_gpo_keeps_the_gpo_remedy() -> None:
    card = visa_card()
    card.answers["GET PROCESSING OPTIONS"] = status(0x6985)
    with pytest.raises(StatusWordError) as caught:
        feed(read_flow(config()), card)
    assert caught.value.command == "GET PROCESSING OPTIONS"
    assert "1 tried" in str(caught.value)
    assert "[[aid]]" not in str(caught.value)
