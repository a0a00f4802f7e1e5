"""Data Object Lists (EMV Book 3 section 5.4): parse a DOL the card sent, build its data.

A DOL (PDOL 9F38, CDOL1 8C, CDOL2 8D, DDOL 9F49, ...) is a list of tag + one-byte length
pairs with no values: the card says which terminal data it wants and how long each piece
must be. The terminal answers with the values concatenated, each fitted to its length by
the rules of Book 3 5.4, which depend on the data element's format:

- unknown to the terminal, unavailable, or a constructed tag: that many ``00`` bytes;
- longer than asked: numeric (``n``) loses its leftmost bytes, every other format its
  rightmost bytes;
- shorter than asked: ``n`` is padded with leading ``00``, ``cn`` with trailing ``FF``,
  every other format (``an``, ``ans``, ``b``) with trailing ``00``.

>>> entries = parse_dol(bytes.fromhex("9F0206 9F1A02 9F7C01"))
>>> [(tag.hex().upper(), length) for tag, length in entries]
[('9F02', 6), ('9F1A', 2), ('9F7C', 1)]
>>> build_dol(entries, {"9F02": bytes.fromhex("0100"), "9F1A": bytes.fromhex("0840")}).hex()
'000000000100084000'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import TlvError
from ._pytlv import parse_tag
from .tags import lookup

__all__ = ["DolEntry", "build_dol", "dol_length", "fit_value", "parse_dol"]

#: One DOL entry: the tag as written, and the length the card asks for.
DolEntry = tuple[bytes, int]

#: How a value shorter than asked is padded, by format: (pad byte, pad on the left?).
_PADDING: dict[str, tuple[int, bool]] = {
    "n": (0x00, True),
    "cn": (0xFF, False),
}
_DEFAULT_PADDING = (0x00, False)


def parse_dol(data: bytes) -> list[DolEntry]:
    """Split a DOL into ``(tag_bytes, length)`` pairs, in the card's order.

    Tags follow the BER rules (``xx1F`` starts a multi-byte tag, at most 4 bytes); each
    length is one byte. Malformed input raises :class:`~contactless.errors.TlvError` with
    the offset of the entry and its tag when it could be read.
    """
    entries: list[DolEntry] = []
    pos = 0
    end = len(data)
    while pos < end:
        start = pos
        first = data[pos]
        if first in (0x00, 0xFF):
            raise TlvError(f"{first:02X} is not a valid tag in a DOL", offset=start)
        pos += 1
        if first & 0x1F == 0x1F:
            while True:
                if pos >= end:
                    raise TlvError(
                        f"tag is truncated (have {data[start:pos].hex().upper()})", offset=start
                    )
                if pos - start >= 4:
                    raise TlvError("tag is longer than 4 bytes", offset=start)
                pos += 1
                if not data[pos - 1] & 0x80:
                    break
        tag = bytes(data[start:pos])
        if pos >= end:
            raise TlvError("DOL entry has no length byte", offset=start, tag=tag.hex().upper())
        entries.append((tag, data[pos]))
        pos += 1
    return entries


def dol_length(entries: Iterable[DolEntry]) -> int:
    """Total length of the data a DOL asks for."""
    return sum(length for _, length in entries)


def fit_value(value: bytes, length: int, data_format: str | None) -> bytes:
    """Fit one terminal value to the ``length`` a DOL asks for (Book 3 5.4 c and d).

    ``data_format`` is the EMV format of the data element (``"n"``, ``"cn"``, ``"b"``, ...);
    ``None`` (not in the dictionary) is treated like binary.

    >>> fit_value(bytes.fromhex("000000000100"), 4, "n").hex()
    '00000100'
    >>> fit_value(bytes.fromhex("E0F8C8"), 2, "b").hex()
    'e0f8'
    >>> fit_value(bytes.fromhex("4761"), 4, "cn").hex()
    '4761ffff'
    """
    data_format = data_format or "b"
    if len(value) > length:
        return value[len(value) - length :] if data_format == "n" else value[:length]
    pad_byte, on_left = _PADDING.get(data_format, _DEFAULT_PADDING)
    padding = bytes((pad_byte,)) * (length - len(value))
    return padding + value if on_left else value + padding


def build_dol(
    entries: Iterable[DolEntry],
    values: Mapping[bytes, bytes] | Mapping[str, bytes] | Mapping[int, bytes],
    *,
    aid: bytes | None = None,
) -> bytes:
    """Build the data for a DOL from terminal ``values`` (tag -> value bytes).

    Tags in ``values`` may be given as bytes, hex text or integers. Each value is fitted
    with :func:`fit_value` using the format the tag dictionary gives for the tag (with the
    scheme-specific entry for ``aid`` when there is one); tags without a value and
    constructed tags get zeros (Book 3 5.4 a, b and e).

    >>> build_dol(parse_dol(bytes.fromhex("9F3704 9C01")), {0x9C: b"\\x00"}).hex()
    '0000000000'
    """
    by_tag = {parse_tag(tag): value for tag, value in values.items()}
    parts: list[bytes] = []
    for tag, length in entries:
        value = by_tag.get(tag)
        if value is None or tag[0] & 0x20:
            parts.append(bytes(length))
            continue
        info = lookup(tag, aid)
        parts.append(fit_value(value, length, info.format if info else None))
    return b"".join(parts)
