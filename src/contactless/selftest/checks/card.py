"""Does the reader see the test card, and does it describe it correctly (ATR, ATS)?"""

from __future__ import annotations

from typing import Any

from ...errors import AtrError, ContactlessError, NoCard
from ...hexutil import to_hex
from ..context import Context
from ..model import Outcome
from .base import Check, seconds, text

__all__ = ["ATR", "PRESENCE"]


def check_presence(ctx: Context) -> Outcome:
    """A card must be detected within ``card_wait`` seconds (the test card is on it)."""
    reader = ctx.reader
    assert reader is not None  # needs reader.presence
    wait = ctx.settings.card_wait
    try:
        reader.wait_for_card(wait)
    except NoCard as error:
        return Outcome("card.absent", {"seconds": seconds(wait)}, {"error": str(error)})
    except ContactlessError as error:
        return Outcome("card.presence_error", {"uri": reader.uri}, {"error": str(error)})
    uid = to_hex(reader.uid) if reader.uid else None
    return Outcome("card.present", {"uid": text(uid)}, {"uid": uid})


def check_atr(ctx: Context) -> Outcome:
    """The ATR (and the ATS, when the reader shows it) must be well formed."""
    from ...atr import parse_atr, parse_ats

    reader = ctx.reader
    assert reader is not None  # needs card.presence
    atr, ats = reader.atr, reader.ats
    data: dict[str, Any] = {
        "atr": to_hex(atr) if atr else None,
        "ats": to_hex(ats) if ats else None,
    }
    if not atr:
        return Outcome("card.atr_missing", data=data)
    try:
        parsed = parse_atr(atr)
    except AtrError as error:
        data["error"] = str(error)
        return Outcome("card.atr_invalid", {"atr": to_hex(atr), "offset": str(error.offset)}, data)
    data["historical_bytes"] = to_hex(parsed.historical_bytes)
    if not ats:
        return Outcome("card.atr_ok", {"atr": to_hex(atr)}, data)
    try:
        parse_ats(ats)
    except AtrError as error:
        data["error"] = str(error)
        return Outcome("card.ats_invalid", {"ats": to_hex(ats), "offset": str(error.offset)}, data)
    return Outcome("card.atr_ats_ok", {"atr": to_hex(atr), "ats": to_hex(ats)}, data)


PRESENCE = Check("card.presence", "reader_fault", check_presence, needs=("reader.presence",))
ATR = Check("card.atr", "reader_fault", check_atr, needs=("card.presence",))
