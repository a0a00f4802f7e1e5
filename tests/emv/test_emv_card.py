"""CardData: decoded fields, JSON shape, and masking of PAN, Track 2 and name."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from emv_cards import NAME, PAN, config, feed, mc_card, ok, tlv, visa_card

from contactless.emv.card import CardData, ResponseData, card_data_from
from contactless.emv.flow import read_flow
from contactless.errors import RemoteProtocolError
from contactless.masking import NAME_MASK
from contactless.tlv import decode

NAME_TEXT = NAME.decode()


@pytest.fixture
def visa() -> CardData:
    return feed(read_flow(config()), visa_card()).with_reader("sim:visa", bytes.fromhex("3B8F80"))


def _everything(data: CardData, **kwargs: bool) -> str:
    return json.dumps(data.to_json(**kwargs))


def test_json_has_the_promised_keys(visa: CardData) -> None:
    out = visa.to_json()
    for key in ("reader", "atr", "aid", "label", "brand", "pan", "pan_last4", "expiry", "apdus"):
        assert key in out
    assert out["reader"] == "sim:visa" and out["atr"] == "3B8F80"
    assert out["aid"] == "A0000000031010" and out["brand"] == "visa"
    assert out["pan"] == "476173******0010" and out["pan_last4"] == "0010"
    assert out["expiry"] == "2022-12" and out["apdus"] == 4
    assert out["issuer_country"] == "USA" and out["currency"] == "USD"
    assert out["cryptogram_type"] == "ARQC" and out["atc"] == 0x27
    json.dumps(out)  # JSON-ready as it is


def test_json_without_a_cryptogram_has_no_cryptogram_keys() -> None:
    out = feed(read_flow(config()), mc_card()).to_json()
    assert "cryptogram_type" not in out and "atc" not in out
    assert out["cvm_list"]["rules"][0]["code"] == "4203"


def test_the_full_pan_and_name_are_nowhere_by_default(visa: CardData) -> None:
    for text in (
        _everything(visa),
        _everything(visa, include_tlvs=True),
        str(visa),
        repr(visa),
        repr(visa.responses),
        repr(visa.track2),
        "\n".join(f"{k} {v}" for k, v in visa.summary()),
    ):
        assert PAN not in text
        assert NAME_TEXT not in text
        assert "D2212201" + "1143804400000" not in text  # Track 2 discretionary data


def test_show_pan_opts_in(visa: CardData) -> None:
    text = _everything(visa, show_pan=True, include_tlvs=True)
    assert PAN in text and NAME_TEXT in text
    summary = dict(visa.summary(show_pan=True))
    assert summary["PAN"] == PAN and summary["Cardholder"] == NAME_TEXT


def test_raw_tlvs_are_kept_and_masked_in_json(visa: CardData) -> None:
    responses = visa.to_json(include_tlvs=True)["responses"]
    assert [r["kind"] for r in responses] == ["directory", "fci", "gpo", "record"]
    record = responses[-1]["tlvs"][0]["children"]
    pan_node = next(node for node in record if node["tag"] == "5A")
    assert pan_node == {"tag": "5A", "value": "476173******0010", "masked": True}
    assert visa.find("5A") == bytes.fromhex(PAN)  # for tools: the raw value is there


def _record(*pairs: tuple[str, bytes]) -> ResponseData:
    return ResponseData("READ RECORD SFI 1 record 1", "record", decode(tlv("70", list(pairs))))


def test_card_data_from_decodes_formats() -> None:
    data = card_data_from(
        bytes.fromhex("A0000000041010"),
        [
            _record(
                ("5A", bytes.fromhex("5413330089010434FF")),  # cn with F padding
                ("5F24", bytes.fromhex("491231")),  # 49 -> 2049
                ("5F30", bytes.fromhex("0101")),
                ("9F12", "CRÉDIT".encode("latin-1")),
                ("9F11", b"\x01"),  # ISO 8859-1
                ("5F2D", b"deen"),
            )
        ],
        aip=None,
    )
    assert data.pan == "5413330089010434"
    assert data.expiry == "2049-12"
    assert data.service_code == "101"
    assert data.preferred_name == "CRÉDIT"
    assert data.language_preference == ("de", "en")
    assert data.brand == "mastercard"


@pytest.mark.parametrize(
    ("pair", "tag"),
    [
        (("5F24", bytes.fromhex("22133A")), "5F24"),
        (("5A", bytes.fromhex("47617390A1")), "5A"),
        (("57", bytes.fromhex("4761739001010010")), "57"),
        (("8E", bytes.fromhex("0000")), "8E"),
    ],
)
def test_malformed_values_name_their_tag(pair: tuple[str, bytes], tag: str) -> None:
    with pytest.raises(RemoteProtocolError, match=tag):
        card_data_from(bytes.fromhex("A0000000031010"), [_record(pair)], aip=None)


def test_an_unknown_rid_has_no_brand() -> None:
    data = card_data_from(bytes.fromhex("F000000001"), [], aip=None)
    assert data.brand is None and data.pan is None and data.pan_last4 is None
    assert data.to_json()["pan"] is None


def test_gpo_cryptogram_survives_a_round_trip_to_json() -> None:
    card = visa_card()
    card.answers["READ RECORD SFI 3 record 1"] = ok(tlv("70", [("9F08", b"\x00\x96")]))
    out = feed(read_flow(config()), card).to_json()
    assert out["cryptogram_source"] == "GET PROCESSING OPTIONS"
    assert out["pan"] == "476173******0010"  # from Track 2 in the GPO answer


def test_every_sensitive_tag_of_the_dictionary_is_masked_in_raw_tlvs() -> None:
    card = visa_card()
    # 58 (Track 3 Equivalent Data) is sensitive in the dictionary, not in the masking table.
    card.answers["READ RECORD SFI 3 record 1"] = ok(
        tlv("70", [("58", bytes.fromhex("0123456789")), ("9F08", b"\x00\x96")])
    )
    data = feed(read_flow(config()), card)
    nodes = data.to_json(include_tlvs=True)["responses"][-1]["tlvs"][0]["children"]
    assert nodes[0] == {"tag": "58", "value": "**********", "masked": True}
    assert nodes[1] == {"tag": "9F08", "value": "0096"}
    shown = data.to_json(show_pan=True, include_tlvs=True)["responses"][-1]["tlvs"][0]
    assert shown["children"][0]["value"] == "0123456789"


# --- expired / not yet effective at the transaction date (EMV Book 3 10.5.2) ------------------


def _dated(*pairs: tuple[str, bytes], on: date | datetime | None) -> CardData:
    return card_data_from(
        bytes.fromhex("A0000000031010"), [_record(*pairs)], aip=None, transaction_date=on
    )


EXPIRES = ("5F24", bytes.fromhex("181231"))  # valid through 31 December 2018
EFFECTIVE = ("5F25", bytes.fromhex("150101"))


@pytest.mark.parametrize(
    ("on", "expired"),
    [
        (date(2018, 12, 31), False),  # the last valid day
        (date(2019, 1, 1), True),
        (date(2018, 1, 1), False),
        (datetime(2019, 1, 1, 0, 0, 1), True),  # a terminal clock reading: its day counts
    ],
)
def test_expired_compares_the_expiry_date_with_the_transaction_date(
    on: date, expired: bool
) -> None:
    data = _dated(EXPIRES, EFFECTIVE, on=on)
    assert data.expired is expired
    out = data.to_json()
    assert out["expired"] is expired and out["not_yet_effective"] is False
    assert out["transaction_date"] == (on.date() if isinstance(on, datetime) else on).isoformat()
    assert dict(data.summary())["Expiry"] == ("2018-12 (expired)" if expired else "2018-12")


def test_a_track2_only_expiry_is_valid_through_the_end_of_its_month() -> None:
    track2 = ("57", bytes.fromhex("4761739001010010D24022011143804400000F"))  # YYMM 2402
    assert not _dated(track2, on=date(2024, 2, 29)).expired  # leap day: still valid
    assert _dated(track2, on=date(2024, 3, 1)).expired
    assert _dated(track2, on=date(2024, 3, 1)).expiry == "2024-02"


@pytest.mark.parametrize(("on", "early"), [(date(2014, 12, 31), True), (date(2015, 1, 1), False)])
def test_not_yet_effective_before_the_effective_date(on: date, early: bool) -> None:
    data = _dated(EXPIRES, EFFECTIVE, on=on)
    assert data.not_yet_effective is early and data.expired is False
    assert data.to_json()["not_yet_effective"] is early
    effective = dict(data.summary())["Effective"]
    assert effective == ("2015-01-01 (not yet effective)" if early else "2015-01-01")
    assert "(expired)" not in "\n".join(value for _, value in data.summary())


def test_without_a_transaction_date_nothing_is_flagged() -> None:
    data = _dated(EXPIRES, EFFECTIVE, on=None)
    assert data.expired is False and data.not_yet_effective is False
    assert data.to_json()["transaction_date"] is None
    assert dict(data.summary())["Expiry"] == "2018-12"


# --- the cardholder name: a fixed-length placeholder ----------------------------------------


@pytest.mark.parametrize("name", [b"LI/A", b"CARDHOLDER/VISA", b"REDACTED/CARDHOLDER"])
def test_a_masked_name_does_not_tell_its_length(name: bytes) -> None:
    data = card_data_from(bytes.fromhex("A0000000031010"), [_record(("5F20", name))], aip=None)
    assert data.to_json()["cardholder_name"] == NAME_MASK
    assert dict(data.summary())["Cardholder"] == NAME_MASK
    nodes = data.to_json(include_tlvs=True)["responses"][0]["tlvs"][0]["children"]
    assert nodes == [{"tag": "5F20", "value": NAME_MASK, "masked": True}]
    assert data.to_json(show_pan=True)["cardholder_name"] == name.decode()
