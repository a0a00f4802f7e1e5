"""Does a payment work end to end with the test card? A read and a test transaction
(GENERATE AC with the test amount), then the card's own data: PAN (Luhn), expiry, PIN
tries left (GET DATA 9F17), and whether it is the card the baseline was saved with."""

from __future__ import annotations

import calendar
import dataclasses
from datetime import date
from typing import Any

from ...apdu import Command, Response
from ...errors import (
    CardRemoved,
    ContactlessError,
    ExchangeError,
    RemoteProtocolError,
    StatusWordError,
    TlvError,
)
from ...hexutil import to_hex
from ...masking import mask_pan
from ...session import Card
from ...tlv import decode, find
from ..baseline import pan_hint
from ..context import Context
from ..model import Difference, Outcome
from .base import Check, text
from .link import replaying

__all__ = ["EXPIRY", "MATCH", "PAN", "PIN_TRIES", "STATUS_WORD_OUTCOMES", "TRANSACTION"]

#: Status words that end the test transaction -> outcome: (SW, INS or None for any).
#: EMV Book 1 11.3.5/12.4: 6A81 to SELECT = card blocked or command not supported;
#: 6283 = application blocked; 6983 / 63C0 = PIN tries exhausted; 6985 = conditions of use
#: not satisfied; 6A82 to SELECT = no such application.
STATUS_WORD_OUTCOMES: tuple[tuple[int, int | None, str], ...] = (
    (0x6983, None, "emv.pin_blocked"),
    (0x63C0, None, "emv.pin_blocked"),
    (0x6A81, None, "emv.app_blocked"),
    (0x6283, 0xA4, "emv.app_blocked"),
    (0x6A82, 0xA4, "emv.not_payment_card"),
    (0x6985, None, "emv.card_refused"),
)

_GET_PIN_TRY_COUNTER = Command(0x80, 0xCA, 0x9F, 0x17, le=256)


class _Retrying:
    """A card whose exchanges are retried on transmission failures (not on a removed
    card): a terminal retransmits, and how often it had to is itself a finding."""

    def __init__(self, card: Card, retries: int) -> None:
        self.card = card
        self.retries = retries
        self.retried = 0

    def exchange(self, command: Command) -> Response:
        for attempt in range(self.retries + 1):
            try:
                return self.card.exchange(command)
            except CardRemoved:
                raise
            except (ExchangeError, RemoteProtocolError):
                if attempt == self.retries:
                    raise
                self.retried += 1
        raise AssertionError("unreachable")


def _status_word_outcome(error: StatusWordError) -> str:
    ins = _command_ins(error.command)
    for sw, wanted_ins, outcome in STATUS_WORD_OUTCOMES:
        if error.sw == sw and (wanted_ins is None or wanted_ins == ins):
            return outcome
    return "emv.status_word"


#: Command names (Command.describe() prefixes) -> INS, to tie a status word to its command.
_COMMAND_INS = {"SELECT": 0xA4, "GET PROCESSING OPTIONS": 0xA8, "GENERATE AC": 0xAE}


def _command_ins(description: str | None) -> int | None:
    for name, ins in _COMMAND_INS.items():
        if description and description.startswith(name):
            return ins
    return None


def _command_name(description: str | None) -> str:
    """The command's name without its parameters (``READ RECORD``), for messages."""
    if not description:
        return "-"
    for name in (*_COMMAND_INS, "READ RECORD", "GET DATA", "VERIFY", "GET RESPONSE"):
        if description.startswith(name):
            return name
    return description.split(" ")[0]


def check_transaction(ctx: Context) -> Outcome:
    """Read the card and ask it for a cryptogram for the test amount."""
    # Imported here: on an installation an upgrade half replaced, the EMV code may not
    # load, and the checks that do not need it must still run.
    from ...emv.driver import run
    from ...emv.flow import read_flow

    if replaying(ctx):
        # A recorded trace answers the commands it holds, in order: the self-test's own
        # transaction (its amount, its PPSE round trips first) is not one of them.
        return Outcome("emv.skipped_replay", {"reader": text(ctx.reader_uri)})
    if ctx.link is not None and ctx.link.succeeded == 0:
        return Outcome("emv.skipped_link")
    reader = ctx.reader
    assert reader is not None  # needs card.presence
    settings = ctx.settings
    config = dataclasses.replace(ctx.terminal, amount=settings.test_amount)
    card = Card(reader, timeout=settings.transaction_timeout)
    retrying = _Retrying(card, settings.transaction_retries)
    data: dict[str, Any] = {"amount": settings.test_amount}
    try:
        card_data = run(retrying, read_flow(config, transaction=True))
    except StatusWordError as error:
        data.update(sw=f"{error.sw:04X}", command=error.command, retries=retrying.retried)
        params = {"sw": f"{error.sw:04X}", "command": _command_name(error.command)}
        return Outcome(_status_word_outcome(error), params, data)
    except CardRemoved as error:
        data.update(error=str(error), retries=retrying.retried)
        return Outcome("emv.card_removed", data=data)
    except ExchangeError as error:
        data.update(error=str(error), retries=retrying.retried)
        return Outcome("emv.transport_error", {"retries": str(retrying.retried)}, data)
    except TlvError as error:
        data.update(error=str(error), retries=retrying.retried)
        return Outcome("emv.malformed", data=data)
    except RemoteProtocolError as error:
        data.update(error=str(error), retries=retrying.retried)
        if error.message.startswith("no application could be selected"):
            return Outcome("emv.not_payment_card", data=data)
        return Outcome("emv.malformed", data=data)
    ctx.card_data = card_data.with_reader(reader.uri, reader.atr)
    data.update(
        aid=to_hex(card_data.aid),
        brand=card_data.brand,
        pan=card_data.masked_pan,
        cryptogram=card_data.cryptogram_type,
        atc=card_data.atc,
        apdus=card_data.apdus,
        retries=retrying.retried,
    )
    params = {
        "brand": text(card_data.brand),
        "aid": to_hex(card_data.aid),
        "cryptogram": text(card_data.cryptogram_type),
        "atc": text(card_data.atc),
        "apdus": str(card_data.apdus),
        "retries": str(retrying.retried),
    }
    if card_data.cryptogram_type == "AAC":
        return Outcome("emv.declined", params, data)
    if retrying.retried:
        return Outcome("emv.retried", params, data)
    return Outcome("emv.ok", params, data)


def check_pan(ctx: Context) -> Outcome:
    """The card number must be well formed: 12-19 digits passing the Luhn check."""
    from ...emulator.profiles import luhn_valid

    card_data = ctx.card_data
    assert card_data is not None  # needs emv.transaction
    pan = card_data.pan
    if not pan:
        return Outcome("card.pan_missing")
    masked = mask_pan(pan)
    valid = pan.isdigit() and 12 <= len(pan) <= 19 and luhn_valid(pan)
    data = {"pan": masked, "length": len(pan), "luhn": valid}
    return Outcome("card.pan_ok" if valid else "card.pan_luhn", {"pan": masked}, data)


def _last_day(expiry: str) -> date:
    year, month = (int(part) for part in expiry.split("-"))
    return date(year, month, calendar.monthrange(year, month)[1])


def check_expiry(ctx: Context) -> Outcome:
    """The card must not be expired (nor about to be)."""
    card_data = ctx.card_data
    assert card_data is not None  # needs emv.transaction
    if not card_data.expiry:
        return Outcome("card.expiry_missing")
    today = ctx.now().date()
    last_day = _last_day(card_data.expiry)
    days = (last_day - today).days
    data = {"expiry": card_data.expiry, "days_left": days, "today": today.isoformat()}
    params = {"expiry": card_data.expiry, "days": str(days)}
    if days < 0:
        return Outcome("card.expired", params, data)
    if days <= ctx.settings.expiry_warn_days:
        return Outcome("card.expiry_soon", params, data)
    return Outcome("card.expiry_ok", params, data)


def check_pin_tries(ctx: Context) -> Outcome:
    """PIN tries left, from GET DATA 9F17 (0: the PIN is blocked)."""
    reader = ctx.reader
    assert reader is not None  # needs emv.transaction
    card = _Retrying(Card(reader, timeout=ctx.settings.transaction_timeout), 1)
    try:
        response = card.exchange(_GET_PIN_TRY_COUNTER)
    except ContactlessError as error:
        return Outcome("card.pin_unknown", {"sw": "-"}, {"error": str(error)})
    if not response.ok:
        return Outcome(
            "card.pin_unknown", {"sw": f"{response.sw:04X}"}, {"sw": f"{response.sw:04X}"}
        )
    try:
        node = find(decode(response.data), b"\x9f\x17")
    except TlvError as error:
        return Outcome("card.pin_unknown", {"sw": f"{response.sw:04X}"}, {"error": str(error)})
    if node is None or len(node.value) != 1:
        return Outcome("card.pin_unknown", {"sw": f"{response.sw:04X}"}, {"answer": response.hex()})
    tries = node.value[0]
    data = {"pin_tries": tries}
    if tries == 0:
        return Outcome("card.pin_blocked", {"tries": "0"}, data)
    if tries == 1:
        return Outcome("card.pin_low", {"tries": "1"}, data)
    return Outcome("card.pin_ok", {"tries": str(tries)}, data)


def check_match(ctx: Context) -> Outcome:
    """The test card should be the one the baseline was saved with."""
    card_data = ctx.card_data
    assert card_data is not None  # needs emv.transaction
    before = ctx.baseline.card if ctx.baseline is not None else None
    if before is None or before.fingerprint is None or not card_data.pan:
        return Outcome("card.match_none")
    now_hint = pan_hint(card_data.pan)
    data: dict[str, Any] = {"pan": now_hint, "baseline_pan": before.masked_pan}
    if before.fingerprint.matches(card_data.pan):
        return Outcome("card.match_ok", {"pan": now_hint}, data)
    differences = [Difference("card.pan", before.masked_pan, now_hint)]
    if before.aid is not None and before.aid != to_hex(card_data.aid):
        differences.append(Difference("card.aid", before.aid, to_hex(card_data.aid)))
    params = {"before": text(before.masked_pan), "after": now_hint}
    return Outcome("card.match_different", params, data, tuple(differences))


TRANSACTION = Check("emv.transaction", "card_or_pin", check_transaction, needs=("card.presence",))
PAN = Check("card.pan", "card_or_pin", check_pan, needs=("emv.transaction",))
EXPIRY = Check("card.expiry", "card_or_pin", check_expiry, needs=("emv.transaction",))
PIN_TRIES = Check("card.pin_tries", "card_or_pin", check_pin_tries, needs=("emv.transaction",))
MATCH = Check("card.match", "card_or_pin", check_match, needs=("emv.transaction",))
