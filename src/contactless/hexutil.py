"""Hex text in and out, by the project's one rule: parsers accept spaces, colons and lower
case; output is upper case without separators."""

from __future__ import annotations

from .errors import LocalProtocolError

_SEPARATORS = str.maketrans("", "", " :\t\r\n")


def parse_hex(text: str, *, what: str = "input") -> bytes:
    """Parse hex such as ``"6f 1a:84"``; raise :class:`LocalProtocolError` naming ``what`` and
    the position of the first bad character (in the text as given)."""
    compact = text.translate(_SEPARATORS)
    try:
        return bytes.fromhex(compact)
    except ValueError:
        pass
    for position, char in enumerate(text):
        if char not in " :\t\r\n" and char not in "0123456789abcdefABCDEF":
            raise LocalProtocolError(
                f"{what} is not hex: {char!r} at position {position}"
            ) from None
    raise LocalProtocolError(f"{what} has an odd number of hex digits ({len(compact)})") from None


def to_hex(data: bytes) -> str:
    """``bytes`` as upper-case hex without separators."""
    return data.hex().upper()
