"""Masking of card data (PAN, Track 1/2, cardholder name) for every output.

The rule (DESIGN.md, "Data rules"): a PAN shows its first 6 and last 4 digits and nothing
else; Track data keeps the expiry date and service code but never the discretionary data;
the cardholder name is hidden behind a fixed-length placeholder (:data:`NAME_MASK`), so
that not even its length shows. These functions are used by the CLI, traces, logs and
reports, so they never raise on odd input: anything they cannot parse is masked whole.

>>> mask_pan("4761739001010010")
'476173******0010'
>>> mask_track2(bytes.fromhex("4761739001010010D22122011143804400000F"))
'476173******0010D2212201*************'
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = [
    "NAME_MASK",
    "SENSITIVE_TAGS",
    "mask_name",
    "mask_pan",
    "mask_track1",
    "mask_track2",
    "mask_value",
]

#: Tags whose values identify the card or cardholder: Application PAN (5A), Track 2
#: Equivalent Data (57), Track 1 Data (56), Track 2 Data (9F6B), Track 1 and Track 2
#: Discretionary Data (9F1F, 9F20), Cardholder Name (5F20) and Cardholder Name Extended (9F0B).
SENSITIVE_TAGS: frozenset[str] = frozenset(
    {"5A", "57", "56", "9F6B", "9F1F", "9F20", "5F20", "9F0B"}
)

MASK = "*"

#: What a masked cardholder name looks like, whatever its length: one star per character
#: would tell a short name from a long one (and a live read from its redacted replay).
NAME_MASK = MASK * 8

# Below these lengths, showing 6 + 4 digits would reveal (nearly) the whole number; such short
# values are not real PANs, so they get less shown, never more.
_FIRST6_LAST4_MIN = 13
_LAST4_MIN = 8


def _as_text(value: object) -> str:
    """Any input as text: bytes become upper-case hex (BCD/cn card data), others ``str()``."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex().upper()
    if isinstance(value, str):
        return value
    return str(value)


def _is_digits(text: str) -> bool:
    # str.isdigit() alone accepts non-ASCII digits such as "²" or Arabic-Indic numerals.
    return text.isascii() and text.isdigit()


def _mask_all(text: str) -> str:
    return MASK * len(text)


def mask_name(name: str | bytes) -> str:
    """Mask a cardholder name: always :data:`NAME_MASK`, whatever the name and its length."""
    del name  # nothing of it is shown, not even its length
    return NAME_MASK


def mask_pan(pan: str | bytes) -> str:
    """Mask a PAN, keeping the first 6 and last 4 digits (``476173******0010``).

    Accepts the digits as text (spaces and dashes are ignored) or the raw ``cn`` bytes of
    tag 5A; trailing ``F`` padding is dropped. PANs of 8-12 digits keep only the last 4,
    shorter ones nothing; anything that is not a digit string is masked whole.
    """
    text = _as_text(pan)
    digits = text.replace(" ", "").replace("-", "").rstrip("Ff")
    if not _is_digits(digits):
        return _mask_all(text.strip())
    n = len(digits)
    if n >= _FIRST6_LAST4_MIN:
        return digits[:6] + MASK * (n - 10) + digits[-4:]
    if n >= _LAST4_MIN:
        return MASK * (n - 4) + digits[-4:]
    return _mask_all(digits)


def mask_track2(text_or_hex: str | bytes) -> str:
    """Mask Track 2 data: PAN masked, expiry (YYMM) and service code kept, discretionary
    data replaced by ``*``.

    Takes the raw bytes of tag 57/9F6B, their hex (``...D2212201...``), or magnetic-stripe
    text (``;4761...=2212201...?``). Trailing ``F`` padding is dropped. Input that does not
    have this shape is masked whole.
    """
    text = _as_text(text_or_hex).strip().replace(" ", "").replace(":", "").upper()
    body = text.removeprefix(";").removesuffix("?")
    separator = "=" if "=" in body else "D"
    pan, found, rest = body.partition(separator)
    rest = rest.rstrip("F")
    if (
        not found
        or separator in rest
        or not _is_digits(pan)
        or not 1 <= len(pan) <= 19
        or not _is_digits(rest)
        or len(rest) < 7
    ):
        return _mask_all(text)
    expiry, service_code, discretionary = rest[:4], rest[4:7], rest[7:]
    return mask_pan(pan) + separator + expiry + service_code + _mask_all(discretionary)


def mask_track1(data: str | bytes) -> str:
    """Mask Track 1 data (``B<PAN>^<NAME>^<YYMM><SVC><discretionary>``): PAN masked, name
    replaced by :data:`NAME_MASK`, discretionary data by ``*``, expiry and service code
    kept. Input that does not have this shape is masked whole."""
    if isinstance(data, bytes | bytearray | memoryview):
        text = bytes(data).decode("latin-1")
    else:
        text = _as_text(data)
    parts = text.split("^")
    if len(parts) != 3 or parts[0][:1] not in ("B", "b"):
        return _mask_all(text)
    pan, name, rest = parts[0][1:], parts[1], parts[2]
    if not _is_digits(pan) or len(rest) < 7 or not _is_digits(rest[:7]):
        return _mask_all(text)
    return (
        parts[0][0] + mask_pan(pan) + "^" + mask_name(name) + "^" + rest[:7] + _mask_all(rest[7:])
    )


def _mask_pan_value(value: bytes | str) -> str:
    return mask_pan(value)


def _mask_text_value(value: bytes | str) -> str:
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    return _mask_all(text)


def _mask_name_value(value: bytes | str) -> str:
    return mask_name(value)


def _mask_cn_value(value: bytes | str) -> str:
    text = value.hex().upper() if isinstance(value, bytes) else value
    return _mask_all(text.rstrip("Ff"))


#: How each sensitive tag's value is masked (tag hex -> masker). Maskers take the raw value
#: bytes, or text a caller already decoded.
_MASKERS: dict[str, Callable[[bytes | str], str]] = {
    "5A": _mask_pan_value,
    "57": mask_track2,
    "9F6B": mask_track2,
    "56": mask_track1,
    "9F1F": _mask_text_value,
    "9F20": _mask_cn_value,
    "5F20": _mask_name_value,
    "9F0B": _mask_name_value,
}


def _normalise_tag(tag: object) -> str:
    if isinstance(tag, int) and not isinstance(tag, bool):
        return f"{tag:X}" if tag >= 0 else str(tag)
    return _as_text(tag).replace(" ", "").replace(":", "").upper()


def mask_value(tag_hex: str, value: bytes | str) -> str:
    """Display text for the value of ``tag_hex`` with card data masked.

    For a tag in :data:`SENSITIVE_TAGS` the text is masked (PAN: first 6 / last 4; Track 2:
    PAN masked, expiry and service code kept; names: :data:`NAME_MASK` whatever their
    length; discretionary data: all ``*``).
    ``value`` is the raw value bytes (or text a caller already decoded). Any other tag's
    value is returned as upper-case hex (text as it is).

    >>> mask_value("5A", bytes.fromhex("4761739001010010"))
    '476173******0010'
    >>> mask_value("5F20", b"CARDHOLDER/VISA")
    '********'
    """
    raw: bytes | str
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
    else:
        raw = value if isinstance(value, str) else str(value)
    masker = _MASKERS.get(_normalise_tag(tag_hex))
    if masker is None:
        return raw.hex().upper() if isinstance(raw, bytes) else raw
    return masker(raw)
