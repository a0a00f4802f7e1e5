"""PC/SC return codes (pcsc-lite and WinSCard) and the contactless error each one becomes.

Every ``SCard*`` call returns a 32-bit code; :func:`pcsc_error` turns a failing one into a
:class:`~contactless.errors.ContactlessError` subclass whose message names the code, what
was being done and on which reader, and whose remedy says what to try. The table is data:
one :class:`PcscCode` row per code, so a new code is one new row, not a new branch.

Two codes are ambiguous: ``SCARD_E_NOT_TRANSACTED`` and ``SCARD_F_COMM_ERROR`` are what
a reader reports both for a card that left the field mid-exchange and for a plain
transmission error. Their rows say ``ambiguous=True``; the transport then asks pcscd
whether the card is still there before it picks :class:`~contactless.errors.CardRemoved`
or :class:`~contactless.errors.TransportError`.

This module imports nothing from pyscard, so the table can be read (and tested) without it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import (
    CardRemoved,
    ConfigError,
    ContactlessError,
    NoCard,
    PermissionDenied,
    ReaderBusy,
    ReaderNotFound,
    ServiceUnavailable,
    TransportError,
    TransportTimeout,
)

__all__ = [
    "AMBIGUOUS_CODES",
    "PCSC_CODES",
    "SCARD_E_NOT_TRANSACTED",
    "SCARD_E_NO_READERS_AVAILABLE",
    "SCARD_E_NO_SERVICE",
    "SCARD_E_NO_SMARTCARD",
    "SCARD_E_SHARING_VIOLATION",
    "SCARD_E_TIMEOUT",
    "SCARD_E_UNKNOWN_READER",
    "SCARD_E_UNSUPPORTED_FEATURE",
    "SCARD_F_COMM_ERROR",
    "SCARD_S_SUCCESS",
    "SCARD_W_REMOVED_CARD",
    "SCARD_W_RESET_CARD",
    "PcscCode",
    "code_name",
    "lookup",
    "pcsc_error",
]

SCARD_S_SUCCESS = 0x00000000
SCARD_E_CANCELLED = 0x80100002
SCARD_E_UNKNOWN_READER = 0x80100009
SCARD_E_TIMEOUT = 0x8010000A
SCARD_E_SHARING_VIOLATION = 0x8010000B
SCARD_E_NO_SMARTCARD = 0x8010000C
SCARD_F_COMM_ERROR = 0x80100013
SCARD_E_NOT_TRANSACTED = 0x80100016
SCARD_E_NO_SERVICE = 0x8010001D
SCARD_E_UNSUPPORTED_FEATURE = 0x8010001F  # pcsc-lite; WinSCard uses 0x80100022
SCARD_E_NO_READERS_AVAILABLE = 0x8010002E
SCARD_W_RESET_CARD = 0x80100068
SCARD_W_REMOVED_CARD = 0x80100069

_START_PCSCD = "start pcscd (systemctl start pcscd.socket, or pcscd --foreground to watch it)"
_RECONNECT = "disconnect and reconnect; if it keeps happening, unplug and replug the reader"
_BUG = "this looks like a bug in contactless or the reader driver; please report it"


@dataclass(frozen=True, slots=True)
class PcscCode:
    """One PC/SC return code: its name, what it means, the error it becomes, the remedy.

    ``ambiguous`` marks the codes a reader returns both when the card left the field and
    for a transmission error; the transport checks card presence to tell them apart.
    """

    code: int
    name: str
    meaning: str
    error: type[ContactlessError]
    remedy: str | None = None
    ambiguous: bool = False


#: Every code pcsc-lite (pcsclite.h) and WinSCard (winerror.h) define for SCard* calls.
PCSC_CODES: tuple[PcscCode, ...] = (
    PcscCode(0x80100001, "SCARD_F_INTERNAL_ERROR", "internal consistency check failed in the PC/SC service", TransportError, "restart pcscd"),  # noqa: E501
    PcscCode(SCARD_E_CANCELLED, "SCARD_E_CANCELLED", "the action was cancelled", TransportError, "try again"),  # noqa: E501
    PcscCode(0x80100003, "SCARD_E_INVALID_HANDLE", "the connection handle is no longer valid", TransportError, _RECONNECT),  # noqa: E501
    PcscCode(0x80100004, "SCARD_E_INVALID_PARAMETER", "a parameter could not be interpreted", TransportError, _BUG),  # noqa: E501
    PcscCode(0x80100005, "SCARD_E_INVALID_TARGET", "registry startup information is missing or invalid", TransportError, "reinstall the reader driver"),  # noqa: E501
    PcscCode(0x80100006, "SCARD_E_NO_MEMORY", "not enough memory in the PC/SC service", TransportError, "restart pcscd"),  # noqa: E501
    PcscCode(0x80100007, "SCARD_F_WAITED_TOO_LONG", "an internal wait timed out", TransportTimeout, _RECONNECT),  # noqa: E501
    PcscCode(0x80100008, "SCARD_E_INSUFFICIENT_BUFFER", "the answer is larger than the receive buffer", TransportError, "ask for less data (a smaller Le)"),  # noqa: E501
    PcscCode(SCARD_E_UNKNOWN_READER, "SCARD_E_UNKNOWN_READER", "the reader name is not known", ReaderNotFound, "run `contactless readers` to list the connected readers"),  # noqa: E501
    PcscCode(SCARD_E_TIMEOUT, "SCARD_E_TIMEOUT", "the user-specified timeout expired", TransportTimeout),  # noqa: E501
    PcscCode(SCARD_E_SHARING_VIOLATION, "SCARD_E_SHARING_VIOLATION", "another application holds the card or reader exclusively", ReaderBusy, "close the other program using the reader, or connect in shared mode"),  # noqa: E501
    PcscCode(SCARD_E_NO_SMARTCARD, "SCARD_E_NO_SMARTCARD", "no card is on the reader", NoCard),
    PcscCode(0x8010000D, "SCARD_E_UNKNOWN_CARD", "the card name is not known", TransportError),
    PcscCode(0x8010000E, "SCARD_E_CANT_DISPOSE", "the card cannot be disposed of as requested", TransportError, _RECONNECT),  # noqa: E501
    PcscCode(0x8010000F, "SCARD_E_PROTO_MISMATCH", "the card does not support the requested protocol", ConfigError, "use ?protocol=any in the reader URI"),  # noqa: E501
    PcscCode(0x80100010, "SCARD_E_NOT_READY", "the reader or card is not ready", TransportError, "wait a moment and try again"),  # noqa: E501
    PcscCode(0x80100011, "SCARD_E_INVALID_VALUE", "a parameter value could not be interpreted", TransportError, _BUG),  # noqa: E501
    PcscCode(0x80100012, "SCARD_E_SYSTEM_CANCELLED", "the operating system cancelled the action (log-off or shutdown)", TransportError, "try again"),  # noqa: E501
    PcscCode(SCARD_F_COMM_ERROR, "SCARD_F_COMM_ERROR", "internal communication error (reader or PC/SC service)", TransportError, _RECONNECT, ambiguous=True),  # noqa: E501
    PcscCode(0x80100014, "SCARD_F_UNKNOWN_ERROR", "an internal error with an unknown cause", TransportError, _RECONNECT),  # noqa: E501
    PcscCode(0x80100015, "SCARD_E_INVALID_ATR", "the card's ATR is invalid", TransportError, "present the card again; the card may be damaged"),  # noqa: E501
    PcscCode(SCARD_E_NOT_TRANSACTED, "SCARD_E_NOT_TRANSACTED", "the reader could not complete the exchange with the card", TransportError, "hold the card still on the reader and try again", ambiguous=True),  # noqa: E501
    PcscCode(0x80100017, "SCARD_E_READER_UNAVAILABLE", "the reader is not currently available", ReaderNotFound, "check the cable; the reader was unplugged or its driver failed"),  # noqa: E501
    PcscCode(0x80100018, "SCARD_P_SHUTDOWN", "the operation was aborted to let the server exit", ServiceUnavailable, _START_PCSCD),  # noqa: E501
    PcscCode(0x80100019, "SCARD_E_PCI_TOO_SMALL", "the PCI receive buffer was too small", TransportError, _BUG),  # noqa: E501
    PcscCode(0x8010001A, "SCARD_E_READER_UNSUPPORTED", "the reader driver does not meet minimal requirements", ReaderNotFound, "update the reader driver"),  # noqa: E501
    PcscCode(0x8010001B, "SCARD_E_DUPLICATE_READER", "the reader driver did not produce a unique reader name", ReaderNotFound, "update the reader driver"),  # noqa: E501
    PcscCode(0x8010001C, "SCARD_E_CARD_UNSUPPORTED", "the card does not meet minimal requirements", TransportError, "this card cannot be read on this reader"),  # noqa: E501
    PcscCode(SCARD_E_NO_SERVICE, "SCARD_E_NO_SERVICE", "the PC/SC service (pcscd) is not running", ServiceUnavailable, _START_PCSCD),  # noqa: E501
    PcscCode(0x8010001E, "SCARD_E_SERVICE_STOPPED", "the PC/SC service (pcscd) has shut down", ServiceUnavailable, _START_PCSCD),  # noqa: E501
    # pcsc-lite gives SCARD_E_UNEXPECTED and SCARD_E_UNSUPPORTED_FEATURE the same value.
    PcscCode(SCARD_E_UNSUPPORTED_FEATURE, "SCARD_E_UNSUPPORTED_FEATURE", "the reader driver does not support this operation", TransportError, "this reader cannot do it; see docs/pcsc.md for escape commands"),  # noqa: E501
    PcscCode(0x80100020, "SCARD_E_ICC_INSTALLATION", "no primary provider for the card", TransportError),  # noqa: E501
    PcscCode(0x80100021, "SCARD_E_ICC_CREATEORDER", "the requested creation order is not supported", TransportError),  # noqa: E501
    PcscCode(0x80100022, "SCARD_E_UNSUPPORTED_FEATURE", "the reader driver does not support this operation", TransportError, "this reader cannot do it; see docs/pcsc.md for escape commands"),  # noqa: E501
    PcscCode(0x80100023, "SCARD_E_DIR_NOT_FOUND", "the directory does not exist on the card", TransportError),  # noqa: E501
    PcscCode(0x80100024, "SCARD_E_FILE_NOT_FOUND", "the file does not exist on the card", TransportError),  # noqa: E501
    PcscCode(0x80100025, "SCARD_E_NO_DIR", "the path is not a directory", TransportError),
    PcscCode(0x80100026, "SCARD_E_NO_FILE", "the path is not a file", TransportError),
    PcscCode(0x80100027, "SCARD_E_NO_ACCESS", "access to the file is denied", PermissionDenied, "check the pcscd access policy (polkit) for this user"),  # noqa: E501
    PcscCode(0x80100028, "SCARD_E_WRITE_TOO_MANY", "the card cannot take more data", TransportError),  # noqa: E501
    PcscCode(0x80100029, "SCARD_E_BAD_SEEK", "the card's file pointer could not be set", TransportError),  # noqa: E501
    PcscCode(0x8010002A, "SCARD_E_INVALID_CHV", "the PIN is wrong", TransportError),
    PcscCode(0x8010002B, "SCARD_E_UNKNOWN_RES_MNG", "an unrecognised error from the resource manager", TransportError, _RECONNECT),  # noqa: E501
    PcscCode(0x8010002C, "SCARD_E_NO_SUCH_CERTIFICATE", "the certificate does not exist", TransportError),  # noqa: E501
    PcscCode(0x8010002D, "SCARD_E_CERTIFICATE_UNAVAILABLE", "the certificate cannot be obtained", TransportError),  # noqa: E501
    PcscCode(SCARD_E_NO_READERS_AVAILABLE, "SCARD_E_NO_READERS_AVAILABLE", "no reader is connected", ReaderNotFound, "plug in the reader; run `contactless readers` to check"),  # noqa: E501
    PcscCode(0x8010002F, "SCARD_E_COMM_DATA_LOST", "a communications error with the card was detected", TransportError, "hold the card still on the reader and try again"),  # noqa: E501
    PcscCode(0x80100030, "SCARD_E_NO_KEY_CONTAINER", "the key container does not exist", TransportError),  # noqa: E501
    PcscCode(0x80100031, "SCARD_E_SERVER_TOO_BUSY", "the PC/SC service is too busy", ReaderBusy, "wait a moment and try again"),  # noqa: E501
    PcscCode(0x80100065, "SCARD_W_UNSUPPORTED_CARD", "the card's ATR conflicts with the reader's configuration", TransportError, "this card cannot be read on this reader"),  # noqa: E501
    PcscCode(0x80100066, "SCARD_W_UNRESPONSIVE_CARD", "the card does not answer reset", NoCard, "present the card again, flat and still"),  # noqa: E501
    PcscCode(0x80100067, "SCARD_W_UNPOWERED_CARD", "power has been removed from the card", NoCard, "reconnect to power the card up again"),  # noqa: E501
    PcscCode(SCARD_W_RESET_CARD, "SCARD_W_RESET_CARD", "another application reset the card", TransportError, "reconnect and start the transaction again"),  # noqa: E501
    PcscCode(SCARD_W_REMOVED_CARD, "SCARD_W_REMOVED_CARD", "the card was removed", CardRemoved),
    PcscCode(0x8010006A, "SCARD_W_SECURITY_VIOLATION", "access was denied for security reasons", PermissionDenied, "check the pcscd access policy (polkit) for this user"),  # noqa: E501
    PcscCode(0x8010006B, "SCARD_W_WRONG_CHV", "the PIN is wrong", TransportError),
    PcscCode(0x8010006C, "SCARD_W_CHV_BLOCKED", "the PIN is blocked", TransportError),
    PcscCode(0x8010006D, "SCARD_W_EOF", "the end of the card file was reached", TransportError),
    PcscCode(0x8010006E, "SCARD_W_CANCELLED_BY_USER", "the user cancelled", TransportError),
    PcscCode(0x8010006F, "SCARD_W_CARD_NOT_AUTHENTICATED", "no PIN was presented to the card", TransportError),  # noqa: E501
    # WinSCard returns Win32 errors too when the service goes away under a call.
    PcscCode(0x00000006, "ERROR_INVALID_HANDLE", "the connection handle is no longer valid", TransportError, _RECONNECT),  # noqa: E501
    PcscCode(0x0000006D, "ERROR_BROKEN_PIPE", "the connection to the PC/SC service broke", ServiceUnavailable, _START_PCSCD),  # noqa: E501
)  # fmt: skip

_BY_CODE: dict[int, PcscCode] = {row.code: row for row in PCSC_CODES}

#: Codes that mean "card gone" or "exchange failed" depending on whether the card is there.
AMBIGUOUS_CODES: frozenset[int] = frozenset(row.code for row in PCSC_CODES if row.ambiguous)


def _unsigned(code: int) -> int:
    # pyscard returns HRESULTs as signed or unsigned longs depending on the platform.
    return code & 0xFFFFFFFF


def lookup(code: int) -> PcscCode | None:
    """The table row for a PC/SC return code (signed or unsigned), or ``None``."""
    return _BY_CODE.get(_unsigned(code))


def code_name(code: int) -> str:
    """``"SCARD_E_NO_SERVICE (0x8010001D)"``, or ``"PC/SC code 0x8010ABCD"`` when unknown."""
    value = _unsigned(code)
    row = _BY_CODE.get(value)
    return f"{row.name} (0x{value:08X})" if row else f"PC/SC code 0x{value:08X}"


def pcsc_error(
    code: int,
    *,
    doing: str,
    reader: str | None = None,
    error: type[ContactlessError] | None = None,
) -> ContactlessError:
    """The contactless error for a failing PC/SC return ``code``.

    ``doing`` says what was being done ("SELECT PPSE", "connecting to the card"),
    ``reader`` names the reader; ``error`` overrides the table's class (the transport
    uses it to settle an ambiguous code). Unknown codes become
    :class:`~contactless.errors.TransportError` naming the code.

    >>> str(pcsc_error(0x8010001D, doing="listing readers"))
    'listing readers failed: the PC/SC service (pcscd) is not running [SCARD_E_NO_SERVICE (0x8010001D)] (start pcscd (systemctl start pcscd.socket, or pcscd --foreground to watch it))'
    """  # noqa: E501
    row = lookup(code)
    where = f" on {reader}" if reader else ""
    if row is None:
        return TransportError(
            f"{doing}{where} failed with {code_name(code)}",
            remedy="look the code up in the PC/SC documentation; " + _RECONNECT,
        )
    cls = error or row.error
    remedy = row.remedy if cls is row.error else None
    return cls(f"{doing}{where} failed: {row.meaning} [{code_name(code)}]", remedy=remedy)
