"""Public entry points refuse arguments of the wrong type with a typed error naming the
argument, before any reader is opened (never an AttributeError from deep inside)."""

from __future__ import annotations

from typing import Any

import pytest

import contactless
from contactless.emv.terminal import TerminalConfig
from contactless.errors import LocalProtocolError


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"config": {"amount": 100}}, r"config=.*TerminalConfig.*not dict.*from_mapping"),
        ({"config": "terminal.toml"}, r"config=.*not str"),
        ({"tracer": 5}, r"tracer=.*callable"),
        ({"on_card": "print"}, r"on_card=.*callable"),
        ({"transaction": "yes"}, r"transaction=.*True or False"),
        ({"wait": "10"}, r"read_card\(wait=...\) must be a number"),
        ({"timeout": -1}, r"read_card\(timeout=...\) must be a positive"),
    ],
)
def test_read_card_names_the_bad_argument(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(LocalProtocolError, match=named):
        contactless.read_card("sim:visa", **kwargs)


def test_read_card_with_a_real_config_still_reads() -> None:
    config = TerminalConfig.from_mapping({"amount": 250})
    assert contactless.read_card("sim:visa", config=config).brand == "visa"


def test_wait_for_card_needs_a_reader() -> None:
    with pytest.raises(LocalProtocolError, match="needs an open reader"):
        contactless.wait_for_card("sim:visa", timeout=1)  # type: ignore[arg-type]
