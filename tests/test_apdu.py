"""Command and Response APDUs: ISO 7816-4 cases 1-4, short and extended, against encodings
written out by hand from the standard (and real EMV commands from public traces)."""

from __future__ import annotations

import pytest

from contactless.apdu import INS_NAMES, Command, Response
from contactless.errors import LocalProtocolError, RemoteProtocolError
from visa_card import VISA_NAME, VISA_PAN, VISA_RECORD, VISA_TRACK2, visa_data_in

PPSE = b"2PAY.SYS.DDF01"

# (command, wire hex, ISO case). Short forms first, then extended.
ENCODINGS = [
    # case 1: header only
    (Command(0x00, 0x70, 0x80, 0x01), "00708001", 1),
    # case 2 short: Le; 256 is written 00
    (Command(0x80, 0xCA, 0x9F, 0x17, le=256), "80CA9F1700", 2),
    (Command(0x00, 0xB2, 0x01, 0x0C, le=256), "00B2010C00", 2),
    (Command(0x00, 0x84, 0x00, 0x00, le=8), "0084000008", 2),
    # case 3 short: Lc data
    (
        Command(0x00, 0x20, 0x00, 0x80, bytes.fromhex("241234FFFFFFFFFF")),
        "002000800824" + "1234FFFFFFFFFF",
        3,
    ),
    # case 4 short: Lc data Le (SELECT PPSE, GET PROCESSING OPTIONS with an empty PDOL)
    (Command(0x00, 0xA4, 0x04, 0x00, PPSE, le=256), "00A404000E325041592E5359532E444446303100", 4),
    (Command(0x80, 0xA8, 0x00, 0x00, b"\x83\x00", le=256), "80A8000002830000", 4),
    (Command(0x00, 0xA4, 0x04, 0x00, bytes(255), le=1), "00A40400FF" + "00" * 255 + "01", 4),
    # case 2 extended: 00 Le1 Le2; 65536 is written 0000
    (Command(0x00, 0xB0, 0x00, 0x00, le=257), "00B00000000101", 2),
    (Command(0x00, 0xB0, 0x00, 0x00, le=65536), "00B00000000000", 2),
    (Command(0x00, 0xB0, 0x00, 0x00, le=5, extended=True), "00B00000000005", 2),
    # case 3 extended: 00 Lc1 Lc2 data
    (Command(0x00, 0xD6, 0x00, 0x00, bytes(256)), "00D60000000100" + "00" * 256, 3),
    (Command(0x00, 0xD6, 0x00, 0x00, b"\xaa", extended=True), "00D6000000" + "0001AA", 3),
    # case 4 extended: 00 Lc1 Lc2 data Le1 Le2 (no second 00 before Le)
    (
        Command(0x00, 0x2A, 0x9E, 0x9A, bytes(300), le=65536),
        "002A9E9A00012C" + "00" * 300 + "0000",
        4,
    ),
    (
        Command(0x00, 0x88, 0x00, 0x00, b"\x01\x02", le=256, extended=True),
        "00880000000002" + "0102" + "0100",
        4,
    ),
]


def _id(case: tuple[Command, str, int]) -> str:
    command, wire, _ = case
    return f"{command.name}-{len(wire) // 2}B{'-ext' if command.extended else ''}"


@pytest.mark.parametrize(("command", "wire", "case"), ENCODINGS, ids=[_id(c) for c in ENCODINGS])
def test_command_encodes_as_iso_7816_4_says(command: Command, wire: str, case: int) -> None:
    assert command.hex() == wire
    assert command.to_bytes() == bytes(command) == bytes.fromhex(wire)
    assert command.case == case


@pytest.mark.parametrize(("command", "wire", "case"), ENCODINGS, ids=[_id(c) for c in ENCODINGS])
def test_command_from_bytes_round_trips(command: Command, wire: str, case: int) -> None:
    parsed = Command.from_bytes(bytes.fromhex(wire))
    if case == 1:
        # A header alone has no length field: nothing marks it short or extended.
        assert parsed == Command(command.cla, command.ins, command.p1, command.p2)
    else:
        assert parsed == command
    assert parsed.to_bytes().hex().upper() == wire


def test_from_bytes_accepts_bytearray_and_memoryview() -> None:
    raw = bytes.fromhex("00A404000E325041592E5359532E444446303100")
    assert Command.from_bytes(bytearray(raw)) == Command.from_bytes(memoryview(raw))


def test_extended_is_chosen_when_short_cannot_hold_the_lengths() -> None:
    assert not Command(0x00, 0xB0, 0, 0, le=256).extended
    assert Command(0x00, 0xB0, 0, 0, le=257).extended
    assert not Command(0x00, 0xD6, 0, 0, bytes(255)).extended
    assert Command(0x00, 0xD6, 0, 0, bytes(256)).extended


def test_data_given_as_bytearray_is_stored_as_bytes() -> None:
    command = Command(0x00, 0xA4, 0x04, 0x00, bytearray(b"\xa0\x00"))  # type: ignore[arg-type]
    assert type(command.data) is bytes


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ("00A404", "at least 4 bytes"),
        ("", "at least 4 bytes"),
        ("00A404000E3250", "Lc says 14"),  # Lc 14, 2 data bytes
        ("00A40400023F0000AA", "Lc says 2"),  # one byte too many after Le
        ("00A4040000AA", "Lc is 00"),  # short Lc of 0 with data behind it
        ("00B2010C0000", "Lc is 00"),  # 00 00: neither short Le nor extended Le
        ("00D6000000000A" + "00" * 9, "extended Lc says 10"),
        ("00D60000000000AA", "extended Lc is 0000"),
        ("00D600000000020102AA", "extended Lc says 2"),
    ],
)
def test_inconsistent_lc_or_le_is_a_local_protocol_error(wire: str, message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        Command.from_bytes(bytes.fromhex(wire))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cla": 256},
        {"ins": -1},
        {"p1": 0x1FF},
        {"p2": "00"},
        {"data": "9F38"},
        {"data": bytes(65536)},
        {"le": 0},
        {"le": 65537},
    ],
)
def test_invalid_fields_are_refused(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"cla": 0x00, "ins": 0xB2, "p1": 0x01, "p2": 0x0C}
    fields.update(kwargs)
    with pytest.raises(LocalProtocolError):
        Command(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("command", "text"),
    [
        (Command(0x00, 0xB2, 0x02, 0x0C, le=256), "READ RECORD SFI 1 record 2"),
        (Command(0x00, 0xB2, 0x01, 0x14, le=256), "READ RECORD SFI 2 record 1"),
        (Command(0x00, 0xA4, 0x04, 0x00, PPSE, le=256), "SELECT 325041592E5359532E4444463031"),
        (Command(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("A0000000031010")), "SELECT A0000000031010"),
        (Command(0x00, 0xA4, 0x00, 0x00, b"\x3f\x00"), "SELECT"),
        (Command(0x80, 0xCA, 0x9F, 0x17, le=256), "GET DATA 9F17"),
        (Command(0x80, 0xCB, 0xDF, 0x20), "GET DATA DF20"),
        (Command(0x80, 0xA8, 0x00, 0x00, b"\x83\x00", le=256), "GET PROCESSING OPTIONS"),
        (Command(0x80, 0xAE, 0x80, 0x00, bytes(29), le=256), "GENERATE AC"),
        (Command(0x00, 0x20, 0x00, 0x80, bytes(8)), "VERIFY"),
        (Command(0x00, 0xC0, 0x00, 0x00, le=0x1F), "GET RESPONSE"),
        (Command(0x90, 0x7F, 0x00, 0x00), "INS 7F"),
    ],
)
def test_describe_names_the_command(command: Command, text: str) -> None:
    assert command.describe() == text


def test_name_comes_from_the_instruction_table() -> None:
    assert INS_NAMES[0xB2] == "READ RECORD"
    assert Command(0x00, 0xB2, 1, 0x0C).name == "READ RECORD"
    assert Command(0x00, 0x7F, 0, 0).name == "INS 7F"


def test_with_le_reissues_with_another_le() -> None:
    command = Command(0x00, 0xB2, 0x01, 0x0C, le=256)
    assert command.with_le(0x1F).hex() == "00B2010C1F"
    assert command.with_le(0).le == 256  # 6C00 means 256
    assert command.with_le(0x1F).data == command.data
    extended = Command(0x00, 0xB0, 0, 0, le=300)
    assert extended.with_le(0x10).hex() == "00B00000000010"


def test_commands_are_frozen() -> None:
    command = Command(0x00, 0xB2, 1, 0x0C)
    with pytest.raises(AttributeError):
        command.p1 = 2  # type: ignore[misc]


# --- responses ---------------------------------------------------------------------------


def test_response_splits_data_and_status_word() -> None:
    raw = bytes.fromhex("9F1701039000")
    response = Response.from_bytes(raw)
    assert response.data == bytes.fromhex("9F170103")
    assert (response.sw1, response.sw2, response.sw) == (0x90, 0x00, 0x9000)
    assert response.ok
    assert response.to_bytes() == bytes(response) == raw
    assert response.hex() == "9F1701039000"


@pytest.mark.parametrize("wire", ["6A82", "6283" + "6F00", "611F", "63C2", "9000"])
def test_response_round_trips(wire: str) -> None:
    response = Response.from_bytes(bytes.fromhex(wire))
    assert response.hex() == wire
    assert response.ok == wire.endswith("9000")


def test_status_word_only_response_has_no_data() -> None:
    response = Response.from_bytes(bytearray(b"\x6a\x83"))
    assert response.data == b"" and response.sw == 0x6A83 and not response.ok


@pytest.mark.parametrize("wire", ["", "90"])
def test_response_shorter_than_a_status_word_is_a_remote_error(wire: str) -> None:
    with pytest.raises(RemoteProtocolError, match="SW1 SW2"):
        Response.from_bytes(bytes.fromhex(wire))


@pytest.mark.parametrize("raw", ["00A4040000", 5, None, [0, 0xA4, 4, 0]])
def test_command_from_non_bytes_is_a_local_protocol_error(raw: object) -> None:
    with pytest.raises(LocalProtocolError, match="a command APDU must be bytes, not"):
        Command.from_bytes(raw)  # type: ignore[arg-type]


def test_hex_text_given_as_an_apdu_points_at_parse_hex() -> None:
    with pytest.raises(LocalProtocolError, match="parse_hex"):
        Command.from_bytes("00A4040000")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="parse_hex"):
        Response.from_bytes("9000")  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["9000", 0x9000, None])
def test_response_from_non_bytes_is_a_local_protocol_error(raw: object) -> None:
    # Not the card's fault: a caller error, unlike a short answer (RemoteProtocolError).
    with pytest.raises(LocalProtocolError, match="a response APDU must be bytes, not"):
        Response.from_bytes(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{"le": "256"}, {"le": True}, {"le": 1.5}, {"cla": True}, {"extended": "yes"}],
)
def test_fields_of_the_wrong_type_are_refused(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"cla": 0, "ins": 0xB2, "p1": 1, "p2": 0x0C, **kwargs}
    with pytest.raises(LocalProtocolError):
        Command(**fields)  # type: ignore[arg-type]


def test_with_le_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="Le must be an integer"):
        Command(0, 0xB2, 1, 0x0C, le=256).with_le("10")  # type: ignore[arg-type]


# --- repr: what the answer is, never its data ----------------------------------------------


def test_the_leak_check_finds_the_card_data_in_the_record() -> None:
    # So the repr tests below can fail: the old dataclass repr printed the bytes (the name
    # as text, the PAN as escapes), and a hex dump shows the PAN, track 2 and name.
    assert visa_data_in(repr(VISA_RECORD)) == [
        VISA_NAME,
        repr(bytes.fromhex(VISA_PAN))[2:-1],
        repr(bytes.fromhex(VISA_TRACK2))[2:-1],
    ]
    assert visa_data_in(VISA_RECORD.hex().upper()) == [
        VISA_PAN,
        VISA_TRACK2,
        VISA_NAME.encode().hex().upper(),
    ]


def test_response_repr_shows_the_status_word_and_length_not_the_data() -> None:
    response = Response.from_bytes(VISA_RECORD)
    assert repr(response) == "<Response SW 9000, 67 data bytes>"
    assert visa_data_in(repr(response)) == [] and visa_data_in(str(response)) == []
    assert visa_data_in(repr([response])) == []  # inside containers too
    assert response.describe() == "SW 9000, 67 data bytes"


@pytest.mark.parametrize(
    ("response", "text"),
    [
        (Response(b"", 0x6A, 0x82), "<Response SW 6A82, no data>"),
        (Response(b"\x01", 0x61, 0x10), "<Response SW 6110, 1 data byte>"),
        # Fields of the wrong type: a repr must still not raise.
        (Response(b"", 0x900, None), "<Response SW ????, no data>"),  # type: ignore[arg-type]
    ],
)
def test_response_repr_formats(response: Response, text: str) -> None:
    assert repr(response) == text


def test_response_equality_is_still_by_value() -> None:
    assert Response.from_bytes(VISA_RECORD) == Response(VISA_RECORD[:-2], 0x90, 0x00)
    assert Response.from_bytes(VISA_RECORD) != Response(VISA_RECORD[:-2], 0x62, 0x83)
    assert hash(Response(b"\x01", 0x90, 0)) == hash(Response(b"\x01", 0x90, 0))


def test_command_repr_hides_pin_data_only() -> None:
    pin_block = bytes.fromhex("241234FFFFFFFFFF")  # ISO 9564 format 2, PIN 1234
    verify = Command(0x00, 0x20, 0x00, 0x80, pin_block)
    change = Command(0x84, 0x24, 0x00, 0x01, pin_block + bytes(8))
    for command in (verify, change):
        shown = repr(command)
        assert "1234" not in shown and pin_block.hex() not in shown.lower()
        assert "PIN data hidden" in shown
    assert repr(verify) == (
        "Command(cla=0, ins=32, p1=0, p2=128, data=<8 bytes of PIN data hidden>, le=None, "
        "extended=False)"
    )
    select = Command(0x00, 0xA4, 0x04, 0x00, b"2PAY.SYS.DDF01", le=256)
    assert repr(select) == (
        "Command(cla=0, ins=164, p1=4, p2=0, data=b'2PAY.SYS.DDF01', le=256, extended=False)"
    )
    assert "PIN" not in repr(Command(0x00, 0x20, 0x00, 0x80))  # no data: nothing to hide
