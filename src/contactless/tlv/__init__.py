"""BER-TLV for EMV: lossless decode/encode, lookups, tag dictionary, value formats.

The implementation of the hot functions is picked here and only here:
``CONTACTLESS_PUREPYTHON=1`` forces the pure-Python reference; otherwise the C accelerator
is used when it was built; ``CONTACTLESS_REQUIRE_C=1`` turns a missing accelerator into an
ImportError instead of a silent fall back. :data:`IMPLEMENTATION` says which one won.
"""

from __future__ import annotations

import os
from typing import Literal

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
    find_value,
    parse_tag,
    walk,
)
from .node import Tlv, TlvList

IMPLEMENTATION: Literal["c", "python"] = "python"

if os.environ.get("CONTACTLESS_PUREPYTHON") != "1":
    try:
        from . import _ctlv
    except ImportError:
        if os.environ.get("CONTACTLESS_REQUIRE_C") == "1":
            raise ImportError(
                "CONTACTLESS_REQUIRE_C=1 but the C TLV accelerator (contactless.tlv._ctlv) "
                "is not built; reinstall with a C compiler and the Python headers"
            ) from None
    else:
        # The accelerator replaces the reference for the hot functions only.
        decode = _ctlv.decode
        find_value = _ctlv.find_value
        IMPLEMENTATION = "c"

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
    "find_value",
    "parse_tag",
    "walk",
]
