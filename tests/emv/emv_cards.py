"""Hand-built card answers for the flow tests: real-world-shaped EMV data, no emulator.

The data follows public EMV traces: the Visa ADVT-style test PAN 4761739001010010 (in
Track 2 and 5A), a Visa PDOL asking for TTQ, amounts, country, TVR, currency, date, type
and unpredictable number, and Mastercard M/Chip-style AFL and CDOL1.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import datetime

from contactless.apdu import Command, Response
from contactless.emv.card import CardData
from contactless.emv.flow import PPSE
from contactless.emv.terminal import TerminalConfig
from contactless.tlv import encode

VISA = bytes.fromhex("A0000000031010")
VISA_ELECTRON = bytes.fromhex("A0000000032010")
MASTERCARD = bytes.fromhex("A0000000041010")
PAN = "4761739001010010"
NAME = b"VISA ACQUIRER TEST/CARD 01"
TRACK2 = bytes.fromhex("4761739001010010D22122011143804400000F")

#: The PDOL Visa qVSDC cards send (9F66 TTQ, 9F02, 9F03, 9F1A, 95, 5F2A, 9A, 9C, 9F37).
VISA_PDOL = bytes.fromhex("9F66049F02069F03069F1A0295055F2A029A039C019F3704")
#: A Mastercard M/Chip CDOL1.
MC_CDOL1 = bytes.fromhex(
    "9F02069F03069F1A0295055F2A029A039C019F37049F35019F45029F4C089F34039F21039F7C14"
)

FIXED_TIME = datetime(2024, 5, 17, 14, 30, 5)


def config(seed: int = 7, **settings: object) -> TerminalConfig:
    """A terminal with a fixed clock and a seeded RNG: every run sends the same bytes."""
    return TerminalConfig(clock=lambda: FIXED_TIME, rng=random.Random(seed), **settings)  # type: ignore[arg-type]


def tlv(tag: str, value: bytes | list[tuple[str, object]]) -> bytes:
    return encode([(tag, _value(value))])


def _value(value: object) -> object:
    if isinstance(value, list):
        return [(tag, _value(inner)) for tag, inner in value]
    return value


def ppse_entry(
    aid: bytes, label: bytes | None = None, priority: int | None = None
) -> tuple[str, object]:
    children: list[tuple[str, object]] = [("4F", aid)]
    if label is not None:
        children.append(("50", label))
    if priority is not None:
        children.append(("87", bytes((priority,))))
    return ("61", children)


def ppse(*entries: tuple[str, object]) -> bytes:
    return tlv("6F", [("84", PPSE), ("A5", [("BF0C", list(entries))])])


def fci(aid: bytes, label: bytes = b"VISA CREDIT", pdol: bytes | None = VISA_PDOL) -> bytes:
    proprietary: list[tuple[str, object]] = [("50", label), ("87", b"\x01")]
    if pdol is not None:
        proprietary.append(("9F38", pdol))
    proprietary.append(("5F2D", b"enfr"))
    return tlv("6F", [("84", aid), ("A5", proprietary)])


def ok(data: bytes = b"") -> Response:
    return Response(data, 0x90, 0x00)


def status(sw: int) -> Response:
    return Response(b"", sw >> 8, sw & 0xFF)


def select(aid: bytes) -> str:
    return f"SELECT {aid.hex().upper()}"


SELECT_PPSE = select(PPSE)

Answer = Response | Callable[[Command], Response]


class ScriptedCard:
    """Answers commands by their description (``"READ RECORD SFI 1 record 2"``); a SELECT
    it has no answer for gets 6A82, anything else fails the test."""

    def __init__(self, answers: Mapping[str, Answer]) -> None:
        self.answers = dict(answers)
        self.sent: list[Command] = []

    def exchange(self, command: Command) -> Response:
        self.sent.append(command)
        answer = self.answers.get(command.describe())
        if answer is None:
            if command.ins == 0xA4:
                return status(0x6A82)
            raise AssertionError(f"the card was not scripted for {command.describe()}")
        return answer(command) if callable(answer) else answer

    @property
    def described(self) -> list[str]:
        return [command.describe() for command in self.sent]


def feed(flow: object, card: ScriptedCard) -> CardData:
    """Drive ``flow`` by hand (no driver): next(), then send() each answer."""
    command = next(flow)  # type: ignore[call-overload]
    while True:
        try:
            command = flow.send(card.exchange(command))  # type: ignore[attr-defined]
        except StopIteration as done:
            result: CardData = done.value
            return result


# --- a Visa qVSDC card: PPSE, PDOL, GPO format 2 with Track 2 and a cryptogram ------------

VISA_CRYPTOGRAM = bytes.fromhex("8A3F0E2D1C5B6A79")
VISA_IAD = bytes.fromhex("06010A03A00000")


def visa_gpo_format2() -> bytes:
    return tlv(
        "77",
        [
            ("82", bytes.fromhex("2000")),
            ("94", bytes.fromhex("18010100")),  # SFI 3, record 1
            ("57", TRACK2),
            ("5F34", b"\x01"),
            ("9F10", VISA_IAD),
            ("9F26", VISA_CRYPTOGRAM),
            ("9F27", b"\x80"),
            ("9F36", bytes.fromhex("0027")),
            ("9F6C", bytes.fromhex("1600")),
        ],
    )


def visa_record() -> bytes:
    return tlv(
        "70",
        [
            ("5A", bytes.fromhex(PAN)),
            ("5F24", bytes.fromhex("221231")),
            ("5F25", bytes.fromhex("190101")),
            ("5F28", bytes.fromhex("0840")),
            ("5F30", bytes.fromhex("0201")),
            ("5F20", NAME),
            ("9F42", bytes.fromhex("0840")),
        ],
    )


def visa_card() -> ScriptedCard:
    return ScriptedCard(
        {
            SELECT_PPSE: ok(ppse(ppse_entry(VISA, b"VISA CREDIT", 1))),
            select(VISA): ok(fci(VISA)),
            "GET PROCESSING OPTIONS": ok(visa_gpo_format2()),
            "READ RECORD SFI 3 record 1": ok(visa_record()),
        }
    )


# --- a Mastercard M/Chip card: GPO format 1, four files, CDOL1 ------------------------------

# SFI 1 record 1; SFI 2 records 1-2 (1 for ODA); SFI 3 records 1-2 (1 for ODA); SFI 4 1-2.
MC_AFL = bytes.fromhex("08010100" + "10010201" + "18010201" + "20010200")
MC_PAN = "5413330089010434"


def mc_records() -> dict[str, Response]:
    return {
        "READ RECORD SFI 1 record 1": ok(
            tlv("70", [("9F6C", bytes.fromhex("0001")), ("9F62", bytes(6))])
        ),
        "READ RECORD SFI 2 record 1": ok(
            tlv(
                "70",
                [
                    ("5A", bytes.fromhex(MC_PAN)),
                    ("5F24", bytes.fromhex("271130")),
                    ("5F28", bytes.fromhex("0056")),
                    ("5F34", b"\x00"),
                    ("8C", MC_CDOL1),
                    ("8E", bytes.fromhex("000000000000000042031E031F03")),
                ],
            )
        ),
        "READ RECORD SFI 2 record 2": ok(tlv("70", [("9F4A", b"\x82")])),
        "READ RECORD SFI 3 record 1": ok(tlv("70", [("8F", b"\x05")])),
        "READ RECORD SFI 3 record 2": ok(tlv("70", [("9F32", b"\x03")])),
        "READ RECORD SFI 4 record 1": ok(tlv("70", [("9F07", bytes.fromhex("FF00"))])),
        "READ RECORD SFI 4 record 2": ok(tlv("70", [("9F08", bytes.fromhex("0002"))])),
    }


def mc_card(gpo: Response | None = None) -> ScriptedCard:
    answers: dict[str, Answer] = {
        SELECT_PPSE: ok(ppse(ppse_entry(MASTERCARD, b"MASTERCARD", 1))),
        select(MASTERCARD): ok(fci(MASTERCARD, b"MASTERCARD", pdol=None)),
        "GET PROCESSING OPTIONS": gpo or ok(tlv("80", bytes.fromhex("1980") + MC_AFL)),
    }
    answers.update(mc_records())
    return ScriptedCard(answers)
