"""ISO 7816-4 command and response APDUs, as frozen values over ``bytes``.

Commands cover cases 1-4 in short and extended length::

    case 1   CLA INS P1 P2
    case 2   CLA INS P1 P2 Le                  (extended: 00 Le1 Le2)
    case 3   CLA INS P1 P2 Lc data             (extended: 00 Lc1 Lc2 data)
    case 4   CLA INS P1 P2 Lc data Le          (extended: 00 Lc1 Lc2 data Le1 Le2)

``Le`` is the number of bytes expected: 1-256 in short form (256 is written ``00``),
1-65536 in extended form (65536 is written ``0000``); ``None`` means no Le field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import LocalProtocolError, RemoteProtocolError

__all__ = ["INS_NAMES", "PIN_DATA_INS", "Command", "Response"]

#: Instruction bytes the library uses or meets, by name (for messages and traces).
INS_NAMES: dict[int, str] = {
    0x04: "DEACTIVATE FILE",
    0x0E: "ERASE BINARY",
    0x20: "VERIFY",
    0x24: "CHANGE REFERENCE DATA",
    0x2A: "PERFORM SECURITY OPERATION",
    0x44: "ACTIVATE FILE",
    0x70: "MANAGE CHANNEL",
    0x82: "EXTERNAL AUTHENTICATE",
    0x84: "GET CHALLENGE",
    0x88: "INTERNAL AUTHENTICATE",
    0xA4: "SELECT",
    0xA8: "GET PROCESSING OPTIONS",
    0xAE: "GENERATE AC",
    0xB0: "READ BINARY",
    0xB2: "READ RECORD",
    0xC0: "GET RESPONSE",
    0xCA: "GET DATA",
    0xCB: "GET DATA",
    0xD6: "UPDATE BINARY",
    0xDC: "UPDATE RECORD",
    0xE2: "APPEND RECORD",
}


#: Instructions whose data is PIN data (a PIN block, plaintext or enciphered): VERIFY, and
#: CHANGE REFERENCE DATA (EMV's PIN CHANGE/UNBLOCK). Never shown, like card data.
PIN_DATA_INS: frozenset[int] = frozenset({0x20, 0x24})


def _check_byte(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise LocalProtocolError(f"{name} must be a byte (0-255), got {value!r:.40}")


def _byte_text(value: object) -> str:
    """A status byte in hex; ``??`` for a value that is not one (a repr must not raise)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFF:
        return f"{value:02X}"
    return "??"


def _raw_bytes(raw: object, what: str) -> bytes:
    """``raw`` as ``bytes``; anything else (a hex ``str`` included: bytes are bytes here)
    is the caller's mistake."""
    if isinstance(raw, bytes | bytearray | memoryview):
        return bytes(raw)
    hint = (
        " (parse hex text with contactless.hexutil.parse_hex first)" if isinstance(raw, str) else ""
    )
    raise LocalProtocolError(f"{what} must be bytes, not {type(raw).__name__}{hint}")


@dataclass(frozen=True, slots=True)
class Command:
    """A command APDU.

    >>> Command(0x00, 0xA4, 0x04, 0x00, b"2PAY.SYS.DDF01", le=256).hex()
    '00A404000E325041592E5359532E444446303100'
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    #: Force extended length encoding even when short would do.
    extended: bool = field(default=False)

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            _check_byte(name.upper(), getattr(self, name))
        if not isinstance(self.data, bytes):
            if isinstance(self.data, bytearray | memoryview):
                object.__setattr__(self, "data", bytes(self.data))
            else:
                raise LocalProtocolError(
                    f"command data must be bytes, not {type(self.data).__name__}"
                )
        if len(self.data) > 65535:
            raise LocalProtocolError(f"command data of {len(self.data)} bytes exceeds 65535")
        if self.le is not None and (
            isinstance(self.le, bool) or not isinstance(self.le, int) or not 1 <= self.le <= 65536
        ):
            raise LocalProtocolError(f"Le must be 1-65536 (or None for no Le), got {self.le!r:.40}")
        if not isinstance(self.extended, bool):
            raise LocalProtocolError(f"extended must be True or False, got {self.extended!r:.40}")
        if not self.extended and (len(self.data) > 255 or (self.le or 0) > 256):
            object.__setattr__(self, "extended", True)

    def __repr__(self) -> str:
        # The dataclass repr, except that PIN data is never shown.
        data = repr(self.data)
        if self.ins in PIN_DATA_INS and self.data:
            data = f"<{len(self.data)} bytes of PIN data hidden>"
        return (
            f"Command(cla={self.cla!r}, ins={self.ins!r}, p1={self.p1!r}, p2={self.p2!r}, "
            f"data={data}, le={self.le!r}, extended={self.extended!r})"
        )

    @property
    def case(self) -> int:
        """ISO 7816-4 case: 1 (no data, no Le), 2 (Le only), 3 (data only), 4 (both)."""
        if self.data:
            return 4 if self.le is not None else 3
        return 2 if self.le is not None else 1

    @property
    def name(self) -> str:
        """The instruction's name, e.g. ``"READ RECORD"``, or ``"INS 7F"`` when unknown."""
        return INS_NAMES.get(self.ins, f"INS {self.ins:02X}")

    def describe(self) -> str:
        """A short human description used in errors, e.g. ``READ RECORD SFI 1 record 2``."""
        if self.ins == 0xB2:
            return f"READ RECORD SFI {self.p2 >> 3} record {self.p1}"
        if self.ins == 0xA4 and self.p1 == 0x04 and self.data:
            return f"SELECT {self.data.hex().upper()}"
        if self.ins in (0xCA, 0xCB):
            return f"GET DATA {self.p1:02X}{self.p2:02X}"
        return self.name

    def to_bytes(self) -> bytes:
        """Encode as sent on the wire."""
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        body = b""
        if self.extended:
            if self.data:
                body = b"\x00" + len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                le = (self.le & 0xFFFF).to_bytes(2, "big")
                body += le if self.data else b"\x00" + le
        else:
            if self.data:
                body = bytes((len(self.data),)) + self.data
            if self.le is not None:
                body += bytes((self.le & 0xFF,))
        return header + body

    __bytes__ = to_bytes

    def hex(self) -> str:
        """The encoded command in upper-case hex."""
        return self.to_bytes().hex().upper()

    @classmethod
    def from_bytes(cls, raw: bytes | bytearray | memoryview) -> Command:
        """Parse an encoded command, checking that Lc and Le agree with its length.

        Raises :class:`~contactless.errors.LocalProtocolError` naming the inconsistency, or
        when ``raw`` is not bytes (for hex text, use :func:`contactless.hexutil.parse_hex`).
        """
        raw = _raw_bytes(raw, "a command APDU")
        if len(raw) < 4:
            raise LocalProtocolError(
                f"a command APDU needs at least 4 bytes (CLA INS P1 P2), got {len(raw)}"
            )
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        n = len(body)
        if n == 0:
            return cls(cla, ins, p1, p2)
        if n == 1:
            return cls(cla, ins, p1, p2, le=body[0] or 256)
        if body[0] != 0 or n == 2:
            # Short form: Lc data [Le].
            lc = body[0]
            if lc == 0:
                raise LocalProtocolError(f"Lc is 00 in a short command of {len(raw)} bytes")
            if n == 1 + lc:
                return cls(cla, ins, p1, p2, body[1:])
            if n == 2 + lc:
                return cls(cla, ins, p1, p2, body[1 : 1 + lc], le=body[-1] or 256)
            raise LocalProtocolError(
                f"Lc says {lc} data bytes but the command carries {n - 1} bytes after Lc"
            )
        # Extended form: 00 then Le1 Le2 (case 2E) or Lc1 Lc2 data [Le1 Le2].
        if n == 3:
            return cls(
                cla, ins, p1, p2, le=int.from_bytes(body[1:3], "big") or 65536, extended=True
            )
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise LocalProtocolError(f"extended Lc is 0000 in a command of {len(raw)} bytes")
        if n == 3 + lc:
            return cls(cla, ins, p1, p2, body[3:], extended=True)
        if n == 5 + lc:
            le = int.from_bytes(body[-2:], "big") or 65536
            return cls(cla, ins, p1, p2, body[3 : 3 + lc], le=le, extended=True)
        raise LocalProtocolError(
            f"extended Lc says {lc} data bytes but the command carries {n - 3} bytes after Lc"
        )

    def with_le(self, le: int) -> Command:
        """The same command with another Le (used to re-issue after ``6Cxx``); ``0`` means
        256, as SW2 of ``6C00`` does."""
        if isinstance(le, bool) or not isinstance(le, int):
            raise LocalProtocolError(f"Le must be an integer, got {le!r:.40}")
        return Command(self.cla, self.ins, self.p1, self.p2, self.data, le or 256, self.extended)


@dataclass(frozen=True, slots=True)
class Response:
    """A response APDU: data plus the status word SW1 SW2."""

    data: bytes
    sw1: int
    sw2: int

    @classmethod
    def from_bytes(cls, raw: bytes | bytearray | memoryview) -> Response:
        """Split a received response; fewer than 2 bytes is a
        :class:`~contactless.errors.RemoteProtocolError`; ``raw`` that is not bytes (hex
        text included) is a :class:`~contactless.errors.LocalProtocolError`."""
        raw = _raw_bytes(raw, "a response APDU")
        if len(raw) < 2:
            raise RemoteProtocolError(
                "a response APDU needs at least SW1 SW2, "
                f"got {len(raw)} byte(s): {raw.hex().upper()}"
            )
        return cls(raw[:-2], raw[-2], raw[-1])

    @property
    def sw(self) -> int:
        """SW1 SW2 as one integer, e.g. ``0x9000``."""
        return (self.sw1 << 8) | self.sw2

    @property
    def ok(self) -> bool:
        """True for ``9000`` (normal processing)."""
        return self.sw1 == 0x90 and self.sw2 == 0x00

    def describe(self) -> str:
        """What the answer is, without its data, e.g. ``SW 9000, 65 data bytes``."""
        size = len(self.data)
        data = "no data" if not size else f"{size} data byte{'' if size == 1 else 's'}"
        return f"SW {_byte_text(self.sw1)}{_byte_text(self.sw2)}, {data}"

    def __repr__(self) -> str:
        # No data bytes: a READ RECORD answer holds the PAN, track 2 and cardholder name.
        return f"<Response {self.describe()}>"

    def to_bytes(self) -> bytes:
        """Data followed by SW1 SW2, as received."""
        return self.data + bytes((self.sw1, self.sw2))

    __bytes__ = to_bytes

    def hex(self) -> str:
        """The response (data and SW) in upper-case hex."""
        return self.to_bytes().hex().upper()
