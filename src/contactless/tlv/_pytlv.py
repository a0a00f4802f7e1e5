"""The reference BER-TLV decoder and encoder (EMV Book 3 Annex B, ISO 7816-4 section 5.2).

This file is the spec in readable form; ``_ctlv.c`` must agree with it on every input,
results and errors alike (tests/tlv/test_differential.py feeds both the same bytes).

Rules implemented here:
- tags of 1 to 4 bytes (``xx1F`` starts a multi-byte tag; bit 8 of later bytes continues it);
- lengths in short form (``00``-``7F``) or long form ``81``-``84`` followed by 1-4 bytes;
  ``80`` (indefinite) and ``85``-``FF`` are errors;
- ``00`` and ``FF`` bytes between, before and after objects are padding: skipped in the
  tree, kept on the node that follows (``Tlv.padding``) or on the list (``TlvList.trailing``);
- nesting deeper than :data:`MAX_DEPTH` constructed levels is an error (no EMV structure
  comes close; the limit stops hostile input from building huge trees).

Decoding is iterative, so no input can exhaust the Python stack.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..errors import LocalProtocolError, TlvError
from .node import Tlv, TlvList

#: Deepest nesting of constructed objects that ``decode`` accepts.
MAX_DEPTH = 32

#: A value given to ``encode``/``build``: raw bytes, or children for a constructed tag.
Value = bytes | bytearray | Iterable["Item"]
#: An item ``encode`` accepts: a decoded/built node, or a ``(tag, value)`` pair.
Item = Tlv | tuple[int | str | bytes, Value]

# Reasons shared word for word with _ctlv.c.
_TAG_TRUNCATED = "tag is truncated"
_TAG_TOO_LONG = "tag is longer than 4 bytes"
_LENGTH_MISSING = "length is missing"
_LENGTH_TRUNCATED = "length field is truncated"
_LENGTH_INDEFINITE = "indefinite length (80) is not allowed"
_TOO_DEEP = f"nesting is deeper than {MAX_DEPTH} levels"

_BYTES_LIKE = (bytes, bytearray, memoryview)
_new_node = object.__new__
# Tags as shared bytes objects, looked up by their first (and second) byte instead of
# sliced from the buffer: None where the byte does not end a tag there (00/FF padding,
# xx1F multi-byte starts; for two-byte tags, a second byte with bit 8 set continues).
_ONE_BYTE_TAGS: tuple[bytes | None, ...] = tuple(
    None if b in (0x00, 0xFF) or b & 0x1F == 0x1F else bytes((b,)) for b in range(256)
)
_TWO_BYTE_TAGS: tuple[tuple[bytes, ...] | None, ...] = tuple(
    tuple(bytes((b, second)) for second in range(0x80)) if b & 0x1F == 0x1F and b != 0xFF else None
    for b in range(256)
)


def decode(data: bytes | bytearray | memoryview, *, strict: bool = True) -> TlvList:
    """Decode BER-TLV ``data`` into an ordered list of :class:`Tlv` nodes.

    Order and duplicates are kept; so are padding and the original length encoding, so
    ``encode(decode(x)) == x``. Malformed data raises :class:`~contactless.errors.TlvError`
    naming the offset and tag. With ``strict=False`` nothing is raised: the result holds
    every object decoded before the problem and ``result.error`` holds the error.

    >>> [node.tag_hex for node in decode(bytes.fromhex("9F02060000000001005A0141"))]
    ['9F02', '5A']
    """
    # This loop is the pure-Python hot path, so it trades a little readability for speed
    # (see docs/benchmarks.md): tags come from lookup tables instead of slices, nodes are
    # filled slot by slot instead of through Tlv.__init__, and names are bound to locals.
    if type(data) is bytes:
        buf = data
    elif isinstance(data, _BYTES_LIKE):
        buf = bytes(data)
    else:
        raise LocalProtocolError(f"decode() needs bytes, not {type(data).__name__}")
    root = out = TlvList()
    append = out.append
    end = len(buf)
    pos = pad_start = depth = 0
    stack: list[tuple[TlvList, int]] = []
    new_node = _new_node
    node_type = Tlv
    one_byte_tags = _ONE_BYTE_TAGS
    two_byte_tags = _TWO_BYTE_TAGS
    try:
        while True:
            if pos >= end:
                if pad_start < end:
                    out.trailing = buf[pad_start:end]
                if not stack:
                    return root
                # A constructed value is done: the parent list resumes right after it.
                pos = pad_start = end
                out, end = stack.pop()
                append = out.append
                depth -= 1
                continue
            first = buf[pos]
            tag = one_byte_tags[first]
            if tag is not None:
                i = pos + 1
            elif (
                (row := two_byte_tags[first]) is not None
                and pos + 1 < end
                and (second := buf[pos + 1]) < 0x80
            ):
                tag = row[second]
                i = pos + 2
            elif first == 0x00 or first == 0xFF:
                pos += 1
                continue
            else:
                # xx1F: later bytes continue the tag while their bit 8 is set.
                i = pos + 1
                while True:
                    if i >= end:
                        raise TlvError(
                            f"{_TAG_TRUNCATED} (have {buf[pos:i].hex().upper()})", offset=pos
                        )
                    if i - pos >= 4:
                        raise TlvError(_TAG_TOO_LONG, offset=pos)
                    i += 1
                    if not buf[i - 1] & 0x80:
                        break
                tag = buf[pos:i]
            if i >= end:
                raise TlvError(_LENGTH_MISSING, offset=pos, tag=tag.hex().upper())
            length = buf[i]
            if length < 0x80:
                vstart = i + 1
                form = 1
            elif 0x81 <= length <= 0x84:
                form = length - 0x7F
                vstart = i + form
                if vstart > end:
                    raise TlvError(_LENGTH_TRUNCATED, offset=pos, tag=tag.hex().upper())
                length = int.from_bytes(buf[i + 1 : vstart], "big")
            elif length == 0x80:
                raise TlvError(_LENGTH_INDEFINITE, offset=pos, tag=tag.hex().upper())
            else:
                raise TlvError(
                    f"length field of {length & 0x7F} bytes is longer than 4",
                    offset=pos,
                    tag=tag.hex().upper(),
                )
            vend = vstart + length
            if vend > end:
                raise TlvError(
                    f"length {length} runs past the end of the data ({end - vstart} bytes left)",
                    offset=pos,
                    tag=tag.hex().upper(),
                )
            if first & 0x20 and depth >= MAX_DEPTH:
                raise TlvError(_TOO_DEEP, offset=pos, tag=tag.hex().upper())
            # The same six fields Tlv.__init__ sets, without the cost of calling it.
            node = new_node(node_type)
            node.tag_bytes = tag
            node.value = buf[vstart:vend]
            node.offset = pos
            node.length_form = form
            node.padding = buf[pad_start:pos] if pad_start != pos else b""
            if first & 0x20:
                node.children = children = TlvList()
                append(node)
                stack.append((out, end))
                out = children
                append = children.append
                end = vend
                depth += 1
                pos = pad_start = vstart
            else:
                node.children = None
                append(node)
                pos = pad_start = vend
    except TlvError as error:
        if strict:
            raise
        root.error = error
        return root


def encode_length(length: int, form: int = 0) -> bytes:
    """Encode a BER length. ``form`` asks for a field of that many bytes (as decoded);
    when the length does not fit in it, or ``form`` is 0, the minimal form is used."""
    if isinstance(length, bool) or not isinstance(length, int):
        raise LocalProtocolError(f"a TLV length must be an integer, got {length!r:.40}")
    if isinstance(form, bool) or not isinstance(form, int):
        raise LocalProtocolError(f"a TLV length form must be an integer, got {form!r:.40}")
    if length < 0:
        raise LocalProtocolError(f"a TLV length cannot be negative ({length})")
    if form == 1 and length < 0x80:
        return bytes((length,))
    if 2 <= form <= 5 and length < 1 << (8 * (form - 1)):
        return bytes((0x80 | (form - 1),)) + length.to_bytes(form - 1, "big")
    if length < 0x80:
        return bytes((length,))
    size = (length.bit_length() + 7) // 8
    if size > 4:
        raise LocalProtocolError(f"a TLV length of {length} needs more than 4 bytes")
    return bytes((0x80 | size,)) + length.to_bytes(size, "big")


def parse_tag(tag: int | str | bytes) -> bytes:
    """Normalise a tag given as ``0x9F38``, ``"9F38"`` or ``b"\\x9f\\x38"`` to its bytes,
    checking that it is a well-formed BER tag of 1-4 bytes."""
    if isinstance(tag, int) and not isinstance(tag, bool):
        if tag <= 0 or tag > 0xFFFFFFFF:
            raise LocalProtocolError(f"tag {tag:#x} is not a 1-4 byte tag")
        raw = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    elif isinstance(tag, str):
        text = tag.replace(" ", "").replace(":", "")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise LocalProtocolError(f"tag {tag!r} is not hex") from None
    elif isinstance(tag, bytes | bytearray):
        raw = bytes(tag)
    else:
        raise LocalProtocolError(f"a tag must be int, hex str or bytes, not {type(tag).__name__}")
    if not _is_well_formed_tag(raw):
        raise LocalProtocolError(f"{raw.hex().upper() or 'empty'} is not a well-formed BER tag")
    return raw


def _is_well_formed_tag(raw: bytes) -> bool:
    if not 1 <= len(raw) <= 4 or raw[0] in (0x00, 0xFF):
        return False
    if raw[0] & 0x1F != 0x1F:
        return len(raw) == 1
    if len(raw) == 1:
        return False
    return all(b & 0x80 for b in raw[1:-1]) and not raw[-1] & 0x80


def build(tag: int | str | bytes, value: Value) -> Tlv:
    """Build one node with a minimal length; ``value`` is bytes, or for a constructed tag
    an iterable of nodes / ``(tag, value)`` pairs.

    >>> encode([build("9F02", bytes.fromhex("000000000100"))]).hex().upper()
    '9F0206000000000100'
    """
    tag_bytes = parse_tag(tag)
    constructed = bool(tag_bytes[0] & 0x20)
    children: TlvList | None = None
    if isinstance(value, _BYTES_LIKE):
        raw = bytes(value)
        if constructed:
            children = decode(raw)
    else:
        if not constructed:
            raise LocalProtocolError(
                f"tag {tag_bytes.hex().upper()} is primitive: its value must be bytes, "
                f"not {type(value).__name__}"
            )
        where = f"tag {tag_bytes.hex().upper()}"
        children = TlvList(_as_node(item) for item in _items(value, where))
        raw = encode(children)
    return Tlv(tag_bytes, raw, children, 0, 0)


def _items(items: object, what: str) -> Iterator[Item]:
    """Iterate ``items`` (nodes or pairs), turning a value that is not a sequence of them
    (a number, ``None``, text or bytes, whose iteration yields characters or ints) into a
    :class:`LocalProtocolError` naming ``what`` was given it."""
    if isinstance(items, (str, int, Tlv, *_BYTES_LIKE)) or items is None:
        raise LocalProtocolError(
            f"{what} needs an iterable of Tlv nodes or (tag, value) pairs, "
            f"not {type(items).__name__}"
        )
    try:
        return iter(items)  # type: ignore[call-overload, no-any-return]
    except TypeError:
        raise LocalProtocolError(
            f"{what} needs an iterable of Tlv nodes or (tag, value) pairs, "
            f"not {type(items).__name__}"
        ) from None


def _as_node(item: Item) -> Tlv:
    if isinstance(item, Tlv):
        return item
    if isinstance(item, (str, *_BYTES_LIKE)):
        # A 2-character string or 2-byte value would unpack as a "pair": refuse it here.
        raise LocalProtocolError(
            f"expected a Tlv node or a (tag, value) pair, got {type(item).__name__} {item!r:.60}"
        )
    try:
        tag, value = item
    except (TypeError, ValueError):
        raise LocalProtocolError(
            f"expected a Tlv node or a (tag, value) pair, got {item!r:.60}"
        ) from None
    return build(tag, value)


def encode(items: Iterable[Item]) -> bytes:
    """Encode nodes and/or ``(tag, value)`` pairs to bytes.

    Decoded nodes come back exactly as they were read (padding, length forms); for a
    constructed node the children are encoded, so edits to them are reflected and the
    length is recomputed (keeping the original form when the new length fits in it).
    """
    parts: list[bytes] = []
    _items(items, "encode()")  # check the argument itself before any work
    _encode_into(items, parts, 0)
    return b"".join(parts)


def _encode_into(items: Iterable[Item], parts: list[bytes], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise LocalProtocolError(f"cannot encode nesting deeper than {MAX_DEPTH} levels")
    for item in items:
        node = _as_node(item)
        if node.padding:
            parts.append(node.padding)
        parts.append(node.tag_bytes)
        if node.children is not None:
            inner: list[bytes] = []
            _encode_into(node.children, inner, depth + 1)
            content = b"".join(inner)
        else:
            content = node.value
        parts.append(encode_length(len(content), node.length_form))
        parts.append(content)
    trailing = getattr(items, "trailing", b"")
    if trailing:
        parts.append(trailing)


def walk(nodes: Iterable[Tlv]) -> Iterator[tuple[int, Tlv]]:
    """Yield ``(depth, node)`` for every node, depth first, in document order."""
    stack: list[Iterator[Tlv]] = [iter(nodes)]
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
            continue
        yield len(stack) - 1, node
        if node.children is not None:
            stack.append(iter(node.children))


def find_all(nodes: Iterable[Tlv], tag: int | str | bytes) -> list[Tlv]:
    """Every node with ``tag`` at any depth, in document order; or, for a path such as
    ``"70/57"``, every node reached by following that path from the top level."""
    if isinstance(tag, str) and "/" in tag:
        level: list[Tlv] = list(nodes)
        steps = [parse_tag(step) for step in tag.strip("/").split("/")]
        for index, step in enumerate(steps):
            matched = [n for n in level if n.tag_bytes == step]
            if index == len(steps) - 1:
                return matched
            level = [child for n in matched for child in (n.children or ())]
        return []
    wanted = parse_tag(tag)
    return [node for _, node in walk(nodes) if node.tag_bytes == wanted]


def find(nodes: Iterable[Tlv], tag: int | str | bytes) -> Tlv | None:
    """The first node with ``tag`` (depth first), or the first one at a path like ``"70/57"``;
    ``None`` when absent."""
    if isinstance(tag, str) and "/" in tag:
        found = find_all(nodes, tag)
        return found[0] if found else None
    wanted = parse_tag(tag)
    for _, node in walk(nodes):
        if node.tag_bytes == wanted:
            return node
    return None


def find_value(data: bytes | bytearray | memoryview, tag: int | str | bytes) -> bytes | None:
    """The value of the first object with ``tag`` (depth first) in raw TLV ``data``, or
    ``None`` when absent.

    The whole buffer is validated exactly as :func:`decode` does (malformed data raises the
    same ``TlvError`` wherever it is), so the answer never depends on where the tag sits.
    The C path does this without building a tree; here decoding is the scan.
    """
    wanted = parse_tag(tag)
    for _, node in walk(decode(data)):
        if node.tag_bytes == wanted:
            return node.value
    return None


def find_all_values(data: bytes | bytearray | memoryview, tag: int | str | bytes) -> list[bytes]:
    """The values of every object with ``tag`` in raw TLV ``data``, depth first in document
    order (as :func:`find_all` orders nodes); an empty list when there is none.

    Validation and errors are those of :func:`find_value`: the whole buffer is checked as
    :func:`decode` checks it. ``tag`` is one tag, not a path.

    >>> find_all_values(bytes.fromhex("70075A01019F0201005A0102"), "5A")
    [b'\\x01', b'\\x02']
    """
    wanted = parse_tag(tag)
    return [node.value for _, node in walk(decode(data)) if node.tag_bytes == wanted]
