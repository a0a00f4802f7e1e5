"""Data objects for people: the TLV tree that ``contactless tlv`` and ``contactless trace
show`` print (text or JSON) and hex dumps of the same data, card data masked unless asked.

Masked, data shows nothing of the card (DESIGN.md, "Data rules"). The value of every tag
that any dictionary row marks sensitive (:func:`~contactless.tlv.tags.sensitive_tags`) is
hidden, a PAN keeping its first 6 and last 4 digits and Track 2 its expiry date and service
code (:func:`~contactless.masking.mask_value`). A cardholder name is hidden with its length,
which would otherwise show in four places: the characters standing for it
(:data:`~contactless.masking.NAME_MASK` has one length for every name), its length field,
the length fields of the templates around it (a template's length less its other
children's), and the offset of everything after it (shifted by the name's length); and in
the text of a decoding error, which quotes offsets and lengths.

The CLI commands and the trace listing use these functions, so they hide the same things.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from .errors import ContactlessError, TlvError
from .hexutil import to_hex
from .masking import MASK, NAME_MASK
from .tlv import Tlv, TlvList, decode, walk
from .tlv.format import NAME_TAGS, describe, is_sensitive, masked_text
from .tlv.tags import name_of, sensitive_tags

__all__ = [
    "HIDDEN_BYTE",
    "UNDECODED_MASK",
    "MaskedBytes",
    "NameExposure",
    "decode_problem",
    "mask_bytes",
    "name_exposure",
    "plain_bytes",
    "tree_json",
    "tree_lines",
]

#: What stands in a hex dump for one masked byte, and for a hidden length field whatever
#: its size (one ``**`` for ``81 9F`` too: the size tells a length over 127 from a shorter one).
HIDDEN_BYTE: Final = MASK * 2

#: What stands in a masked hex dump for the bytes a lenient decode could not read, however
#: many: they may hold anything, and their count would be a length.
UNDECODED_MASK: Final = "[not decoded: hidden]"


@dataclass(frozen=True, slots=True)
class NameExposure:
    """Where a masked cardholder name's length would still show in decoded data.

    Positions count nodes in document order, as :func:`~contactless.tlv.walk` yields them.
    ``hidden``: the name nodes and every template holding one (or holding the data object
    a lenient decode stopped at, when that is hidden too), whose lengths must not show.
    ``first_name``: the first name node; every node after it has an offset shifted by the
    name's length. Empty and ``None`` when the data holds no name.
    """

    hidden: frozenset[int] = frozenset()
    first_name: int | None = None


def _value_start(node: Tlv) -> int:
    return node.offset + len(node.tag_bytes) + node.length_form


def name_exposure(nodes: Sequence[Tlv], *, undecoded_hidden: bool = False) -> NameExposure:
    """Where the names in ``nodes`` would show their length (see :class:`NameExposure`).

    When a lenient decode stopped (``nodes.error``) at a name, or at anything and
    ``undecoded_hidden`` (the caller hides what was not decoded), the templates that were
    being read hold that hidden data: their lengths are hidden too.
    """
    hidden: set[int] = set()
    first_name: int | None = None
    path: list[tuple[int, Tlv]] = []  # the last node read and its ancestors
    for index, (depth, node) in enumerate(walk(nodes)):
        del path[depth:]
        path.append((index, node))
        if node.children is None and node.tag_hex in NAME_TAGS:
            hidden.update(position for position, _ in path)
            first_name = index if first_name is None else first_name
    error = getattr(nodes, "error", None)
    if isinstance(error, TlvError) and (undecoded_hidden or error.tag in NAME_TAGS):
        hidden.update(
            position
            for position, node in path
            if node.children is not None
            and _value_start(node) <= error.offset < _value_start(node) + len(node.value)
        )
    return NameExposure(frozenset(hidden), first_name)


def _hides_undecoded(nodes: TlvList, undecoded_hidden: bool) -> bool:
    """Whether the bytes after a lenient decode's error are to be hidden: when asked, and
    always when decoding stopped at a sensitive data object (a PAN or name cut short)."""
    error = nodes.error
    return isinstance(error, TlvError) and (undecoded_hidden or error.tag in sensitive_tags())


def decode_problem(nodes: TlvList, *, undecoded_hidden: bool = False) -> str | None:
    """Why a lenient decode stopped (``nodes.error`` as text), or ``None`` if it did not.

    The error's offset and lengths are left out when they could give a masked name's length
    away: the decoded data holds a name, decoding stopped at one, or the caller hides the
    undecoded bytes (``undecoded_hidden``: a name may be among them). Its tag is kept. (A
    PAN's length is no secret: a masked PAN shows it.)"""
    error = nodes.error
    if not isinstance(error, TlvError):
        return None if error is None else str(error)
    exposure = name_exposure(nodes, undecoded_hidden=undecoded_hidden)
    if not (exposure.hidden or exposure.first_name is not None or undecoded_hidden) and (
        error.tag not in NAME_TAGS
    ):
        return str(error)
    where = f" at tag {error.tag}" if error.tag else ""
    return (
        f"malformed TLV{where} (offset and lengths hidden: they could tell a cardholder "
        "name's length; --show-pan shows them)"
    )


def _has_sensitive(node: Tlv) -> bool:
    return any(is_sensitive(n) for _, n in walk([node]))


def tree_lines(
    nodes: Sequence[Tlv],
    aid: bytes | None,
    *,
    show_sensitive: bool = False,
    undecoded_hidden: bool = False,
) -> list[str]:
    """One line per data object, indented by depth: tag, name (scheme-specific after
    ``aid``), then a template's length or a primitive's value and its meaning.

    Unless ``show_sensitive``, sensitive values are masked and the lengths a masked name's
    would follow from read ``[length hidden]`` (``undecoded_hidden`` as for
    :func:`name_exposure`)."""
    exposure = (
        NameExposure()
        if show_sensitive
        else name_exposure(nodes, undecoded_hidden=undecoded_hidden)
    )
    lines = []
    for index, (depth, node) in enumerate(walk(nodes)):
        head = f"{'  ' * depth}{node.tag_hex:<6} {name_of(node.tag_bytes, aid)}"
        if node.children is not None:
            size = "length hidden" if index in exposure.hidden else f"{node.length} bytes"
            lines.append(f"{head}  [{size}]")
            continue
        if is_sensitive(node) and not show_sensitive:
            lines.append(f"{head}  {masked_text(node)}")
            continue
        text = None
        try:
            text = describe(node.tag_bytes, node.value, aid=aid, show_sensitive=show_sensitive)
        except ContactlessError as error:
            text = f"(cannot decode: {error.message})"
        value = to_hex(node.value) or "(empty)"
        lines.append(f"{head}  {value}" + (f"  = {text}" if text else ""))
    return lines


def tree_json(
    nodes: Sequence[Tlv], aid: bytes | None, *, show_sensitive: bool = False
) -> list[dict[str, Any]]:
    """The data objects as JSON-ready dicts (``tag``, ``name``, ``offset``, ``length``,
    ``value`` in hex, ``children`` for a template).

    Unless ``show_sensitive``, a value holding card data is its masked text (``None`` for
    a template) with ``"masked": true``, and the lengths and offsets that would give a
    masked name's length away are ``None``."""
    exposure = NameExposure() if show_sensitive else name_exposure(nodes)
    top: list[dict[str, Any]] = []
    parents: list[list[dict[str, Any]]] = [top]
    for index, (depth, node) in enumerate(walk(nodes)):
        del parents[depth + 1 :]
        entry: dict[str, Any] = {
            "tag": node.tag_hex,
            "name": name_of(node.tag_bytes, aid),
            "offset": node.offset,
            "length": node.length,
            "value": to_hex(node.value),
        }
        if not show_sensitive and _has_sensitive(node):
            # A hex value would carry the PAN / track / name: show the masked form instead.
            entry["value"] = None if node.children is not None else masked_text(node)
            entry["masked"] = True
        if index in exposure.hidden:
            entry["length"] = None
        if exposure.first_name is not None and index > exposure.first_name:
            entry["offset"] = None
        parents[depth].append(entry)
        if node.children is not None:
            entry["children"] = []
            parents.append(entry["children"])
    return top


# --- hex dumps ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MaskedBytes:
    """Bytes as masked hex text, one token per byte.

    ``tokens[i]`` is what byte ``i`` shows as: two hex digits, :data:`HIDDEN_BYTE`, or
    ``""`` for a byte that the token before it stands for (the rest of a hidden length
    field, a masked name, or data that did not decode). ``shifted_from``: the first
    position whose offset would give a masked name's length away (or that lies in hidden
    undecoded data); ``None`` when every offset may show. ``length_hidden``: the total
    length must not show either (the data holds a masked name, or hides undecoded bytes).
    """

    tokens: tuple[str, ...]
    shifted_from: int | None = None
    length_hidden: bool = False

    @property
    def text(self) -> str:
        """The whole dump."""
        return "".join(self.tokens)

    def column(self, offset: int) -> int:
        """Where the token of byte ``offset`` starts in :attr:`text`."""
        return sum(len(token) for token in self.tokens[:offset])

    def offset_hidden(self, offset: int) -> bool:
        """Whether naming ``offset`` would give a masked name's length away."""
        return self.shifted_from is not None and offset >= self.shifted_from

    def __add__(self, other: MaskedBytes) -> MaskedBytes:
        """Two dumps one after the other (an answer's data and its status word)."""
        shifted = self.shifted_from
        if shifted is None and other.shifted_from is not None:
            shifted = len(self.tokens) + other.shifted_from
        return MaskedBytes(
            self.tokens + other.tokens, shifted, self.length_hidden or other.length_hidden
        )


def plain_bytes(data: bytes) -> MaskedBytes:
    """``data`` with nothing masked (as :func:`mask_bytes` gives it with ``--show-pan``)."""
    return MaskedBytes(tuple(f"{byte:02X}" for byte in data))


def mask_bytes(data: bytes, *, undecoded_hidden: bool = False) -> MaskedBytes:
    """``data`` read as BER-TLV and dumped with its card data masked.

    The value bytes of a sensitive data object are :data:`HIDDEN_BYTE` each; a name is one
    :data:`~contactless.masking.NAME_MASK` after its hidden length field, and the length
    fields of the templates holding it are hidden. Bytes that do not decode are shown as
    they are (``data`` may be no TLV at all, as a command is not), unless decoding stopped
    at a sensitive tag or ``undecoded_hidden``: then they all stand behind one
    :data:`UNDECODED_MASK`.
    """
    nodes = decode(data, strict=False)
    exposure = name_exposure(nodes, undecoded_hidden=undecoded_hidden)
    tokens = [f"{byte:02X}" for byte in data]
    shifted_from: int | None = None

    def collapse(start: int, end: int, token: str) -> None:
        if start < len(tokens):
            tokens[start:end] = [token] + [""] * (min(end, len(tokens)) - start - 1)

    for index, (_, node) in enumerate(walk(nodes)):
        length_at = node.offset + len(node.tag_bytes)
        value_at, value_end = length_at + node.length_form, _value_start(node) + len(node.value)
        if index in exposure.hidden:
            collapse(length_at, value_at, HIDDEN_BYTE)
        if node.children is not None or not is_sensitive(node):
            continue
        if node.tag_hex in NAME_TAGS:
            # The mask goes with the (hidden) length field: an empty name shows it too.
            collapse(length_at, value_end, HIDDEN_BYTE + NAME_MASK)
            if index == exposure.first_name:
                shifted_from = value_end
        else:
            tokens[value_at:value_end] = [HIDDEN_BYTE] * len(node.value)
    length_hidden = exposure.first_name is not None
    if _hides_undecoded(nodes, undecoded_hidden):
        assert isinstance(nodes.error, TlvError)
        start = nodes.error.offset
        collapse(start, len(tokens), UNDECODED_MASK)
        if undecoded_hidden or nodes.error.tag in NAME_TAGS:
            # A name may be in there (a PAN cut short is the end of the data: no secret
            # length follows it).
            shifted_from = start if shifted_from is None else min(shifted_from, start)
            length_hidden = True
    return MaskedBytes(tuple(tokens), shifted_from, length_hidden)
