"""Reader control commands over PC/SC: part 10 features, CCID escape, ACS firmware.

* ``SCARD_CTL_CODE(code)`` is ``0x42000000 + code`` with pcsc-lite (Linux, macOS) and
  ``0x00310000 | code << 2`` with WinSCard.
* PC/SC part 10 ``GET_FEATURE_REQUEST`` (``SCARD_CTL_CODE(3400)``, 0x42000D48 on Linux)
  answers a list of TLVs ``tag, 4, control code (big-endian)``; :data:`FEATURES` names
  the tags. ``FEATURE_GET_TLV_PROPERTIES`` then gives reader properties
  (:data:`TLV_PROPERTIES`: firmware ID, USB VID/PID, maximum APDU size...).
* Escape commands go to ``FEATURE_CCID_ESC_COMMAND`` when the reader lists it (libccid
  does so only with bit 0 of ``ifdDriverOptions`` set in its ``Info.plist``), else to
  ``IOCTL_CCID_ESCAPE`` = ``SCARD_CTL_CODE(3500)``, the code ACS's own driver and the
  Windows CCID driver use.
* Firmware of the common ACS readers (:data:`FIRMWARE_COMMANDS`): the ACR122U answers the
  pseudo-APDU ``FF 00 48 00 00`` (through transmit) with ASCII such as ``ACR122U215``; the
  ACR1252U, ACR1255U-J1 and ACR1281U answer the escape ``E0 00 00 18 00`` with
  ``E1 00 00 00 <length> <ASCII>``.

:func:`probe_reader` gathers all of it for the self-test as :class:`ReaderFindings`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..errors import ContactlessError, RemoteProtocolError
from .base import ReaderIdentity

__all__ = [
    "CM_IOCTL_GET_FEATURE_REQUEST",
    "FEATURES",
    "FIRMWARE_COMMANDS",
    "IOCTL_CCID_ESCAPE",
    "TLV_PROPERTIES",
    "Finding",
    "FirmwareCommand",
    "ReaderFindings",
    "escape",
    "get_features",
    "get_tlv_properties",
    "parse_features",
    "parse_tlv_properties",
    "probe_reader",
    "read_firmware",
    "scard_ctl_code",
]


def scard_ctl_code(code: int, *, windows: bool = sys.platform == "win32") -> int:
    """``SCARD_CTL_CODE(code)`` as the platform's PC/SC defines it.

    >>> hex(scard_ctl_code(3500, windows=False)), hex(scard_ctl_code(3500, windows=True))
    ('0x42000dac', '0x3136b0')
    """
    return (0x31 << 16 | code << 2) if windows else 0x42000000 + code


#: PC/SC part 10: ask the reader which features it supports.
CM_IOCTL_GET_FEATURE_REQUEST = scard_ctl_code(3400)
#: The escape control code of ACS's driver and the Windows CCID driver.
IOCTL_CCID_ESCAPE = scard_ctl_code(3500)

#: PC/SC part 10 feature tags (pcsc-lite reader.h) -> names.
FEATURES: dict[int, str] = {
    0x01: "VERIFY_PIN_START",
    0x02: "VERIFY_PIN_FINISH",
    0x03: "MODIFY_PIN_START",
    0x04: "MODIFY_PIN_FINISH",
    0x05: "GET_KEY_PRESSED",
    0x06: "VERIFY_PIN_DIRECT",
    0x07: "MODIFY_PIN_DIRECT",
    0x08: "MCT_READER_DIRECT",
    0x09: "MCT_UNIVERSAL",
    0x0A: "IFD_PIN_PROPERTIES",
    0x0B: "ABORT",
    0x0C: "SET_SPE_MESSAGE",
    0x0D: "VERIFY_PIN_DIRECT_APP_ID",
    0x0E: "MODIFY_PIN_DIRECT_APP_ID",
    0x0F: "WRITE_DISPLAY",
    0x10: "GET_KEY",
    0x11: "IFD_DISPLAY_PROPERTIES",
    0x12: "GET_TLV_PROPERTIES",
    0x13: "CCID_ESC_COMMAND",
    0x20: "EXECUTE_PACE",
}

#: PC/SC part 10 GET_TLV_PROPERTIES tags -> (name, "int" little-endian | "text").
TLV_PROPERTIES: dict[int, tuple[str, Literal["int", "text"]]] = {
    0x01: ("wLcdLayout", "int"),
    0x02: ("bEntryValidationCondition", "int"),
    0x03: ("bTimeOut2", "int"),
    0x04: ("wLcdMaxCharacters", "int"),
    0x05: ("wLcdMaxLines", "int"),
    0x06: ("bMinPINSize", "int"),
    0x07: ("bMaxPINSize", "int"),
    0x08: ("sFirmwareID", "text"),
    0x09: ("bPPDUSupport", "int"),
    0x0A: ("dwMaxAPDUDataSize", "int"),
    0x0B: ("wIdVendor", "int"),
    0x0C: ("wIdProduct", "int"),
}


def parse_features(data: bytes) -> dict[str, int]:
    """Parse a GET_FEATURE_REQUEST answer into ``{feature name: control code}``.

    >>> parse_features(bytes.fromhex("13 04 42 33 00 01 12 04 42 33 00 02"))
    {'CCID_ESC_COMMAND': 1110638593, 'GET_TLV_PROPERTIES': 1110638594}

    Unknown tags keep their number (``FEATURE_0x30``). A truncated entry raises
    :class:`~contactless.errors.RemoteProtocolError` naming its offset.
    """
    features: dict[str, int] = {}
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise RemoteProtocolError(
                f"feature list truncated at offset {offset}: a tag without a length"
            )
        tag, length = data[offset], data[offset + 1]
        value = data[offset + 2 : offset + 2 + length]
        if length != 4 or len(value) != 4:
            raise RemoteProtocolError(
                f"feature 0x{tag:02X} at offset {offset} has a {len(value)}-byte value "
                f"(length byte {length}); a control code takes 4"
            )
        features[FEATURES.get(tag, f"FEATURE_0x{tag:02X}")] = int.from_bytes(value, "big")
        offset += 2 + length
    return features


def parse_tlv_properties(data: bytes) -> dict[str, int | str]:
    """Parse a GET_TLV_PROPERTIES answer: integers are little-endian, ``sFirmwareID`` is
    text. Unknown tags are kept as hex text under ``property_0xNN``.

    >>> parse_tlv_properties(bytes.fromhex("0B 02 2F 07 0C 02 52 12 08 03 31 2E 30"))
    {'wIdVendor': 1839, 'wIdProduct': 4690, 'sFirmwareID': '1.0'}
    """
    properties: dict[str, int | str] = {}
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise RemoteProtocolError(f"TLV properties truncated at offset {offset}")
        tag, length = data[offset], data[offset + 1]
        value = data[offset + 2 : offset + 2 + length]
        if len(value) != length:
            raise RemoteProtocolError(
                f"TLV property 0x{tag:02X} at offset {offset} announces {length} bytes "
                f"but {len(value)} follow"
            )
        name, kind = TLV_PROPERTIES.get(tag, (f"property_0x{tag:02X}", "hex"))
        if kind == "int":
            properties[name] = int.from_bytes(value, "little")
        elif kind == "text":
            properties[name] = value.split(b"\x00", 1)[0].decode("ascii", "replace")
        else:
            properties[name] = value.hex().upper()
        offset += 2 + length
    return properties


class ReaderControl(Protocol):
    """What these functions need from a reader (a :class:`~.pcsc.PcscTransport` fits)."""

    reader: str | None
    identity: ReaderIdentity

    def control(self, code: int, data: bytes = b"", *, timeout: float | None = None) -> bytes: ...

    def transmit(self, apdu: bytes, *, timeout: float | None = None) -> bytes: ...


def get_features(reader: ReaderControl, *, timeout: float = 2.0) -> dict[str, int]:
    """The reader's part 10 features; ``{}`` when the driver has none. A malformed
    answer raises :class:`~contactless.errors.RemoteProtocolError`."""
    try:
        answer = reader.control(CM_IOCTL_GET_FEATURE_REQUEST, b"", timeout=timeout)
    except ContactlessError:
        return {}
    return parse_features(answer)


def get_tlv_properties(
    reader: ReaderControl, features: dict[str, int], *, timeout: float = 2.0
) -> dict[str, int | str]:
    """The reader's part 10 TLV properties (``{}`` when it lists no GET_TLV_PROPERTIES)."""
    code = features.get("GET_TLV_PROPERTIES")
    if code is None:
        return {}
    return parse_tlv_properties(reader.control(code, b"", timeout=timeout))


def escape(
    reader: ReaderControl,
    command: bytes,
    *,
    features: dict[str, int] | None = None,
    timeout: float = 2.0,
) -> bytes:
    """Send a vendor escape command: to FEATURE_CCID_ESC_COMMAND's code when the reader
    lists it, else to :data:`IOCTL_CCID_ESCAPE`."""
    if features is None:
        features = get_features(reader, timeout=timeout)
    code = features.get("CCID_ESC_COMMAND", IOCTL_CCID_ESCAPE)
    return reader.control(code, command, timeout=timeout)


# --- firmware -------------------------------------------------------------------------------


def _ascii_answer(answer: bytes) -> str | None:
    """The ACR122U's answer to FF 00 48 00 00: ASCII, sometimes followed by 90 00. A bare
    status word (the reader refused) or non-text bytes are no answer."""
    if len(answer) > 2 and answer.endswith(b"\x90\x00"):
        answer = answer[:-2]
    text = answer.rstrip(b"\x00 ")
    if len(text) < 3 or any(byte < 0x20 or byte > 0x7E for byte in text):
        return None
    return text.decode("ascii")


def _acs_escape_answer(answer: bytes) -> str | None:
    """ACS escape answer: E1 00 00 00 <length> <ASCII firmware>."""
    if len(answer) < 5 or answer[0] != 0xE1:
        return None
    return _ascii_answer(answer[5 : 5 + answer[4]])


@dataclass(frozen=True, slots=True)
class FirmwareCommand:
    """How one reader family reports its firmware."""

    pattern: str  # searched in the reader name (or the model given)
    via: Literal["transmit", "escape"]
    command: bytes
    parse: Callable[[bytes], str | None]


#: Documented firmware commands of ACS readers, first match wins.
FIRMWARE_COMMANDS: tuple[FirmwareCommand, ...] = (
    FirmwareCommand(r"ACR122", "transmit", bytes.fromhex("FF00480000"), _ascii_answer),
    FirmwareCommand(r"ACR1252", "escape", bytes.fromhex("E000001800"), _acs_escape_answer),
    FirmwareCommand(r"ACR1255", "escape", bytes.fromhex("E000001800"), _acs_escape_answer),
    FirmwareCommand(r"ACR1281", "escape", bytes.fromhex("E000001800"), _acs_escape_answer),
)

_ESCAPE_REMEDY = (
    "enable escape commands in the CCID driver: set ifdDriverOptions to 0x0001 in "
    "/usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist and restart pcscd "
    "(see docs/pcsc.md)"
)

Status = Literal["ok", "warning", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One self-test observation: what was checked, how it went, what to do."""

    check: str
    status: Status
    message: str
    value: str | None = None
    remedy: str | None = None


@dataclass(frozen=True, slots=True)
class ReaderFindings:
    """What a probe learned about a PC/SC reader."""

    reader: str
    identity: ReaderIdentity
    features: dict[str, int] = field(default_factory=dict)
    properties: dict[str, int | str] = field(default_factory=dict)
    firmware: str | None = None
    findings: tuple[Finding, ...] = ()

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (control codes in hex)."""
        return {
            "reader": self.reader,
            "identity": {
                "vendor": self.identity.vendor,
                "model": self.identity.model,
                "firmware": self.identity.firmware,
                "serial": self.identity.serial,
                "driver": self.identity.driver,
            },
            "features": {name: f"0x{code:08X}" for name, code in self.features.items()},
            "properties": dict(self.properties),
            "firmware": self.firmware,
            "findings": [
                {
                    "check": finding.check,
                    "status": finding.status,
                    "message": finding.message,
                    "value": finding.value,
                    "remedy": finding.remedy,
                }
                for finding in self.findings
            ],
        }


def _firmware_command(name: str) -> FirmwareCommand | None:
    for candidate in FIRMWARE_COMMANDS:
        if re.search(candidate.pattern, name, re.IGNORECASE):
            return candidate
    return None


def read_firmware(
    reader: ReaderControl,
    *,
    model: str | None = None,
    features: dict[str, int] | None = None,
    timeout: float = 2.0,
) -> Finding:
    """Ask an ACS reader for its firmware version (model from ``model`` or the reader
    name). The finding's ``value`` is the firmware text when it worked."""
    name = model or reader.reader or reader.identity.model or ""
    command = _firmware_command(name)
    if command is None:
        return Finding(
            "firmware",
            "skipped",
            f"no documented firmware command for {name or 'this reader'}",
        )
    how = f"{command.via} {command.command.hex(' ').upper()}"
    try:
        if command.via == "transmit":
            answer = reader.transmit(command.command, timeout=timeout)
        else:
            answer = escape(reader, command.command, features=features, timeout=timeout)
    except ContactlessError as error:
        remedy = _ESCAPE_REMEDY if command.via == "escape" else error.remedy
        return Finding("firmware", "failed", f"{how} failed: {error.message}", remedy=remedy)
    firmware = command.parse(answer)
    if firmware is None:
        return Finding(
            "firmware",
            "failed",
            f"{how} answered {answer.hex().upper() or 'nothing'}, which is not a firmware version",
            remedy="check that the reader really is the model its name says",
        )
    return Finding("firmware", "ok", f"firmware {firmware} ({how})", value=firmware)


def probe_reader(
    reader: ReaderControl, *, model: str | None = None, timeout: float = 2.0
) -> ReaderFindings:
    """Everything the self-test wants to know about a PC/SC reader, without raising for
    what the reader cannot do: identity, part 10 features and properties, firmware."""
    findings: list[Finding] = []
    try:
        features = get_features(reader, timeout=timeout)
    except RemoteProtocolError as error:
        features = {}
        findings.append(Finding("features", "warning", f"malformed feature list: {error}"))
    else:
        if features:
            names = ", ".join(sorted(features))
            findings.append(Finding("features", "ok", f"PC/SC part 10 features: {names}"))
        else:
            findings.append(
                Finding("features", "skipped", "the driver reports no PC/SC part 10 features")
            )
    properties: dict[str, int | str] = {}
    try:
        properties = get_tlv_properties(reader, features, timeout=timeout)
    except ContactlessError as error:
        findings.append(Finding("properties", "warning", f"TLV properties unreadable: {error}"))
    name = model or reader.reader or ""
    command = _firmware_command(name)
    if command is not None and command.via == "escape" and "CCID_ESC_COMMAND" not in features:
        findings.append(
            Finding(
                "escape",
                "warning",
                "the driver does not list FEATURE_CCID_ESC_COMMAND; trying SCARD_CTL_CODE(3500)",
                remedy=_ESCAPE_REMEDY,
            )
        )
    firmware = read_firmware(reader, model=model, features=features, timeout=timeout)
    findings.append(firmware)
    version = firmware.value
    if version is None and isinstance(properties.get("sFirmwareID"), str):
        version = str(properties["sFirmwareID"])
    return ReaderFindings(
        reader=reader.reader or "",
        identity=reader.identity,
        features=features,
        properties=properties,
        firmware=version or reader.identity.firmware,
        findings=tuple(findings),
    )
