from __future__ import annotations

import pytest

from contactless.errors import LocalProtocolError
from contactless.hexutil import parse_hex, to_hex


@pytest.mark.parametrize("text", ["6F1A84", "6f 1a 84", "6F:1A:84", " 6f1a\n84 "])
def test_parse_hex_accepts_separators_and_case(text: str) -> None:
    assert parse_hex(text) == b"\x6f\x1a\x84"


def test_parse_hex_names_bad_character() -> None:
    with pytest.raises(LocalProtocolError, match=r"'G' at position 3"):
        parse_hex("6F1G")
    with pytest.raises(LocalProtocolError, match="odd number of hex digits"):
        parse_hex("6F1")


def test_to_hex_is_upper_case() -> None:
    assert to_hex(b"\x9f\x38") == "9F38"
