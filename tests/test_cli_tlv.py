"""`contactless tlv`: the tree, the JSON form, stdin, masking and malformed input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from contactless.cli import cli
from contactless.masking import NAME_MASK

FCI = "6F1A840E325041592E5359532E4444463031A5088801025F2D02656E"
RECORD = "701D5A0847617390010100105F2403251231 5F200A4A4F484E2F534D495448"


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["tlv", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_tree_names_tags_and_decodes_values() -> None:
    code, out, _ = run(FCI)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("6F") and "File Control Information" in lines[0]
    assert any(line.strip().startswith("5F2D") and "= en" in line for line in lines)
    assert lines[3].startswith("    88")  # nesting shown by indentation


def test_json_is_the_decoded_tree() -> None:
    code, out, _ = run("--json", FCI)
    assert code == 0
    tree = json.loads(out)
    assert [n["tag"] for n in tree] == ["6F"]
    fci = tree[0]
    assert (fci["offset"], fci["length"]) == (0, 26)
    assert [c["tag"] for c in fci["children"]] == ["84", "A5"]
    lang = fci["children"][1]["children"][1]
    assert lang == {
        "tag": "5F2D",
        "name": "Language Preference",
        "offset": 23,
        "length": 2,
        "value": "656E",
    }
    assert "children" not in fci["children"][0]  # primitive nodes carry no children key


def test_stdin_and_separators() -> None:
    code, out, _ = run("-", stdin=FCI.lower() + "\n")
    assert code == 0 and out.startswith("6F")
    spaced = " ".join(FCI[i : i + 2] for i in range(0, len(FCI), 2))
    assert run(spaced)[1] == out


def test_card_data_is_masked_unless_asked() -> None:
    code, out, _ = run(RECORD)
    assert code == 0
    assert "4761739001010010" not in out and "476173******0010" in out
    assert "JOHN/SMITH" not in out and "4A4F484E2F534D495448" not in out
    code, out, _ = run("--json", RECORD)
    assert "4761739001010010" not in out and "4A4F484E" not in out
    assert json.loads(out)[0]["value"] is None  # the template's hex would carry the PAN
    code, out, _ = run("--show-pan", RECORD)
    assert "4761739001010010" in out


def test_malformed_input_exits_2_with_one_line_naming_the_offset() -> None:
    code, out, err = run("9F0206000000000100 5A08476173")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "error: malformed TLV at offset 9, tag 5A: "
        "length 8 runs past the end of the data (3 bytes left)"
    ]


def test_lenient_prints_the_clean_prefix_then_the_error() -> None:
    code, out, err = run("--lenient", "9F0206000000000100 5A08476173")
    assert code == 2
    assert out.startswith("9F02") and "1.00" in out
    assert "offset 9" in err


def test_not_hex_is_a_clear_error() -> None:
    code, _, err = run("6F1G")
    assert code == 2 and "'G' at position 3" in err


def test_console_script_and_module_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "contactless", "tlv", FCI],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Language Preference" in proc.stdout


def run_bytes(*args: str, stdin: bytes) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["tlv", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_empty_input_is_an_error_not_silence() -> None:
    for args in ([""], ["  "], [":"]):
        code, out, err = run(*args)
        assert (code, out) == (2, "")
        assert err.startswith("error: empty input")
    code, _, err = run("-", stdin="\n")
    assert code == 2 and err.startswith("error: empty input")


def test_padding_alone_says_there_are_no_objects() -> None:
    code, out, err = run("0000")
    assert (code, out, err) == (0, "no TLV objects (2 padding bytes)\n", "")
    assert run("FF")[:2] == (0, "no TLV objects (1 padding byte)\n")


def test_padding_alone_in_json_is_an_empty_list_with_the_note_on_stderr() -> None:
    code, out, err = run("--json", "0000")
    assert code == 0 and json.loads(out) == []
    assert "no TLV objects (2 padding bytes)" in err


def test_non_text_stdin_names_the_byte_and_its_position() -> None:
    code, out, err = run_bytes("-", stdin=b"\xff5A0112")
    assert (code, out) == (2, "")
    assert err == "error: stdin is not text (byte 0xFF at position 0)\n"
    code, _, err = run_bytes("-", stdin=b"5A 01 \xc3\x28")
    assert code == 2 and "byte 0xC3 at position 6" in err


def test_stdin_as_utf8_bytes_still_decodes() -> None:
    code, out, _ = run_bytes("-", stdin=b"5a 01 12\r\n")
    assert code == 0 and out.startswith("5A ")


def test_aid_chooses_the_scheme_for_scheme_specific_names() -> None:
    # 9F6E is Form Factor Indicator for Visa, Third Party Data for Mastercard.
    assert "Third Party Data" in run("--aid", "A0000000041010", "9F6E0100")[1]
    visa = run("--aid", "A0000000031010", "9F6E0100")[1]
    assert "Form Factor Indicator" in visa and "Third Party" not in visa
    # --aid wins over a 4F in the data.
    code, out, _ = run("--aid", "A0000000041010", "4F07A00000000310109F6E0100")
    assert code == 0 and "Third Party Data" in out
    code, out, _ = run("--json", "--aid", "a0:00:00:00:04:10:10", "9F6E0100")
    assert json.loads(out)[0]["name"] == "Third Party Data"


def test_a_bad_aid_is_a_clear_error() -> None:
    code, _, err = run("--aid", "A000", "9F6E0100")
    assert code == 2 and "an AID is 5-16 bytes" in err
    code, _, err = run("--aid", "XYZ", "9F6E0100")
    assert code == 2 and err.startswith("error: --aid is not hex")


def test_help_documents_the_exit_statuses_and_aid() -> None:
    help_text = CliRunner().invoke(cli, ["tlv", "--help"]).output
    assert "--aid HEX" in help_text
    assert "padding" in help_text and "empty input" in help_text


# --- card data that must not show without --show-pan ---------------------------------------

#: UnionPay's Cardholder ID Number (9F61): sensitive in UnionPay's dictionary row only.
ID_NUMBER = b"1234567890"
ID_TLV = "9F610A" + ID_NUMBER.hex().upper()
UNIONPAY_AID = "A0000003330101"
PAN = "4761739001010010"
NAME = b"JOHN/SMITH"


def _leaks(output: str, secret: bytes, text: str) -> list[str]:
    """The forms of ``secret`` found in ``output``: its text, its hex, its spaced hex."""
    spaced = " ".join(f"{byte:02X}" for byte in secret)
    forms = {"text": text, "hex": secret.hex().upper(), "spaced hex": spaced}
    return [form for form, shown in forms.items() if shown in output]


@pytest.mark.parametrize(
    "args",
    [
        ["--aid", UNIONPAY_AID, ID_TLV],  # the command
        [ID_TLV],  # no AID at all: the generic row is not sensitive, UnionPay's is
        ["4F07" + UNIONPAY_AID + ID_TLV],  # the AID in the data
        ["--aid", "A0000000041010", ID_TLV],  # even another scheme's AID: the safer rule
    ],
)
def test_a_tag_sensitive_in_one_schemes_row_is_masked_in_text_and_json(args: list[str]) -> None:
    for extra in ([], ["--json"]):
        code, out, _ = run(*extra, *args)
        assert code == 0
        assert _leaks(out, ID_NUMBER, ID_NUMBER.decode()) == [], (extra, out)
        assert "9F61" in out  # the data object is listed, its value is not
        code, out, _ = run(*extra, "--show-pan", *args)
        assert code == 0 and "hex" in _leaks(out, ID_NUMBER, ID_NUMBER.decode())
    node = json.loads(run("--json", "--aid", UNIONPAY_AID, ID_TLV)[1])[0]
    assert node["masked"] is True and node["name"] == "Cardholder ID Number"
    assert node["value"] == "*" * 20
    node = json.loads(run("--json", "--show-pan", "--aid", UNIONPAY_AID, ID_TLV)[1])[0]
    assert node["value"] == ID_TLV[6:] and "masked" not in node


def test_pan_and_name_show_in_no_form_without_show_pan() -> None:
    for extra in ([], ["--json"]):
        out = run(*extra, RECORD)[1]
        assert _leaks(out, bytes.fromhex(PAN), PAN) == []
        assert _leaks(out, NAME, NAME.decode()) == []
        opted = run(*extra, "--show-pan", RECORD)[1]
        assert "hex" in _leaks(opted, bytes.fromhex(PAN), PAN)
        assert "hex" in _leaks(opted, NAME, NAME.decode())


#: A record with a 26-character name, then another data object after the record.
LONG_NAME = b"VISA ACQUIRER TEST/CARD 01"
NAMED = "7027" + "5A08" + PAN + "5F201A" + LONG_NAME.hex().upper() + "9F0702FF00"


def test_a_masked_names_length_shows_nowhere_in_json() -> None:
    out = run("--json", NAMED)[1]
    record, usage = json.loads(out)
    pan, name = record["children"]
    assert name == {
        "tag": "5F20",
        "name": "Cardholder Name",
        "offset": 12,  # before the name: it tells nothing
        "length": None,
        "value": NAME_MASK,
        "masked": True,
    }
    # The record's length, less its other children's, would be the name's; the offset of
    # what follows the name would be shifted by its length.
    assert record["length"] is None and usage["offset"] is None
    assert pan["length"] == 8 and usage["length"] == 2  # other lengths stay
    assert '"length": 26' not in out and '"length": 39' not in out
    # With --show-pan, everything is there.
    record, usage = json.loads(run("--json", "--show-pan", NAMED)[1])
    assert (record["length"], record["children"][1]["length"], usage["offset"]) == (39, 26, 41)
    assert record["children"][1]["value"] == LONG_NAME.hex().upper()


def test_a_masked_names_length_shows_nowhere_in_the_tree() -> None:
    out = run(NAMED)[1]
    assert out.splitlines()[0].endswith("[length hidden]")
    assert "39 bytes" not in out and "26" not in out and "1A" not in out
    assert f"5F20   Cardholder Name  {NAME_MASK}" in out
    assert "[39 bytes]" in run("--show-pan", NAMED)[1]
    without_name = "700A5A08" + PAN + "9F0702FF00"
    assert run(without_name)[1].splitlines()[0].endswith("[10 bytes]")  # no name: lengths show


def _named_tree(name: bytes, tag: str = "5F20") -> str:
    """A record holding ``name`` under ``tag`` after a PAN, then a usage control."""
    body = "5A08" + PAN + tag + f"{len(name):02X}" + name.hex().upper()
    return "70" + f"{len(body) // 2:02X}" + body + "9F0702FF00"


@pytest.mark.parametrize("tag", ["5F20", "9F0B", "5B", "5F21"])
def test_two_names_of_different_lengths_print_the_same(tag: str) -> None:
    # The strongest check that no length shows: only the name's length differs between
    # the two inputs, so any difference in the outputs would tell it.
    short, long = _named_tree(b"JO/ANN", tag), _named_tree(LONG_NAME.ljust(30, b"X"), tag)
    if tag == "9F0B":  # Name Extended is 27-45 characters
        short, long = _named_tree(b"A" * 27, tag), _named_tree(b"B" * 45, tag)
    for extra in ([], ["--json"]):
        assert run(*extra, short)[1] == run(*extra, long)[1], extra
        assert run(*extra, "--show-pan", short)[1] != run(*extra, "--show-pan", long)[1]
    assert NAME_MASK in run(short)[1] and "[length hidden]" in run(short)[1]


def _track1(name: bytes) -> str:
    track = b"B" + PAN.encode() + b"^" + name + b"^2812201" + b"123456789"
    return "56" + f"{len(track):02X}" + track.hex().upper()


def test_a_track_1_shows_no_name_and_no_length() -> None:
    out = run(_track1(LONG_NAME))[1]
    assert _leaks(out, LONG_NAME, LONG_NAME.decode()) == [] and PAN not in out
    assert out.rstrip().endswith(f"B{MASKED_PAN}^{NAME_MASK}^2812201*********")
    assert run(_track1(b"JO/ANN"))[1] == out  # a shorter name: the same output
    assert "hex" in _leaks(run("--show-pan", _track1(LONG_NAME))[1], LONG_NAME, "-")
    # Without Track 1's shape, the whole value is one name mask, not a star per character.
    odd = b"no track shape, name " + LONG_NAME
    out = run("56" + f"{len(odd):02X}" + odd.hex().upper())[1]
    assert out.rstrip().endswith(f"Track 1 Data  {NAME_MASK}")


MASKED_PAN = "476173******0010"


def test_a_decoding_error_after_a_name_hides_its_offset_and_lengths() -> None:
    # A data object cut short after the record: the error's offset would be shifted by
    # the name's length.
    broken = NAMED + "9F02060000"
    code, out, err = run(broken)
    assert code == 2 and out == ""
    assert err.strip() == (
        "error: malformed TLV at tag 9F02 (offset and lengths hidden: they could tell a "
        "cardholder name's length; --show-pan shows them)"
    )
    code, _, err = run("--show-pan", broken)
    assert code == 2 and "at offset 46, tag 9F02: length 6 runs past the end" in err
    # Without a name, the error says where.
    assert "at offset 0, tag 9F02" in run("9F02060000")[2]


def test_a_name_cut_short_shows_neither_its_text_nor_its_length() -> None:
    # 5F20 says 26 bytes, 10 are there: the declared length would be the name's.
    cut = "5F201A" + LONG_NAME[:10].hex().upper()
    code, out, err = run("--lenient", cut)
    assert code == 2
    assert _leaks(out + err, LONG_NAME[:10], LONG_NAME[:10].decode()) == []
    assert "26" not in err and "10 bytes" not in err and "tag 5F20" in err
    assert "length 26 runs past the end" in run("--show-pan", cut)[2]
    # The same inside a template: the lenient tree hides the template's length too.
    out = run("--lenient", "7017" + "5A08" + PAN + cut)[1]
    assert out.splitlines()[0].endswith("[length hidden]")
    assert "bytes]" not in out
    cut_usage = "9F0703FF00"  # no name: the template's length shows
    out = run("--lenient", "700F" + "5A08" + PAN + cut_usage)[1]
    assert out.splitlines()[0].endswith("[15 bytes]")
