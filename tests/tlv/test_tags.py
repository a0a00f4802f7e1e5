"""The tag dictionary: its data (tags.csv, schemes.csv) checked against the specifications,
scheme-aware lookups, and the loader's handling of malformed files."""

from __future__ import annotations

import csv
import io
from importlib import resources
from pathlib import Path

import pytest

from contactless.errors import ConfigError, ContactlessError, LocalProtocolError
from contactless.masking import SENSITIVE_TAGS
from contactless.tlv import parse_tag
from contactless.tlv.tags import (
    FORMATS,
    SOURCES,
    TagDictionary,
    TagInfo,
    all_tags,
    default_dictionary,
    lookup,
    name_of,
    scheme_for_aid,
    sensitive_tags,
)

VISA_AID = "A0000000031010"
MASTERCARD_AID = "A0000000041010"
AMEX_AID = "A00000002501"
UNIONPAY_AID = "A000000333010101"
JCB_AID = "A0000000651010"

TAGS_HEADER = "tag,scheme,name,format,source,templates,length,kind,sensitive\n"
SCHEMES_HEADER = "rid,scheme,owner\n"


def _shipped_rows() -> list[dict[str, str]]:
    """tags.csv read with the csv module alone, independently of the loader under test."""
    text = resources.files("contactless.tlv").joinpath("tags.csv").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


# --- the shipped data -------------------------------------------------------------------------


def test_dictionary_has_at_least_250_entries() -> None:
    assert len(all_tags()) >= 250
    assert len(_shipped_rows()) == len(all_tags())


def test_no_tag_is_listed_twice_for_the_same_scheme() -> None:
    pairs = [(row["tag"], row["scheme"]) for row in _shipped_rows()]
    duplicates = {pair for pair in pairs if pairs.count(pair) > 1}
    assert not duplicates


def test_every_row_is_a_well_formed_tag_whose_constructed_bit_matches_its_kind() -> None:
    for row in _shipped_rows():
        raw = parse_tag(row["tag"])
        assert raw.hex().upper() == row["tag"]
        constructed = bool(raw[0] & 0x20)
        assert constructed == (row["kind"] == "template"), row
        assert lookup(row["tag"]) is not None or row["scheme"], row


def test_every_row_uses_known_formats_sources_and_flags() -> None:
    for info in all_tags():
        assert info.format in FORMATS, info
        assert info.source in SOURCES, info
        assert info.name and info.name == info.name.strip(), info
        assert info.constructed == bool(parse_tag(info.tag)[0] & 0x20)


def test_every_template_a_row_refers_to_is_itself_in_the_dictionary() -> None:
    for info in all_tags():
        for template in info.templates:
            assert lookup(template) is not None, (info.tag, template)


def test_a_tag_with_several_scheme_meanings_always_has_a_generic_row() -> None:
    schemes_by_tag: dict[str, set[str | None]] = {}
    for info in all_tags():
        schemes_by_tag.setdefault(info.tag, set()).add(info.scheme)
    for tag, schemes in schemes_by_tag.items():
        if len(schemes - {None}) > 1:
            assert None in schemes, tag


# Every data element of EMV 4.4 Book 3 Annex A (and Book 1 Annex B) that has a tag.
BOOK3_ANNEX_A_TAGS = (
    "42 4F 50 57 5A 5F20 5F24 5F25 5F28 5F2A 5F2D 5F30 5F34 5F36 5F50 5F53 5F54 5F55 5F56 "
    "5F57 61 6F 70 71 72 73 77 80 81 82 83 84 86 87 88 89 8A 8C 8D 8E 8F 90 91 92 93 94 95 97 "
    "98 99 9A 9B 9C 9D 9F01 9F02 9F03 9F04 9F05 9F06 9F07 9F08 9F09 9F0A 9F0B 9F0C 9F0D 9F0E "
    "9F0F 9F10 9F11 9F12 9F13 9F14 9F15 9F16 9F17 9F18 9F19 9F1A 9F1B 9F1C 9F1D 9F1E 9F1F 9F20 "
    "9F21 9F22 9F23 9F24 9F25 9F26 9F27 9F2D 9F2E 9F2F 9F32 9F33 9F34 9F35 9F36 9F37 9F38 9F39 "
    "9F3A 9F3B 9F3C 9F3D 9F40 9F41 9F42 9F43 9F44 9F45 9F46 9F47 9F48 9F49 9F4A 9F4B 9F4C 9F4D "
    "9F4E 9F4F A5 BF0C"
)
BOOK3_ANNEX_A = BOOK3_ANNEX_A_TAGS.split()


@pytest.mark.parametrize("tag", BOOK3_ANNEX_A)
def test_every_book3_annex_a_tag_has_a_generic_entry(tag: str) -> None:
    info = lookup(tag)
    assert info is not None and info.scheme is None


def test_mastercard_kernel_data_objects_are_listed() -> None:
    # Book C-2 Annex A: DF8101-DF8102, DF8104-DF812D and the relay-resistance objects.
    expected = ["DF8101", "DF8102"] + [f"DF81{n:02X}" for n in range(0x04, 0x2E)]
    expected += [f"DF81{n:02X}" for n in range(0x30, 0x38)] + [f"DF830{n}" for n in range(1, 8)]
    for tag in expected:
        info = lookup(tag, MASTERCARD_AID)
        assert info is not None and info.scheme == "mastercard", tag


# Names, formats, sources, lengths and templates as EMV Book 3 Annex A / Books C-x give them.
@pytest.mark.parametrize(
    ("tag", "name"),
    [
        ("4F", "Application Identifier (AID) - card"),
        ("50", "Application Label"),
        ("57", "Track 2 Equivalent Data"),
        ("5A", "Application Primary Account Number (PAN)"),
        ("5F24", "Application Expiration Date"),
        ("5F2A", "Transaction Currency Code"),
        ("6F", "File Control Information (FCI) Template"),
        ("82", "Application Interchange Profile (AIP)"),
        ("84", "Dedicated File (DF) Name"),
        ("88", "Short File Identifier (SFI)"),
        ("8C", "Card Risk Management Data Object List 1 (CDOL1)"),
        ("8E", "Cardholder Verification Method (CVM) List"),
        ("94", "Application File Locator (AFL)"),
        ("95", "Terminal Verification Results (TVR)"),
        ("9F02", "Amount, Authorised (Numeric)"),
        ("9F10", "Issuer Application Data (IAD)"),
        ("9F26", "Application Cryptogram"),
        ("9F27", "Cryptogram Information Data"),
        ("9F36", "Application Transaction Counter (ATC)"),
        ("9F37", "Unpredictable Number"),
        ("9F38", "Processing Options Data Object List (PDOL)"),
        ("9F4B", "Signed Dynamic Application Data"),
        ("9F66", "Terminal Transaction Qualifiers (TTQ)"),
        ("9F6C", "Card Transaction Qualifiers (CTQ)"),
        ("A5", "File Control Information (FCI) Proprietary Template"),
        ("BF0C", "File Control Information (FCI) Issuer Discretionary Data"),
        ("DF8129", "Outcome Parameter Set"),
        ("DF8124", "Reader Contactless Transaction Limit (No On-device CVM)"),
    ],
)
def test_known_names(tag: str, name: str) -> None:
    assert name_of(tag) == name


@pytest.mark.parametrize(
    ("tag", "fmt", "source", "length", "templates"),
    [
        ("5A", "cn", "card", "1-10", ("70", "77")),
        ("50", "ans", "card", "1-16", ("61", "A5")),
        ("5F2D", "an", "card", "2-8", ("A5",)),
        ("5F55", "a", "card", "2", ("BF0C", "73")),
        ("9F02", "n", "terminal", "6", ()),
        ("9F1C", "an", "terminal", "8", ()),
        ("9F26", "b", "card", "8", ("77", "80")),
        ("9F2E", "b", "card", "1,3", ("70", "77")),
        ("9F4D", "b", "card", "2", ("BF0C", "73")),
        ("8A", "an", "issuer/terminal", "2", ()),
        ("71", "b", "issuer", "var", ()),
    ],
)
def test_known_formats_sources_lengths_and_templates(
    tag: str, fmt: str, source: str, length: str, templates: tuple[str, ...]
) -> None:
    info = lookup(tag)
    assert info is not None
    assert (info.format, info.source, info.length, info.templates) == (
        fmt,
        source,
        length,
        templates,
    )


# --- sensitivity --------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["5A", "57", "56", "9F6B", "9F1F", "9F20", "5F20", "9F0B"])
def test_pan_track_and_name_tags_are_sensitive(tag: str) -> None:
    info = lookup(tag)
    assert info is not None and info.sensitive


@pytest.mark.parametrize("tag", ["9F26", "82", "9F02", "5F24", "5F34", "50", "9F36", "9F25"])
def test_ordinary_tags_are_not_sensitive(tag: str) -> None:
    info = lookup(tag)
    assert info is not None and not info.sensitive


def test_sensitivity_follows_the_scheme_meaning() -> None:
    # 9F6B is Mastercard's Track 2 Data but Visa's Card CVM Limit.
    mastercard = lookup("9F6B", MASTERCARD_AID)
    visa = lookup("9F6B", VISA_AID)
    assert mastercard is not None and mastercard.sensitive
    assert visa is not None and visa.name == "Card CVM Limit" and not visa.sensitive


def test_sensitive_tags_are_every_tag_any_row_marks_sensitive() -> None:
    # Worked out from the file with the csv module alone, not by the loader under test.
    marked = {row["tag"] for row in _shipped_rows() if row["sensitive"] == "yes"}
    assert sensitive_tags() == frozenset(marked) | SENSITIVE_TAGS
    # Whatever the scheme: 9F61 is sensitive only in UnionPay's row (the generic row and
    # Mastercard's CVC3 are not), 9F6B is not in Visa's row (Card CVM Limit).
    generic = lookup("9F61")
    assert generic is not None and not generic.sensitive
    assert {"9F61", "9F6B", "58", "5B", "5F21", "5F22", "5F23", "99"} <= sensitive_tags()
    assert not {"9F02", "9F26", "82", "5F24", "9F62"} & sensitive_tags()
    assert sensitive_tags() is sensitive_tags()  # read once


def test_the_masking_modules_tags_are_all_marked_sensitive_in_the_dictionary() -> None:
    # sensitive_tags() adds them anyway; the data file must agree with the masker.
    marked = {row["tag"] for row in _shipped_rows() if row["sensitive"] == "yes"}
    assert marked >= SENSITIVE_TAGS


# --- scheme resolution --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "aid", "name", "scheme"),
    [
        ("9F6E", VISA_AID, "Form Factor Indicator (FFI)", "visa"),
        ("9F6E", MASTERCARD_AID, "Third Party Data", "mastercard"),
        ("9F6E", AMEX_AID, "Enhanced Contactless Reader Capabilities", "amex"),
        ("9F5D", VISA_AID, "Available Offline Spending Amount (AOSA)", "visa"),
        ("9F5D", MASTERCARD_AID, "Application Capabilities Information", "mastercard"),
        ("9F7C", VISA_AID, "Customer Exclusive Data (CED)", "visa"),
        ("9F7C", MASTERCARD_AID, "Merchant Custom Data", "mastercard"),
        ("9F69", MASTERCARD_AID, "UDOL", "mastercard"),
        ("9F6C", MASTERCARD_AID, "Mag-stripe Application Version Number (Card)", "mastercard"),
        ("9F79", UNIONPAY_AID, "Electronic Cash Balance", "unionpay"),
        ("9F5F", JCB_AID, "Offline Balance", "jcb"),
    ],
)
def test_scheme_specific_meaning_wins_for_the_aid(
    tag: str, aid: str, name: str, scheme: str
) -> None:
    info = lookup(tag, aid)
    assert info is not None
    assert (info.name, info.scheme) == (name, scheme)
    assert name_of(tag, aid=aid) == name


def test_aid_may_be_bytes_or_loosely_written_hex() -> None:
    expected = lookup("9F6E", MASTERCARD_AID)
    assert lookup("9F6E", bytes.fromhex(MASTERCARD_AID)) == expected
    assert lookup("9F6E", "a0 00 00 00 04 10 10") == expected
    assert lookup("9F6E", "A0:00:00:00:04:10:10") == expected


def test_generic_meaning_without_aid_or_for_other_schemes() -> None:
    generic = lookup("9F6E")
    assert generic is not None and generic.scheme is None
    assert lookup("9F6E", "A0000001523010") == generic  # Discover has no 9F6E row
    assert lookup("9F6E", "A0000009991010") == generic  # unregistered RID
    # Tags without scheme rows are the same for every AID.
    assert lookup("9F26", VISA_AID) == lookup("9F26", MASTERCARD_AID) == lookup("9F26")
    # UnionPay shares the VIS-family meaning of 9F5D, which is the generic row.
    up = lookup("9F5D", UNIONPAY_AID)
    assert up is not None and up.name == "Available Offline Spending Amount (AOSA)"


def test_single_scheme_tag_is_found_without_aid_but_not_for_another_scheme() -> None:
    info = lookup("DF8129")
    assert info is not None and info.scheme == "mastercard"
    assert lookup("DF8129", MASTERCARD_AID) == info
    assert lookup("DF8129", VISA_AID) is None
    assert name_of("DF8129", VISA_AID) == "Unknown tag DF8129"


@pytest.mark.parametrize(
    ("aid", "scheme"),
    [
        ("A0000000031010", "visa"),
        ("A0000000032010", "visa"),
        ("A0000000041010", "mastercard"),
        ("A0000000043060", "mastercard"),
        ("A00000002501", "amex"),
        ("A0000000651010", "jcb"),
        ("A0000001523010", "discover"),
        ("A0000003241010", "discover"),
        ("A000000333010101", "unionpay"),
        ("A0000002771010", "interac"),
        ("A0000000421010", "cb"),
        ("A000000003", "visa"),
        ("A0000000", None),  # shorter than a RID
        ("A0000009991010", None),
        ("", None),
    ],
)
def test_scheme_for_aid(aid: str, scheme: str | None) -> None:
    assert scheme_for_aid(aid) == scheme
    assert scheme_for_aid(bytes.fromhex(aid)) == scheme


def test_non_hex_aid_is_a_local_protocol_error() -> None:
    with pytest.raises(LocalProtocolError, match="not hex"):
        scheme_for_aid("VISA")
    with pytest.raises(LocalProtocolError):
        lookup("9F6E", "A0000000ZZ")


# --- tag input forms and unknown tags -----------------------------------------------------------


def test_tag_may_be_int_hex_text_or_bytes() -> None:
    expected = lookup("9F38")
    assert expected is not None
    for form in (0x9F38, "9f38", "9F 38", "9F:38", b"\x9f\x38"):
        assert lookup(form) == expected, form
    assert lookup(0x5A) == lookup(b"\x5a") == lookup("5a")


@pytest.mark.parametrize("tag", ["9F2C", 0xDF7F, b"\x9f\x2c", "BF0D", "9F99"])
def test_unknown_tags_are_named_unknown(tag: int | str | bytes) -> None:
    assert lookup(tag) is None
    assert name_of(tag).startswith("Unknown tag ")
    assert name_of(tag, aid=VISA_AID).startswith("Unknown tag ")


def test_unknown_tag_name_shows_upper_case_hex() -> None:
    assert name_of("9f2c") == "Unknown tag 9F2C"
    assert name_of(0xDF7F) == "Unknown tag DF7F"
    assert name_of("9F99") == "Unknown tag 9F99"


@pytest.mark.parametrize("tag", ["", "XYZ", 0, -1, 1 << 40, 3.5, None])
def test_values_that_are_no_tag_at_all_raise(tag: object) -> None:
    with pytest.raises(LocalProtocolError):
        lookup(tag)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        name_of(tag)  # type: ignore[arg-type]


def test_default_dictionary_is_loaded_once() -> None:
    assert default_dictionary() is default_dictionary()
    assert all(isinstance(info, TagInfo) for info in all_tags())
    # all_tags hands out a copy: callers cannot change the dictionary.
    all_tags().clear()
    assert len(all_tags()) >= 250


# --- loading files of one's own, and malformed files --------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loader_reads_files_given_by_path(tmp_path: Path) -> None:
    tags = _write(
        tmp_path,
        "tags.csv",
        "# a comment line\n"
        + TAGS_HEADER
        + "\n"
        + "9F6E,,Shared Name,b,card,,var,primitive,no\n"
        + "9F6E,acme,Acme Name,b,card,BF0C 70,5-32,primitive,no\n"
        + "70,,Record Template,b,card,,var,template,no\n",
    )
    schemes = _write(tmp_path, "schemes.csv", SCHEMES_HEADER + "A000000999,acme,Acme Payments\n")
    dictionary = TagDictionary.load(tags, schemes)
    assert len(dictionary) == 3
    assert dictionary.name_of("9F6E") == "Shared Name"
    acme = dictionary.lookup("9F6E", "A0000009991010")
    assert acme is not None and acme.templates == ("BF0C", "70") and acme.length == "5-32"
    assert dictionary.scheme_for_aid("A000000999") == "acme"
    template = dictionary.lookup("70")
    assert template is not None and template.constructed


BAD_TAG_ROWS = [
    ("9F02,,Amount,n,terminal,,6,primitive\n", "expected 9 fields, got 8"),
    ("9F02,,Amount,n,terminal,,6,primitive,no,extra\n", "expected 9 fields, got 10"),
    ("XX,,Amount,n,terminal,,6,primitive,no\n", "not a well-formed tag"),
    ("9F,,Amount,n,terminal,,6,primitive,no\n", "not a well-formed tag"),
    ("9f02,,Amount,n,terminal,,6,primitive,no\n", "must be written 9F02"),
    ("9F02,,Amount,x,terminal,,6,primitive,no\n", "format 'x'"),
    ("9F02,,Amount,n,atm,,6,primitive,no\n", "source 'atm'"),
    ("9F02,,Amount,n,terminal,ZZ,6,primitive,no\n", "template 'ZZ'"),
    ("9F02,,Amount,n,terminal,,six,primitive,no\n", "length 'six'"),
    ("9F02,,Amount,n,terminal,,16-1,primitive,no\n", "runs backwards"),
    ("9F02,,Amount,n,terminal,,6,template,no\n", "primitive in BER but listed as template"),
    ("6F,,FCI Template,b,card,,var,primitive,no\n", "constructed in BER but listed as primitive"),
    ("9F02,,Amount,n,terminal,,6,primitive,maybe\n", "sensitive 'maybe'"),
    ("9F02,,Amount,n,terminal,,6,leaf,no\n", "kind 'leaf'"),
    ("9F02,,,n,terminal,,6,primitive,no\n", "has no name"),
    ("9F02,diners,Amount,n,terminal,,6,primitive,no\n", "scheme 'diners'"),
    ('9F02,,"Amount, Authorised,n,terminal,,6,primitive,no\n', "not valid CSV"),
]


@pytest.mark.parametrize(("row", "problem"), BAD_TAG_ROWS)
def test_malformed_tag_row_is_a_config_error_naming_file_and_line(
    tmp_path: Path, row: str, problem: str
) -> None:
    path = _write(tmp_path, "bad-tags.csv", "# header follows\n" + TAGS_HEADER + row)
    with pytest.raises(ConfigError) as caught:
        TagDictionary.load(tags_path=path)
    message = str(caught.value)
    assert "bad-tags.csv" in message and "line 3" in message, message
    assert problem in message
    assert isinstance(caught.value, ContactlessError)


def test_duplicate_tag_and_scheme_is_rejected_with_both_lines(tmp_path: Path) -> None:
    row = "9F02,,Amount,n,terminal,,6,primitive,no\n"
    path = _write(tmp_path, "dup.csv", TAGS_HEADER + row + row)
    with pytest.raises(ConfigError, match=r"dup\.csv, line 3: tag 9F02 repeats line 2"):
        TagDictionary.load(tags_path=path)


def test_several_scheme_rows_without_a_generic_row_are_rejected(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "no-generic.csv",
        TAGS_HEADER
        + "9F6E,visa,Form Factor Indicator,b,card,,4,primitive,no\n"
        + "9F6E,mastercard,Third Party Data,b,card,,5-32,primitive,no\n",
    )
    with pytest.raises(ConfigError, match=r"no-generic\.csv, line 2: .*no generic row"):
        TagDictionary.load(tags_path=path)


def test_wrong_header_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "header.csv", "tag,name,format\n9F02,Amount,n\n")
    with pytest.raises(ConfigError, match=r"header\.csv, line 1: header must be"):
        TagDictionary.load(tags_path=path)


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "empty.csv", "# nothing but a comment\n")
    with pytest.raises(ConfigError, match=r"empty\.csv: no header row"):
        TagDictionary.load(tags_path=path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read tag dictionary file .*missing\.csv"):
        TagDictionary.load(tags_path=tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("A00003,visa,Too Short\n", "must be 5-16 bytes"),
        ("A0000000GG,visa,Not Hex\n", "not hex"),
        ("a000000003,visa,Lower Case\n", "must be 5-16 bytes of upper-case hex"),
        ("A000000003,Visa,Capitalised\n", "lower-case"),
        ("A000000003,visa,\n", "no owner"),
        ("A000000003,visa\n", "expected 3 fields, got 2"),
    ],
)
def test_malformed_scheme_row_is_a_config_error(tmp_path: Path, row: str, problem: str) -> None:
    path = _write(tmp_path, "bad-schemes.csv", SCHEMES_HEADER + row)
    with pytest.raises(ConfigError) as caught:
        TagDictionary.load(schemes_path=path)
    assert "bad-schemes.csv, line 2" in str(caught.value)
    assert problem in str(caught.value)


def test_duplicate_rid_is_rejected(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "dup-schemes.csv", SCHEMES_HEADER + "A000000003,visa,V\nA000000003,visa,V\n"
    )
    with pytest.raises(ConfigError, match=r"dup-schemes\.csv, line 3: RID A000000003 is listed"):
        TagDictionary.load(schemes_path=path)
