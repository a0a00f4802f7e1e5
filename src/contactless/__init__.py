"""contactless: drive ISO 14443 / NFC card readers and read EMV payment cards.

The public API is re-exported here; importing this package stays cheap (no pyscard,
nfcpy or rich until a reader or the CLI needs them).
"""

from __future__ import annotations

from ._version import __version__
from .errors import (
    AtrError,
    BackendUnavailable,
    CardRemoved,
    ConfigError,
    ContactlessError,
    ExchangeError,
    LocalProtocolError,
    NoCard,
    OpenError,
    PermissionDenied,
    ReaderBusy,
    ReaderNotFound,
    RemoteProtocolError,
    ServiceUnavailable,
    StatusWordError,
    TlvError,
    TraceMismatch,
    TransportError,
    TransportTimeout,
)
from .reader import open_reader, read_card, wait_for_card
from .session import Card
from .tlv import decode as decode_tlv
from .tlv import encode as encode_tlv

__all__ = [
    "AtrError",
    "BackendUnavailable",
    "Card",
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
    "__version__",
    "decode_tlv",
    "encode_tlv",
    "open_reader",
    "read_card",
    "wait_for_card",
]
