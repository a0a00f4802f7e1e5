"""Value formats (n, cn, text, dates, amounts), ISO 3166/4217 tables and ``describe``."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contactless.errors import ContactlessError, LocalProtocolError, RemoteProtocolError
from contactless.tlv import format as fmt
from contactless.tlv import tags
from contactless.tlv.format import (
    amount,
    country,
    country_alpha,
    country_alpha2,
    currency,
    currency_alpha,
    currency_exponent,
    decode_cn,
    decode_date,
    decode_n,
    decode_text,
    decode_time,
    describe,
)

VISA_AID = "A0000000031010"
MASTERCARD_AID = "A0000000041010"
PAN = "4761739001010010"

# --- n and cn ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_value", "digits"),
    [("000000000100", "000000000100"), ("0978", "0978"), ("12", "12"), ("", "")],
)
def test_decode_n(hex_value: str, digits: str) -> None:
    assert decode_n(bytes.fromhex(hex_value)) == digits


@pytest.mark.parametrize(
    ("hex_value", "offset", "nibble"),
    [("0A", 0, "A"), ("00001F", 2, "F"), ("1234E6", 2, "E"), ("B0", 0, "B")],
)
def test_decode_n_names_the_byte_offset(hex_value: str, offset: int, nibble: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        decode_n(bytes.fromhex(hex_value), what="Amount, Authorised (tag 9F02)")
    assert str(caught.value) == (
        f"Amount, Authorised (tag 9F02): byte {offset} has a non-BCD nibble ({nibble})"
    )


@pytest.mark.parametrize(
    ("hex_value", "digits"),
    [
        ("4761739001010010", "4761739001010010"),
        ("374245455400126F", "374245455400126"),
        ("6212345678901234567F", "6212345678901234567"),
        ("12FFFF", "12"),
        ("FF", ""),
    ],
)
def test_decode_cn_drops_f_padding(hex_value: str, digits: str) -> None:
    assert decode_cn(bytes.fromhex(hex_value)) == digits


@pytest.mark.parametrize(
    ("hex_value", "fragment"),
    [
        ("47617390A1010010", "byte 4 has a non-BCD nibble (A)"),
        ("4761F39001010010", "byte 2 has a padding F before the end"),
        ("4761739001010D10", "byte 6 has a non-BCD nibble (D)"),
    ],
)
def test_decode_cn_errors_name_the_byte_not_the_digits(hex_value: str, fragment: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        decode_cn(bytes.fromhex(hex_value), what="Application PAN (tag 5A)")
    assert fragment in str(caught.value)
    assert "4761" not in str(caught.value)


# --- text -------------------------------------------------------------------------------------


def test_decode_text_ascii() -> None:
    assert decode_text(b"VISA CREDIT") == "VISA CREDIT"
    assert decode_text(b"") == ""


def test_decode_text_gbk_chinese_cardholder_name() -> None:
    assert decode_text("张伟".encode("gbk")) == "张伟"
    assert decode_text("ZHANG/WEI 张伟".encode("gbk")) == "ZHANG/WEI 张伟"
    assert decode_text("中国银联".encode("gbk")) == "中国银联"


def test_decode_text_declared_charset_wins_over_gbk() -> None:
    latin = "MÜLLER/JÖRG".encode("iso8859-1")
    assert decode_text(latin, encoding="iso8859-1") == "MÜLLER/JÖRG"


def test_decode_text_escapes_what_no_charset_explains() -> None:
    # 0x80 and 0xFF are not valid GBK lead bytes here; ASCII around them survives.
    assert decode_text(b"AB\x80\xffCD") == "AB\\x80\\xFFCD"
    assert decode_text(b"\xff") == "\\xFF"
    # A backslash is escaped too, so the escaped form is unambiguous.
    assert decode_text(b"A\\B\xff") == "A\\x5CB\\xFF"


def test_decode_text_never_passes_control_characters() -> None:
    # An ESC sequence from a card must not reach the user's terminal.
    assert decode_text(b"\x1b[2JOWNED") == "\\x1B[2JOWNED"
    assert decode_text(b"NAME\x00\x00") == "NAME\\x00\\x00"
    assert decode_text(b"A\nB", encoding="ascii") == "A\\x0AB"


def test_decode_text_unknown_encoding_is_the_callers_error() -> None:
    with pytest.raises(LocalProtocolError, match="no-such-codec"):
        decode_text(b"\xc4", encoding="no-such-codec")


@given(st.binary(max_size=64))
def test_decode_text_always_returns_one_safe_line(data: bytes) -> None:
    text = decode_text(data)
    assert "\n" not in text and "\x1b" not in text and "\x00" not in text
    assert fmt._is_safe_text(text)


# --- dates, times ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_value", "date"),
    [
        ("251231", datetime.date(2025, 12, 31)),
        ("000101", datetime.date(2000, 1, 1)),
        ("491231", datetime.date(2049, 12, 31)),  # 00-49 -> 20YY
        ("500101", datetime.date(1950, 1, 1)),  # 50-99 -> 19YY
        ("991231", datetime.date(1999, 12, 31)),
        ("240229", datetime.date(2024, 2, 29)),
    ],
)
def test_decode_date_emv_century_rule(hex_value: str, date: datetime.date) -> None:
    assert decode_date(bytes.fromhex(hex_value)) == date


@pytest.mark.parametrize(
    ("hex_value", "fragment"),
    [
        ("2512", "must be 3 bytes"),
        ("25123101", "must be 3 bytes"),
        ("25A231", "byte 1 has a non-BCD nibble (A)"),
        ("251331", "251331 (YYMMDD) is not a valid date"),
        ("230229", "230229 (YYMMDD) is not a valid date"),
        ("250100", "not a valid date"),
    ],
)
def test_decode_date_errors(hex_value: str, fragment: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        decode_date(bytes.fromhex(hex_value), what="Application Expiration Date (tag 5F24)")
    assert fragment in str(caught.value)
    assert "tag 5F24" in str(caught.value)


def test_decode_time() -> None:
    assert decode_time(bytes.fromhex("235959")) == datetime.time(23, 59, 59)
    with pytest.raises(RemoteProtocolError, match="not a valid time"):
        decode_time(bytes.fromhex("246000"))


# --- amounts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_value", "code", "expected"),
    [
        ("000000000100", None, "1.00"),
        ("000000000100", 978, "1.00"),
        ("000000000100", "EUR", "1.00"),
        ("000000000100", b"\x09\x78", "1.00"),
        ("000000000100", "0392", "100"),  # JPY: no minor unit
        ("000000001234", 48, "1.234"),  # BHD: three decimals
        ("000000000000", 840, "0.00"),
        ("999999999999", 840, "9999999999.99"),
        ("000000012345", 990, "1.2345"),  # CLF: four decimals
    ],
)
def test_amount_uses_the_currency_exponent(
    hex_value: str, code: int | str | bytes | None, expected: str
) -> None:
    value = amount(bytes.fromhex(hex_value), code)
    assert value == Decimal(expected)
    assert str(value) == expected


def test_amount_errors() -> None:
    with pytest.raises(RemoteProtocolError, match="tag 9F02"):
        amount(bytes.fromhex("00000000010A"), what="Amount, Authorised (tag 9F02)")
    with pytest.raises(RemoteProtocolError, match="empty"):
        amount(b"")
    with pytest.raises(LocalProtocolError, match="unknown ISO 4217 currency code 1"):
        amount(bytes.fromhex("000000000100"), 1)


# --- ISO 3166 and ISO 4217 --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "alpha3", "alpha2"),
    [
        (56, "BEL", "BE"),
        ("0056", "BEL", "BE"),
        (b"\x00\x56", "BEL", "BE"),
        (156, "CHN", "CN"),
        (840, "USA", "US"),
        (826, "GBR", "GB"),
        (250, "FRA", "FR"),
        (276, "DEU", "DE"),
        (392, "JPN", "JP"),
        (158, "TWN", "TW"),
        ("BE", "BEL", "BE"),
        ("chn", "CHN", "CN"),
    ],
)
def test_countries(code: int | str | bytes, alpha3: str, alpha2: str) -> None:
    assert country_alpha(code) == alpha3
    assert country_alpha2(code) == alpha2


@pytest.mark.parametrize("code", [0, 999, "XX", "", "12a", "€", True, 3.5])
def test_unknown_country_is_none(code: object) -> None:
    assert country_alpha(code) is None  # type: ignore[arg-type]
    assert country(code) is None  # type: ignore[arg-type]


def test_country_from_non_bcd_bytes_is_a_remote_error() -> None:
    with pytest.raises(RemoteProtocolError):
        country_alpha(b"\x0a\x56")


@pytest.mark.parametrize(
    ("code", "alpha", "exponent"),
    [
        (978, "EUR", 2),
        ("0840", "USD", 2),
        (b"\x01\x56", "CNY", 2),
        (392, "JPY", 0),
        (410, "KRW", 0),
        (48, "BHD", 3),
        (414, "KWD", 3),
        (990, "CLF", 4),
        (532, "XCG", 2),  # Caribbean guilder replaced ANG under the same number in 2025
        (924, "ZWG", 2),
        (959, "XAU", 0),  # gold: ISO says N.A.
        (999, "XXX", 0),
        ("usd", "USD", 2),
    ],
)
def test_currencies(code: int | str | bytes, alpha: str, exponent: int) -> None:
    assert currency_alpha(code) == alpha
    assert currency_exponent(code) == exponent


def test_withdrawn_currency_still_known_and_marked() -> None:
    kuna = currency(191)
    assert kuna is not None and kuna.alpha == "HRK" and kuna.withdrawn == "2023-01"
    euro = currency("EUR")
    assert euro is not None and euro.withdrawn is None and euro.numeric == 978


def test_unknown_currency() -> None:
    assert currency_alpha(1) is None
    assert currency_alpha("ABC") is None
    with pytest.raises(LocalProtocolError):
        currency_exponent(1)


def test_tables_are_complete_and_consistent() -> None:
    countries, by_alpha = fmt._country_table()
    assert len(countries) == 249  # every current ISO 3166-1 code
    assert len(by_alpha) == 2 * 249
    currencies, _ = fmt._currency_table()
    current = [c for c in currencies.values() if c.withdrawn is None]
    assert len(current) >= 179
    assert all(len(c.alpha) == 3 and c.alpha.isupper() for c in currencies.values())
    assert all(0 < c.numeric < 1000 for c in currencies.values())


ISO_CODES = Path("/usr/share/iso-codes/json")


@pytest.mark.skipif(
    not ISO_CODES.is_dir() and not os.environ.get("CI"),
    reason="Debian iso-codes not installed (tools/test.sh installs it as root; required in CI)",
)
def test_countries_match_debian_iso_codes() -> None:
    reference = json.loads((ISO_CODES / "iso_3166-1.json").read_text(encoding="utf-8"))["3166-1"]
    assert {(int(c["numeric"]), c["alpha_2"], c["alpha_3"]) for c in reference} == {
        (c.numeric, c.alpha2, c.alpha3) for c in fmt._country_table()[0].values()
    }


@pytest.mark.skipif(
    not ISO_CODES.is_dir() and not os.environ.get("CI"),
    reason="Debian iso-codes not installed (tools/test.sh installs it as root; required in CI)",
)
def test_currencies_cover_debian_iso_codes() -> None:
    reference = json.loads((ISO_CODES / "iso_4217.json").read_text(encoding="utf-8"))["4217"]
    for entry in reference:
        # ANG left in 2025 (XCG took its number 532); everything else must be there.
        if entry["alpha_3"] != "ANG":
            assert currency_alpha(int(entry["numeric"])) == entry["alpha_3"]


# --- describe ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "hex_value", "text"),
    [
        ("9F02", "000000000100", "1.00"),
        ("9F03", "000000000000", "0.00"),
        ("5F2A", "0978", "0978 (EUR)"),
        ("9F42", "0392", "0392 (JPY)"),
        ("9F1A", "0056", "0056 (BEL)"),
        ("5F28", "0156", "0156 (CHN)"),
        ("5F28", "0999", "0999 (unknown)"),
        ("5F24", "251231", "2025-12-31"),
        ("5F25", "991231", "1999-12-31"),
        ("9A", "240229", "2024-02-29"),
        ("9F21", "081500", "08:15:00"),
        ("9C", "00", "00 (goods and services)"),
        ("9C", "20", "20 (refund)"),
        ("5F30", "0201", "201"),
        ("9F36", "002A", "42"),
        ("9F17", "03", "3"),
        ("50", "5649534120435245444954", "VISA CREDIT"),
        ("5F34", "01", "01"),
        ("82", "5C00", "SDA supported, Cardholder verification supported, "
         "Terminal risk management to be performed, Issuer authentication supported"),
        ("82", "1980", "Cardholder verification supported, Terminal risk management to be "
         "performed, CDA supported, Contactless EMV mode supported"),
        ("95", "0000008000", "Transaction exceeds floor limit"),
        ("95", "0000000000", "no bits set"),
        ("9B", "E800", "Offline data authentication was performed, Cardholder verification was "
         "performed, Card risk management was performed, Terminal risk management was performed"),
        ("9F27", "80", "ARQC"),
        ("94", "0801010010010301", "SFI 1 records 1-1; SFI 2 records 1-3 (1 for ODA)"),
        ("8E", "000000000000000042031E031F03", "X=0 Y=0: Enciphered PIN verified online (if "
         "terminal supports the CVM), else next rule; Signature (paper) (if terminal supports "
         "the CVM); No CVM required (if terminal supports the CVM)"),
        ("9F66", "36000000", "EMV mode supported, EMV contact chip supported, Online PIN "
         "supported, Signature supported"),
        ("9F07", "FF00", "Valid for domestic cash transactions, Valid for international cash "
         "transactions, Valid for domestic goods, Valid for international goods, Valid for "
         "domestic services, Valid for international services, Valid at ATMs, Valid at "
         "terminals other than ATMs"),
    ],
)  # fmt: skip
def test_describe_examples(tag: str, hex_value: str, text: str) -> None:
    assert describe(tag, bytes.fromhex(hex_value)) == text


def test_describe_accepts_int_and_bytes_tags() -> None:
    assert describe(0x9F02, bytes.fromhex("000000000100")) == "1.00"
    assert describe(b"\x5f\x2a", bytes.fromhex("0840")) == "0840 (USD)"


def test_describe_gives_none_when_hex_is_best() -> None:
    assert describe("9F10", bytes.fromhex("06010A03A00000")) is None  # binary
    assert describe("70", bytes.fromhex("5A0112")) is None  # constructed
    assert describe("DF7F", b"\x01") is None  # not in the dictionary


def test_describe_masks_card_data_by_default() -> None:
    pan = bytes.fromhex(PAN)
    track2 = bytes.fromhex(PAN + "D22122011143804400000F")
    assert describe("5A", pan) == "476173******0010"
    assert describe("57", track2) == "476173******0010D2212201*************"
    assert describe("5F20", b"CARDHOLDER/VISA") == "********"  # fixed length: hides it
    assert describe("9F0B", "张伟".encode("gbk")) == "********"
    assert describe("9F20", bytes.fromhex("1143804400000F")) == "*" * 13


def test_describe_shows_card_data_when_asked() -> None:
    track2 = bytes.fromhex(PAN + "D22122011143804400000F")
    assert describe("5A", bytes.fromhex(PAN + "FF"), show_sensitive=True) == PAN
    assert describe("57", track2, show_sensitive=True) == PAN + "D22122011143804400000"
    assert describe("5F20", "张伟".encode("gbk"), show_sensitive=True) == "张伟"
    assert describe("5F20", b"CARDHOLDER/VISA", show_sensitive=True) == "CARDHOLDER/VISA"


def test_describe_follows_the_scheme_of_the_aid() -> None:
    # Visa (and unknown AIDs): 9F6C is the CTQ; Mastercard: mag-stripe AVN (binary).
    assert describe("9F6C", bytes.fromhex("8000"), aid=VISA_AID) == "Online PIN required"
    assert describe("9F6C", bytes.fromhex("8000")) == "Online PIN required"
    assert describe("9F6C", bytes.fromhex("0001"), aid=MASTERCARD_AID) is None
    # Mastercard: 9F66 is PUNATC(Track2), 2 bytes, not a TTQ.
    assert describe("9F66", bytes.fromhex("00FF"), aid=MASTERCARD_AID) is None
    # Mastercard 9F6B is Track 2 Data: masked, and decodable when asked.
    track2 = bytes.fromhex("5413330089099130D25122010123409172")
    assert describe("9F6B", track2, aid=MASTERCARD_AID) == "541333******9130D2512201**********"
    assert describe("9F6B", track2, aid=bytes.fromhex(MASTERCARD_AID), show_sensitive=True) == (
        "5413330089099130D25122010123409172"
    )


@pytest.mark.parametrize(
    ("tag", "hex_value", "fragment"),
    [
        ("82", "19", "Application Interchange Profile (tag 82) must be 2 bytes, got 1"),
        ("95", "00000080", "tag 95) must be 5 bytes, got 4"),
        ("5F24", "251331", "tag 5F24) 251331 (YYMMDD) is not a valid date"),
        ("9F02", "00000000010A", "Amount, Authorised (tag 9F02): byte 5 has a non-BCD nibble"),
        ("9F02", "0100", "tag 9F02) must be 6 bytes, got 2"),
        ("5F2A", "09", "tag 5F2A) must be 2 bytes, got 1"),
        ("94", "080101", "multiple of 4"),
        ("94", "00010100", "SFI 0"),
        ("8E", "0000", "tag 8E"),
        ("57", "4761739001010010", "no field separator"),
    ],
)
def test_describe_reports_invalid_values_instead_of_raising(
    tag: str, hex_value: str, fragment: str
) -> None:
    text = describe(tag, bytes.fromhex(hex_value), show_sensitive=True)
    assert text is not None and text.startswith("invalid: ")
    assert fragment in text


def test_describe_masks_even_invalid_card_data() -> None:
    assert describe("57", bytes.fromhex(PAN)) == "*" * 16
    assert describe("5A", bytes.fromhex("47617390A1010010")) == "*" * 16


# --- properties -------------------------------------------------------------------------------

DESCRIBED_TAGS = sorted(
    {info.tag for info in tags.all_tags() if not info.constructed} | set(fmt._DESCRIBERS)
)


@settings(max_examples=300)
@given(
    tag=st.sampled_from(DESCRIBED_TAGS),
    value=st.binary(max_size=40),
    aid=st.sampled_from([None, VISA_AID, MASTERCARD_AID, "A0000003330101", "A000000025"]),
    show_sensitive=st.booleans(),
)
def test_describe_never_raises_on_card_data(
    tag: str, value: bytes, aid: str | None, show_sensitive: bool
) -> None:
    text = describe(tag, value, aid=aid, show_sensitive=show_sensitive)
    assert text is None or isinstance(text, str)


@given(
    pan=st.text(alphabet="0123456789", min_size=13, max_size=19),
    tag=st.sampled_from(["5A", "57", "9F6B"]),
)
def test_describe_never_shows_a_pan_unless_asked(pan: str, tag: str) -> None:
    nibbles = pan + ("D2512201123" if tag != "5A" else "")
    if len(nibbles) % 2:
        nibbles += "F"
    text = describe(tag, bytes.fromhex(nibbles))
    assert text is not None and pan not in text


VALUE_DECODERS: list[Callable[[bytes], object]] = [
    decode_n,
    decode_cn,
    decode_text,
    decode_date,
    decode_time,
    amount,
]


@pytest.mark.parametrize("decoder", VALUE_DECODERS, ids=lambda d: d.__name__)
@given(data=st.binary(max_size=24))
def test_value_decoders_raise_only_contactless_errors(
    decoder: Callable[[bytes], object], data: bytes
) -> None:
    with contextlib.suppress(ContactlessError):
        decoder(data)


@given(code=st.integers() | st.text(max_size=5) | st.binary(max_size=3))
def test_code_lookups_raise_only_contactless_errors(code: int | str | bytes) -> None:
    with contextlib.suppress(ContactlessError):
        country_alpha(code)
        currency_alpha(code)
