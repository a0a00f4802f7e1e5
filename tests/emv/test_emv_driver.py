"""driver.run: sends the flow's commands through a card and names the command on errors."""

from __future__ import annotations

import pytest
from emv_cards import PAN, ScriptedCard, config, mc_card, status, visa_card

from contactless.apdu import Command, Response
from contactless.emv.driver import run
from contactless.emv.flow import read_flow
from contactless.errors import CardRemoved, StatusWordError, TransportError, TransportTimeout


class FailingCard:
    """Answers like ``inner`` until the command described ``when``, then raises ``error``."""

    def __init__(self, inner: ScriptedCard, when: str, error: Exception) -> None:
        self.inner = inner
        self.when = when
        self.error = error

    def exchange(self, command: Command) -> Response:
        if command.describe() == self.when:
            raise self.error
        return self.inner.exchange(command)


def test_run_returns_the_card_data() -> None:
    card = visa_card()
    data = run(card, read_flow(config()))
    assert data.pan == PAN and data.apdus == len(card.sent) == 4


@pytest.mark.parametrize("error_class", [CardRemoved, TransportError, TransportTimeout])
def test_card_errors_name_the_command_in_flight(error_class: type[Exception]) -> None:
    card = FailingCard(mc_card(), "READ RECORD SFI 1 record 2", error_class("the card left"))
    card.when = "READ RECORD SFI 2 record 2"
    with pytest.raises(error_class) as caught:
        run(card, read_flow(config()))
    assert str(caught.value).startswith("READ RECORD SFI 2 record 2: the card left")
    assert caught.value.__cause__ is not None


def test_a_message_that_already_names_the_command_is_kept() -> None:
    error = CardRemoved("card removed during READ RECORD SFI 1 record 1")
    card = FailingCard(mc_card(), "READ RECORD SFI 1 record 1", error)
    with pytest.raises(CardRemoved) as caught:
        run(card, read_flow(config()))
    assert caught.value is error
    assert str(caught.value).startswith("card removed during READ RECORD SFI 1 record 1")


def test_the_remedy_is_kept() -> None:
    card = FailingCard(mc_card(), "GET PROCESSING OPTIONS", CardRemoved("gone"))
    with pytest.raises(CardRemoved) as caught:
        run(card, read_flow(config()))
    assert caught.value.remedy == CardRemoved.default_remedy
    assert "hold the card" in str(caught.value)


def test_flow_errors_pass_through() -> None:
    card = visa_card()
    card.answers["READ RECORD SFI 3 record 1"] = status(0x6A83)
    with pytest.raises(StatusWordError, match="READ RECORD SFI 3 record 1"):
        run(card, read_flow(config()))


def test_the_flow_is_closed_after_an_error() -> None:
    flow = read_flow(config())
    card = FailingCard(visa_card(), "GET PROCESSING OPTIONS", TransportError("boom"))
    with pytest.raises(TransportError):
        run(card, flow)
    with pytest.raises(StopIteration):
        next(flow)
