"""BER-TLV for EMV: lossless decode/encode, lookups, tag dictionary, value formats.

The implementation is chosen once, by one rule: ``CONTACTLESS_PUREPYTHON=1`` forces the
pure-Python reference; otherwise the C accelerator is used when it was built (node types
and hot functions together; ``node.py`` applies the rule because its classes depend on it,
and this module follows it); ``CONTACTLESS_REQUIRE_C=1`` turns a missing accelerator into an
ImportError instead of a silent fall back. :data:`IMPLEMENTATION` says which one won.
"""

from __future__ import annotations

import os
from typing import Literal

from . import node as _node
from ._pytlv import (
    MAX_DEPTH,
    Item,
    Value,
    build,
    decode,
    encode,
    encode_length,
    find,
    find_all,
    find_all_values,
    find_value,
    parse_tag,
    walk,
)
from .node import Tlv, TlvList

# node.py makes the one choice (it must, before its classes exist): the C node types and
# decoder when the accelerator is built and CONTACTLESS_PUREPYTHON=1 is not set.
IMPLEMENTATION: Literal["c", "python"] = _node.IMPLEMENTATION

if _node._accelerated is not None:
    # The accelerator replaces the reference for the hot functions only.
    decode = _node._accelerated.decode
    find_value = _node._accelerated.find_value
    find_all_values = _node._accelerated.find_all_values
elif (
    os.environ.get("CONTACTLESS_PUREPYTHON") != "1"
    and os.environ.get("CONTACTLESS_REQUIRE_C") == "1"
):
    raise ImportError(
        "CONTACTLESS_REQUIRE_C=1 but the C TLV accelerator (contactless.tlv._ctlv) "
        "is not built; reinstall with a C compiler and the Python headers"
    )

__all__ = [
    "IMPLEMENTATION",
    "MAX_DEPTH",
    "Item",
    "Tlv",
    "TlvList",
    "Value",
    "build",
    "decode",
    "encode",
    "encode_length",
    "find",
    "find_all",
    "find_all_values",
    "find_value",
    "parse_tag",
    "walk",
]
