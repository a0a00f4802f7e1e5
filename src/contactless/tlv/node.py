"""The node types that both TLV implementations (pure Python and C) return.

A decoded tree is lossless: besides tag and value, each node keeps where it started, how
its length was written, and the padding bytes that preceded it, so ``encode(decode(x))``
gives back ``x`` byte for byte.

The classes below are the reference definition. When the C accelerator is built and
``CONTACTLESS_PUREPYTHON=1`` is not set (the same rule by which ``contactless.tlv`` picks
the C decoder), ``Tlv`` and ``TlvList`` are instead the C types from ``_ctlv``: they behave
the same (tests/tlv/test_node.py compares the two) but are much cheaper to create and free,
which is most of what decoding costs. So in any one process both decoders return the same
node types, and :data:`IMPLEMENTATION` says which ones they are. (Left different, as no
caller should depend on them: the C ``Tlv`` has no ``__slots__`` attribute, its signature
carries no annotations, and it also pickles with protocols 0 and 1.)
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any, Literal

# Imported before the classes below exist: finding no node.Tlv yet is how _ctlv knows that
# its own types are the ones in use (loaded later, beside the pure-Python classes, it
# builds those instead).
_accelerated: ModuleType | None = None
if os.environ.get("CONTACTLESS_PUREPYTHON") != "1":
    try:
        from . import _ctlv as _accelerated
    except ImportError:  # not built: contactless.tlv falls back (or fails with REQUIRE_C)
        _accelerated = None

#: Which node types are in use: ``"c"`` (from ``_ctlv``) or ``"python"`` (the classes below).
IMPLEMENTATION: Literal["c", "python"] = "python" if _accelerated is None else "c"


class TlvList(list["Tlv"]):
    """An ordered list of sibling nodes (the top level, or a constructed node's children).

    ``trailing`` holds padding bytes (``00``/``FF``) after the last node, kept for
    re-encoding. ``error`` is set only by ``decode(..., strict=False)``: the
    :class:`~contactless.errors.TlvError` that stopped decoding, or ``None``.
    """

    # Class-level defaults: the decoder sets an instance attribute only when non-empty,
    # which keeps the common case (no padding, no error) free of per-list work.
    trailing: bytes = b""
    error: Any = None


class Tlv:
    """One BER-TLV data object.

    Attributes:
        tag_bytes: the tag as written, e.g. ``b"\\x9f\\x38"``.
        value: the value bytes (for a constructed object: its encoded children).
        children: a :class:`TlvList` for a constructed object, else ``None``.
        offset: position of the tag's first byte in the buffer given to ``decode``.
        length_form: how many bytes the length field took (1 for short form, 2 for ``81xx``,
            up to 5 for ``84xxxxxxxx``); re-encoding writes the same form when the value fits.
        padding: ``00``/``FF`` bytes that stood just before this object.
    """

    __slots__ = ("children", "length_form", "offset", "padding", "tag_bytes", "value")

    def __init__(
        self,
        tag_bytes: bytes,
        value: bytes,
        children: TlvList | None = None,
        offset: int = 0,
        length_form: int = 1,
        padding: bytes = b"",
    ) -> None:
        self.tag_bytes = tag_bytes
        self.value = value
        self.children = children
        self.offset = offset
        self.length_form = length_form
        self.padding = padding

    @property
    def tag(self) -> int:
        """The tag as an integer, e.g. ``0x9F38`` (computed on access: decoding stays cheap)."""
        return int.from_bytes(self.tag_bytes, "big")

    @property
    def constructed(self) -> bool:
        """True when bit 6 of the first tag byte is set (the value holds more TLV objects)."""
        return bool(self.tag_bytes[0] & 0x20)

    @property
    def tag_hex(self) -> str:
        """The tag in upper-case hex, e.g. ``"9F38"``."""
        return self.tag_bytes.hex().upper()

    @property
    def length(self) -> int:
        """Length of the value in bytes."""
        return len(self.value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tlv):
            return NotImplemented
        return (
            self.tag_bytes == other.tag_bytes
            and self.value == other.value
            and self.children == other.children
            and self.offset == other.offset
            and self.length_form == other.length_form
            and self.padding == other.padding
        )

    __hash__ = None  # type: ignore[assignment]  # mutable: children may be edited

    def __repr__(self) -> str:
        return _node_repr(self)


def _node_repr(node: Tlv) -> str:
    """``Tlv(9F02, value='000000000100', offset=3)``, without card data: a sensitive tag's
    value is shown masked as in ``contactless tlv`` (PAN first 6 / last 4, names as a
    fixed mask, tags without a known shape all ``*``), and a constructed node, whose value
    holds its children (a READ RECORD template holds the PAN, track 2 and name), shows only
    its length and number of children, ``Tlv(70, length=65, offset=0, children=3)``. Both
    node implementations use this one function, so their reprs cannot drift apart."""
    # Imported here: format.py imports the decoder, which imports this module. It masks every
    # tag any dictionary row marks sensitive (UnionPay's 9F61 too), as contactless tlv and
    # trace show do.
    from .format import is_sensitive, masked_text

    tag = node.tag_hex
    if node.children is not None:
        count = len(node.children)
        return f"Tlv({tag}, length={len(node.value)}, offset={node.offset}, children={count})"
    shown = masked_text(node) if is_sensitive(node) else node.value.hex().upper()
    return f"Tlv({tag}, value={shown!r}, offset={node.offset})"


if _accelerated is not None:
    # The C types replace the reference classes above (same behaviour, same names); their
    # repr is the reference one.
    TlvList = _accelerated.TlvList  # type: ignore[misc]
    Tlv = _accelerated.Tlv  # type: ignore[misc]
    Tlv.__repr__ = _node_repr  # type: ignore[method-assign]
