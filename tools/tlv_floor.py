"""A lower bound for pure-Python decoding: ``floor_decode`` builds the same tree as
``contactless.tlv._pytlv.decode`` but checks nothing.

This is a measuring instrument for tools/bench_tlv.py, not a decoder: it never raises a
``TlvError``, reads malformed input as garbage, ignores MAX_DEPTH and does not handle
00/FF padding (the benchmark only times it on inputs without padding, and checks that it
returns exactly the tree the real decoder returns). Nodes are built exactly as the real
decoder builds them (``object.__new__`` and six slot stores), so the difference between
the two is the cost of validation and the loop's structure, and the ratio of this floor
to pyemv is the most any decoder returning these nodes can gain on these inputs in this
interpreter by tuning its loop (docs/benchmarks.md, "How close pure decode can get").
"""

from __future__ import annotations

from contactless.tlv._pytlv import _ONE_BYTE_TAGS as _ONE_BYTE
from contactless.tlv.node import Tlv, TlvList

# The two-byte tags as shared bytes by first and second byte, rows of 256 (the decoder's
# rows stop at 0x7F because it checks the second byte first; this floor checks nothing).
_TWO_BYTE = tuple(
    tuple(bytes((b, s)) if s < 0x80 else None for s in range(256))
    if b & 0x1F == 0x1F and b != 0xFF
    else None
    for b in range(256)
)
_CONSTRUCTED = tuple(bool(b & 0x20) for b in range(256))


def floor_decode(buf: bytes) -> TlvList:
    """Decode well-formed, unpadded BER-TLV ``buf`` with no checks at all."""
    root = out = TlvList()
    append = out.append
    end = len(buf)
    pos = 0
    stack: list[TlvList | int] = []
    new_node = object.__new__
    node_type = Tlv
    one_byte = _ONE_BYTE
    two_byte = _TWO_BYTE
    constructed = _CONSTRUCTED
    while True:
        if pos < end:
            first = buf[pos]
            tag = one_byte[first]
            if tag is not None:
                i = pos + 1
            else:
                tag = two_byte[first][buf[pos + 1]]  # type: ignore[index]
                if tag is not None:
                    i = pos + 2
                else:  # three or four bytes
                    i = pos + 2
                    while buf[i] & 0x80:
                        i += 1
                    i += 1
                    tag = buf[pos:i]
            length = buf[i]
            if length < 0x80:
                vstart = i + 1
                form = 1
            else:
                form = length - 0x7F
                vstart = i + form
                length = int.from_bytes(buf[i + 1 : vstart], "big")
            vend = vstart + length
            node = new_node(node_type)
            node.tag_bytes = tag
            node.value = buf[vstart:vend]
            node.offset = pos
            node.length_form = form
            node.padding = b""
            if constructed[first]:
                node.children = children = TlvList()
                append(node)
                stack.append(out)
                stack.append(end)
                out = children
                append = children.append
                end = vend
                pos = vstart
            else:
                node.children = None
                append(node)
                pos = vend
        elif stack:
            pos = end
            end = stack.pop()  # type: ignore[assignment]
            out = stack.pop()  # type: ignore[assignment]
            append = out.append
        else:
            return root
