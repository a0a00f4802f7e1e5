"""Virtual EMV contactless cards: the other side of the wire.

A :class:`VirtualCard` is a pure ``bytes -> bytes`` APDU handler built from a brand
profile (``profiles/*.toml``); adapters put it behind a reader (``sim:`` in-process, vpcd
for pcscd, nfcpy's UDP wire). :func:`parse_faults` turns a URI query string into wire
faults for the adapter and :class:`CardOptions` for the card.

>>> card = VirtualCard(load_profile("mastercard"))
>>> card.process(bytes.fromhex("00A4040007A000000004101000"))[-2:].hex().upper()
'9000'
"""

from __future__ import annotations

from .card import CardOptions, Status, VirtualCard
from .faults import FAULT_KEYS, Faults, parse_faults
from .profiles import Application, Profile, list_profiles, load_profile, load_profile_file

__all__ = [
    "FAULT_KEYS",
    "Application",
    "CardOptions",
    "Faults",
    "Profile",
    "Status",
    "VirtualCard",
    "list_profiles",
    "load_profile",
    "load_profile_file",
    "parse_faults",
]
