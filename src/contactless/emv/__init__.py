"""EMV logic, sans-I/O: terminal settings, DOLs, the read flow and its result.

``read_flow`` is a generator of commands (it never touches a reader); ``run`` drives it
over a ``session.Card``::

    from contactless.emv import TerminalConfig, read_flow, run
    card_data = run(card, read_flow(TerminalConfig.load("terminal.toml"), transaction=True))
"""

from __future__ import annotations

from ..tlv.dol import build_dol, parse_dol
from .card import CardData, Cryptogram, RecordRead, ResponseData
from .driver import run
from .flow import read_flow
from .terminal import SupportedAid, TerminalConfig

__all__ = [
    "CardData",
    "Cryptogram",
    "RecordRead",
    "ResponseData",
    "SupportedAid",
    "TerminalConfig",
    "build_dol",
    "parse_dol",
    "read_flow",
    "run",
]
