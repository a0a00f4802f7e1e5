"""A minimal terminal for the emulator tests: builds APDUs by hand and decodes the answers
with contactless.tlv, so the tests see the card exactly as a reader would."""

from __future__ import annotations

from dataclasses import dataclass

from contactless.emulator import VirtualCard
from contactless.tlv import Tlv, decode, find

#: Terminal data for any DOL the profiles use (values as a terminal would send them).
TERMINAL_DATA: dict[str, str] = {
    "9F66": "36004000",  # TTQ: qVSDC, EMV contact, online PIN, signature
    "9F02": "000000001250",
    "9F03": "000000000000",
    "9F1A": "0826",
    "95": "0000008000",
    "5F2A": "0826",
    "9A": "250315",
    "9C": "00",
    "9F37": "5A1C2E3F",
    "9F35": "22",
    "9F40": "6000F0A001",
    "9F45": "0000",
    "9F4C": "0000000000000000",
    "9F34": "1F0302",
    "9F6E": "D8E00000",
    "9F21": "101530",
    "8A": "3030",
    "91": "00112233445566773030",
}


def parse_dol(dol: bytes) -> list[tuple[bytes, int]]:
    """The terminal's own DOL split (independent of the card's)."""
    entries, pos = [], 0
    while pos < len(dol):
        end = pos + 1
        if dol[pos] & 0x1F == 0x1F:
            while dol[end] & 0x80:
                end += 1
            end += 1
        entries.append((dol[pos:end], dol[end]))
        pos = end + 1
    return entries


def dol_data(dol: bytes, overrides: dict[str, str] | None = None) -> bytes:
    values = {**TERMINAL_DATA, **(overrides or {})}
    out = b""
    for tag, length in parse_dol(dol):
        value = bytes.fromhex(values.get(tag.hex().upper(), "00" * length))
        assert len(value) == length, f"test data for {tag.hex()} is not {length} bytes"
        out += value
    return out


@dataclass
class Answer:
    data: bytes
    sw: int

    @property
    def tlv(self) -> list[Tlv]:
        return decode(self.data)

    def find(self, path: str) -> bytes:
        node = find(self.tlv, path)
        assert node is not None, f"{path} not in {self.data.hex().upper()}"
        return node.value


class Terminal:
    """Sends APDUs to a VirtualCard and splits the answers."""

    def __init__(self, card: VirtualCard) -> None:
        self.card = card

    def send(self, apdu: bytes | str) -> Answer:
        raw = bytes.fromhex(apdu) if isinstance(apdu, str) else apdu
        response = self.card.process(raw)
        assert len(response) >= 2
        return Answer(response[:-2], int.from_bytes(response[-2:], "big"))

    def select(self, name: bytes, p2: int = 0x00) -> Answer:
        return self.send(bytes((0x00, 0xA4, 0x04, p2, len(name))) + name + b"\x00")

    def gpo(self, pdol: bytes | None, overrides: dict[str, str] | None = None) -> Answer:
        template = b"\x83" + bytes((len(dol_data(pdol or b"", overrides)),))
        template += dol_data(pdol or b"", overrides)
        return self.send(bytes((0x80, 0xA8, 0x00, 0x00, len(template))) + template + b"\x00")

    def read_record(self, sfi: int, number: int) -> Answer:
        return self.send(bytes((0x00, 0xB2, number, (sfi << 3) | 4, 0x00)))

    def get_data(self, tag: int) -> Answer:
        return self.send(bytes((0x80, 0xCA, tag >> 8, tag & 0xFF, 0x00)))

    def generate_ac(self, p1: int, cdol: bytes, overrides: dict[str, str] | None = None) -> Answer:
        data = dol_data(cdol, overrides)
        return self.send(bytes((0x80, 0xAE, p1, 0x00, len(data))) + data + b"\x00")

    def verify(self, pin: str) -> Answer:
        block = bytes.fromhex(f"2{len(pin):X}{pin}".ljust(16, "F"))
        return self.send(b"\x00\x20\x00\x80\x08" + block)

    def afl_records(self, afl: bytes) -> dict[tuple[int, int], Answer]:
        records = {}
        for start in range(0, len(afl), 4):
            sfi, first, last = afl[start] >> 3, afl[start + 1], afl[start + 2]
            for number in range(first, last + 1):
                records[sfi, number] = self.read_record(sfi, number)
        return records
