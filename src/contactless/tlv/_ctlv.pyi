"""Types of the C accelerator; the behaviour is that of ``_pytlv.decode``/``find_value``/
``find_all_values`` and of the reference node classes in ``node.py``, whose types these are."""

from .node import Tlv as Tlv
from .node import TlvList as TlvList

MAX_DEPTH: int

def decode(data: bytes | bytearray | memoryview, *, strict: bool = True) -> TlvList: ...
def find_value(data: bytes | bytearray | memoryview, tag: int | str | bytes) -> bytes | None: ...
def find_all_values(
    data: bytes | bytearray | memoryview, tag: int | str | bytes
) -> list[bytes]: ...
