"""Every error the library raises, under one root: :class:`ContactlessError`.

The tree is grouped by phase (opening a reader, exchanging with a card) and by blame (the
caller built something invalid, or the card/reader sent something invalid), so callers can
catch as broadly or as narrowly as they need::

    ContactlessError
    ├── OpenError                     opening a reader failed
    │   ├── BackendUnavailable        (also ImportError) an extra is not installed
    │   ├── ServiceUnavailable        pcscd (or another service) is not running
    │   ├── ReaderNotFound
    │   ├── PermissionDenied          (also PermissionError)
    │   ├── ReaderBusy
    │   └── NoCard
    ├── ExchangeError                 talking to a card failed
    │   ├── CardRemoved
    │   ├── TransportTimeout          (also TimeoutError)
    │   └── TransportError
    ├── LocalProtocolError            the caller built something invalid
    ├── RemoteProtocolError           the card or reader sent something invalid
    │   ├── TlvError                  (offset, tag)
    │   ├── AtrError                  (offset)
    │   └── StatusWordError           (sw1, sw2, meaning, command)
    ├── TraceMismatch                 a replayed exchange differs from the recording
    └── ConfigError                   a configuration, trace or baseline file is unusable

Each message says what happened, where, and (through ``remedy``) what to try. Backends
translate their own exceptions at their boundary; nothing from pyscard or nfcpy leaks out.
"""

from __future__ import annotations

__all__ = [
    "AtrError",
    "BackendUnavailable",
    "CardRemoved",
    "ConfigError",
    "ContactlessError",
    "ExchangeError",
    "LocalProtocolError",
    "NoCard",
    "OpenError",
    "PermissionDenied",
    "ReaderBusy",
    "ReaderNotFound",
    "RemoteProtocolError",
    "ServiceUnavailable",
    "StatusWordError",
    "TlvError",
    "TraceMismatch",
    "TransportError",
    "TransportTimeout",
]


class ContactlessError(Exception):
    """Root of every error raised by ``contactless``.

    ``message`` says what happened and where; ``remedy`` (optional) says what to try.
    ``str(error)`` joins both, so a one-line CLI report carries the remedy too.
    """

    #: Default advice, used when the raiser gives none.
    default_remedy: str | None = None

    def __init__(self, message: str, *, remedy: str | None = None) -> None:
        self.message = message
        self.remedy = remedy if remedy is not None else self.default_remedy
        super().__init__(message)

    def __str__(self) -> str:
        if self.remedy:
            return f"{self.message} ({self.remedy})"
        return self.message


# --- opening a reader ---------------------------------------------------------------------


class OpenError(ContactlessError):
    """Opening or connecting to a reader failed."""


class BackendUnavailable(OpenError, ImportError):
    """The backend for a reader URI cannot be used: an extra is not installed, or the
    library it wraps failed to load."""

    default_remedy = "install the extra, e.g. pip install 'contactless[pcsc]'"


class ServiceUnavailable(OpenError):
    """A system service the backend needs is not running (for PC/SC: pcscd)."""

    default_remedy = "start pcscd (systemctl start pcscd.socket) and try again"


class ReaderNotFound(OpenError):
    """No reader matches the URI."""

    default_remedy = "check the cable and run `contactless readers` to list what is connected"


class PermissionDenied(OpenError, PermissionError):
    """The OS refused access to the reader device."""

    default_remedy = "add a udev rule for the device or run as a user in its group"


class ReaderBusy(OpenError):
    """Another process or a kernel driver holds the reader."""

    default_remedy = "close the other program using the reader, or connect in shared mode"


class NoCard(OpenError):
    """No card is present on the reader (or none answered in time)."""

    default_remedy = "place the card flat on the reader and hold it still"


# --- exchanging with a card ---------------------------------------------------------------


class ExchangeError(ContactlessError):
    """An exchange with a card failed in transit."""


class CardRemoved(ExchangeError):
    """The card left the field during an exchange."""

    default_remedy = "hold the card on the reader until the read completes"


class TransportTimeout(ExchangeError, TimeoutError):
    """No answer arrived before the deadline."""

    default_remedy = "present the card again; if it keeps happening, check the reader"


class TransportError(ExchangeError):
    """The transport failed (I/O error, empty or malformed frame)."""


# --- protocol errors, by blame ------------------------------------------------------------


class LocalProtocolError(ContactlessError):
    """The caller asked for something invalid (a malformed command, a bad argument)."""


class RemoteProtocolError(ContactlessError):
    """The card or reader sent something invalid."""


class TlvError(RemoteProtocolError):
    """Malformed BER-TLV data.

    ``offset`` is the position (in the buffer given to ``decode``) of the first byte of the
    data object being read; ``tag`` is its tag in hex when it could be read, else ``None``;
    ``reason`` is the problem alone, without the location.
    """

    def __init__(self, reason: str, *, offset: int, tag: str | None = None) -> None:
        self.reason = reason
        self.offset = offset
        self.tag = tag
        where = f"offset {offset}" + (f", tag {tag}" if tag else "")
        super().__init__(f"malformed TLV at {where}: {reason}")


class AtrError(RemoteProtocolError):
    """A malformed ATR (ISO 7816-3) or ATS (ISO 14443-4); ``offset`` is the bad byte."""

    def __init__(self, reason: str, *, offset: int) -> None:
        self.reason = reason
        self.offset = offset
        super().__init__(f"malformed ATR/ATS at offset {offset}: {reason}")


class StatusWordError(RemoteProtocolError):
    """The card answered a command with an error status word."""

    def __init__(
        self,
        sw1: int,
        sw2: int,
        meaning: str,
        *,
        command: str | None = None,
        remedy: str | None = None,
    ) -> None:
        self.sw1 = sw1
        self.sw2 = sw2
        self.meaning = meaning
        self.command = command
        where = f" to {command}" if command else ""
        super().__init__(f"card answered {sw1:02X}{sw2:02X}{where}: {meaning}", remedy=remedy)

    @property
    def sw(self) -> int:
        """SW1 SW2 as one integer, e.g. ``0x6A82``."""
        return (self.sw1 << 8) | self.sw2


class TraceMismatch(ContactlessError):
    """A command sent during replay differs from the recorded one."""


class ConfigError(ContactlessError):
    """A configuration, trace or baseline file (or URI) is unusable; the message names it."""
