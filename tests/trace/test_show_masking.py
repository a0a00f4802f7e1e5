"""`contactless trace show` and the assertion explanations keep card data out unless
--show-pan: every tag the dictionary marks sensitive for any scheme, and a cardholder
name together with its length (its length field, the templates around it, the T=0
announcements of the answer's length, offsets after it, error texts). The strongest check
is that two traces differing only in a name's length print the same; with --show-pan
they must differ, so a masking that hid everything would fail too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from contactless.cli import cli
from contactless.masking import NAME_MASK
from contactless.tlv import decode
from contactless.trace import Exchange, Trace, TraceHeader, read_trace, write_trace
from contactless.trace_view import explain, hex_diff, masked_hex, show_lines, tlv_difference

PAN = "4761739001010010"
LONG_NAME = b"VISA ACQUIRER TEST/CARD 01"  # 26 characters: 5F20 1A
SHORT_NAME = b"JO/ANN"
#: UnionPay's Cardholder ID Number (9F61), sensitive in UnionPay's dictionary row only.
ID_NUMBER = b"1234567890"
GPO = bytes.fromhex("80A8000002830000")
READ_RECORD = bytes.fromhex("00B2010C00")
SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")


def _tlv(tag: str, value: bytes) -> bytes:
    return bytes.fromhex(tag) + bytes((len(value),)) + value


def _gpo_answer(name: bytes) -> bytes:
    """A GPO answer in format 2 holding the name, as in the issue (``77 6E ... 5F20 1A``)."""
    body = (
        _tlv("82", bytes.fromhex("1800"))
        + _tlv("57", bytes.fromhex(PAN + "D28122011438044000000F"))
        + _tlv("5F20", name)
        + _tlv("9F36", bytes.fromhex("00C3"))
    )
    return _tlv("77", body)


def _record(name: bytes) -> bytes:
    return _tlv(
        "70", _tlv("5A", bytes.fromhex(PAN)) + _tlv("5F20", name) + _tlv("9F07", b"\xff\x00")
    )


def _trace(name: bytes) -> Trace:
    """An unredacted T=0 trace: the name in a GPO answer fetched by GET RESPONSE (61xx),
    and in a record re-read with the Le its 6Cxx announced."""
    gpo, record = _gpo_answer(name), _record(name)
    entries = (
        Exchange(GPO, bytes((0x61, len(gpo)))),
        Exchange(bytes.fromhex("00C00000") + bytes((len(gpo),)), gpo + b"\x90\x00"),
        Exchange(READ_RECORD, bytes((0x6C, len(record)))),
        Exchange(READ_RECORD[:4] + bytes((len(record),)), record + b"\x90\x00"),
    )
    return Trace(TraceHeader(protocol="T0", redacted=False), entries, "hand.jsonl")


def _text(trace: Trace, show_sensitive: bool = False) -> str:
    return "\n".join(show_lines(trace, show_sensitive=show_sensitive))


def _leaks(output: str, secret: bytes) -> list[str]:
    """The forms of ``secret`` in ``output``: text, hex, and hex with masks taken out."""
    forms = {"text": secret.decode("latin-1"), "hex": secret.hex().upper()}
    return [form for form, shown in forms.items() if shown in output]


def test_two_names_of_different_lengths_are_listed_alike() -> None:
    short, long = _text(_trace(SHORT_NAME)), _text(_trace(LONG_NAME))
    assert short == long
    assert _text(_trace(SHORT_NAME), True) != _text(_trace(LONG_NAME), True)
    for name in (SHORT_NAME, LONG_NAME):
        assert _leaks(_text(_trace(name)), name) == []
        assert "hex" in _leaks(_text(_trace(name), True), name)


def test_the_issues_listing_shows_the_name_mask_and_no_length() -> None:
    text = _text(_trace(LONG_NAME))
    gpo, record = _gpo_answer(LONG_NAME), _record(LONG_NAME)
    template = f"77{len(gpo) - 2:02X}"
    assert "5F201A" not in text and "**" * 26 not in text
    assert f"5F20**{NAME_MASK}9F3602" in text  # tag, hidden length, one fixed-length mask
    assert template not in text and "77**82" in text  # the template's length, hidden too
    assert "[length hidden]" in text and f"[{len(gpo) - 2} bytes]" not in text
    # The T=0 announcements of the answer's length: SW2 of 61xx/6Cxx, Le of the command after.
    assert "< 61**" in text and "> 00C00000**" in text
    assert "< 6C**" in text and "> 00B2010C**" in text
    assert "SW 61**: length announcement hidden" in text
    assert not re.search(r"\d+ (response )?bytes are", text)
    # Other lengths and values are as they were.
    assert "5713" + "**" * 19 + "5F20" in text  # Track 2: masked, its length shown
    full = _text(_trace(LONG_NAME), True)
    assert template in full and "5F201A" + LONG_NAME.hex().upper() in full
    assert f"< 61{len(gpo):02X}" in full and f"> 00C00000{len(gpo):02X}" in full
    assert f"< 6C{len(record):02X}" in full and f"> 00B2010C{len(record):02X}" in full


def test_a_t0_answer_without_a_name_keeps_its_announcements() -> None:
    record = _tlv("70", _tlv("9F07", b"\xff\x00"))
    trace = Trace(
        TraceHeader(protocol="T0"),
        (
            Exchange(READ_RECORD, bytes((0x6C, len(record)))),
            Exchange(READ_RECORD[:4] + bytes((len(record),)), record + b"\x90\x00"),
        ),
    )
    text = _text(trace)
    assert "< 6C07" in text and "> 00B2010C07" in text and "SW 6C07: wrong Le" in text


def test_a_tag_sensitive_for_one_scheme_only_is_hidden_without_the_aid() -> None:
    # No SELECT in the trace names UnionPay: the tag is still hidden, in hex and tree.
    record = _tlv("70", _tlv("9F61", ID_NUMBER))
    trace = Trace(TraceHeader(), (Exchange(READ_RECORD, record + b"\x90\x00"),))
    text = _text(trace)
    assert _leaks(text, ID_NUMBER) == []
    assert "700D9F610A" + "**" * 10 + "9000" in text
    assert "hex" in _leaks(_text(trace, True), ID_NUMBER)
    assert masked_hex(record) == "700D9F610A" + "**" * 10


def test_a_corrupted_answer_hides_its_card_data(tmp_path: Path) -> None:
    # The card's record is one byte short of its template's length, so it does not decode:
    # its bytes may hold anything, and are hidden whole.
    path = tmp_path / "corrupt.jsonl"
    result = CliRunner().invoke(
        cli, ["record", "--reader", "sim:jcb?corrupt=B2", "-o", str(path), "--no-redact"]
    )
    assert path.exists(), result.output
    answer = read_trace(path).exchanges[-1].response
    assert decode(answer[:-2], strict=False).error is not None
    name = re.search(rb"\x5f\x20(.)", answer)
    assert name is not None
    secret = answer[name.end() : name.end() + name.group(1)[0]]
    pan = re.search(r"57[0-9A-F]{2}([0-9]{16})D", answer.hex().upper())  # the PAN in Track 2
    assert pan is not None
    shown = CliRunner().invoke(cli, ["trace", "show", str(path)]).stdout
    assert _leaks(shown, secret) == [] and pan.group(1) not in shown
    assert "[not decoded: hidden]9000" in shown
    assert "malformed TLV at tag 70 (offset and lengths hidden" in shown
    full = CliRunner().invoke(cli, ["trace", "show", "--show-pan", str(path)]).stdout
    assert "hex" in _leaks(full, secret) and pan.group(1) in full
    assert "length 41 runs past the end" in full


def test_a_trace_file_is_shown_masked(tmp_path: Path) -> None:
    path = tmp_path / "hand.jsonl"
    write_trace(_trace(LONG_NAME), path)
    shown = CliRunner().invoke(cli, ["trace", "show", str(path)])
    assert shown.exit_code == 0
    assert _leaks(shown.stdout, LONG_NAME) == [] and "5F201A" not in shown.stdout


# --- explanations (pytest plugin) --------------------------------------------------------------


def test_answers_differing_after_a_name_name_no_offset() -> None:
    left = _record(LONG_NAME) + b"\x90\x00"
    right = _record(LONG_NAME)[:-1] + b"\x01\x90\x00"  # another usage control, after the name
    lines = explain(Exchange(READ_RECORD, left), Exchange(READ_RECORD, right))
    assert lines is not None
    text = "\n".join(lines)
    assert _leaks(text, LONG_NAME) == []
    # Byte 45 (or any number) would tell where the usage control is, hence the name's length.
    assert "(offset hidden: a masked cardholder name comes before it)" in text
    assert not re.search(r"byte \d", text)
    assert "70/9F07 Application Usage Control (AUC): FF00 vs FF01" in text
    # The caret stands under the differing byte of the masked dump.
    dump, caret = lines[1], lines[3]
    assert dump[caret.index("^^") :].startswith("00" + "9000")


def test_answers_with_names_of_different_lengths_name_no_lengths() -> None:
    left, right = _record(LONG_NAME) + b"\x90\x00", _record(SHORT_NAME) + b"\x90\x00"
    lines = explain(Exchange(READ_RECORD, left), Exchange(READ_RECORD, right))
    assert lines is not None
    text = "\n".join(lines)
    assert _leaks(text, LONG_NAME) == [] and _leaks(text, SHORT_NAME) == []
    assert "(lengths differ)" in text
    assert str(len(left)) not in text and str(len(right)) not in text
    # Both dumps are alike: the one difference they could show is the length.
    assert lines[1].split(": ")[1] == lines[2].split(": ")[1]
    assert "70/5F20 Cardholder Name: [masked] vs [masked]" in text
    assert "26 bytes" not in text and "6 bytes" not in text


def test_a_difference_before_any_name_keeps_its_offset() -> None:
    lines = hex_diff(bytes.fromhex("9F02060000000001005A01"), bytes.fromhex("9F0206000000000200"))
    assert lines[-1].endswith("^^ byte 7 (lengths 11 and 9)")
    assert lines[-1].index("^^") == len("right") + 2 + 2 * 7


@pytest.mark.parametrize("left_name", [SHORT_NAME, LONG_NAME])
def test_tlv_difference_hides_template_lengths_around_a_name(left_name: bytes) -> None:
    a = _tlv("70", _tlv("5F20", left_name) + _tlv("9F07", b"\xff\x00"))
    b = _tlv("70", _tlv("5F20", left_name) + _tlv("9F07", b"\xff\x01"))
    assert tlv_difference(a, b) == ["70/9F07 Application Usage Control (AUC): FF00 vs FF01"]
    c = _tlv("77", _tlv("70", _tlv("5F20", left_name)))
    d = _tlv("77", _tlv("70", _tlv("5F20", left_name[:-1] + b"Z")))
    assert tlv_difference(c, d) == ["77/70/5F20 Cardholder Name: [masked] vs [masked]"]
