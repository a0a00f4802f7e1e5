"""Differential tests: the C accelerator against the pure-Python reference.

Both paths get the same input and must give the same outcome: equal trees (tag bytes,
value, offset, length form, padding, trailing bytes, children, and which attributes were
set on each list) or equal errors (class, reason, offset, tag, message). Inputs: every
vector in vectors/tlv/ and every prefix and single-byte mutation of it, hypothesis-built
TLV trees with padding and long forms (intact and damaged), random bytes, partial results
with ``strict=False``, and ``find_value`` / ``find_all_values`` on every tag of every
vector plus absent ones (each ``assert_same_find`` checks both).

``outcome`` is also what tools/fuzz_tlv.py compares, so a fuzzer finding is a test here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contactless.errors import TlvError
from contactless.tlv import _pytlv
from contactless.tlv.node import Tlv, TlvList

try:
    from contactless.tlv import _ctlv
except ImportError:
    if os.environ.get("CONTACTLESS_REQUIRE_C") == "1":
        raise
    pytest.skip("the C accelerator is not built", allow_module_level=True)

VECTOR_DIR = Path(__file__).resolve().parents[2] / "vectors" / "tlv"
VECTORS: dict[str, bytes] = {
    path.stem: bytes.fromhex(json.loads(path.read_text(encoding="utf-8"))["hex"])
    for path in sorted(VECTOR_DIR.glob("*.json"))
}

#: Bytes that steer a decoder into its interesting branches (padding, multi-byte tags,
#: continuation bits, constructed bit, every length form).
INTERESTING = (0x00, 0xFF, 0x1F, 0x9F, 0x5F, 0xBF, 0x70, 0x20, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85)

_FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- what "the same outcome" means --------------------------------------------------------


def error_key(error: BaseException | None) -> tuple[Any, ...] | None:
    """Everything a caller can see of an error."""
    if error is None:
        return None
    return (
        type(error),
        getattr(error, "reason", None),
        getattr(error, "offset", None),
        getattr(error, "tag", None),
        getattr(error, "remedy", None),
        str(error),
        error.args,
    )


def tree_key(nodes: TlvList) -> tuple[Any, ...]:
    """Everything a caller can see of a decoded list, recursively, with exact types."""
    assert type(nodes) is TlvList, type(nodes)
    return (
        tuple(sorted(vars(nodes))),  # trailing/error are set only when there is something
        nodes.trailing,
        error_key(nodes.error),
        tuple(node_key(node) for node in nodes),
    )


def node_key(node: Tlv) -> tuple[Any, ...]:
    assert type(node) is Tlv, type(node)
    for name in ("tag_bytes", "value", "padding"):
        assert type(getattr(node, name)) is bytes, name
    assert type(node.offset) is int and type(node.length_form) is int
    children = None if node.children is None else tree_key(node.children)
    return (node.tag_bytes, node.value, node.offset, node.length_form, node.padding, children)


def outcome(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    """What a call gives back: its result (trees by value) or the error it raised."""
    try:
        result = function(*args, **kwargs)
    except Exception as error:
        return ("raised", error_key(error))
    if isinstance(result, TlvList):
        return ("returned", tree_key(result))
    if type(result) is list:  # find_all_values: a plain list of plain bytes
        assert all(type(value) is bytes for value in result), result
        return ("returned", tuple(result))
    assert result is None or type(result) is bytes, type(result)
    return ("returned", result)


def assert_same_decode(data: Any) -> None:
    """Strict and lenient decoding agree between the two paths."""
    for strict in (True, False):
        python = outcome(_pytlv.decode, data, strict=strict)
        c = outcome(_ctlv.decode, data, strict=strict)
        assert c == python, f"strict={strict} data={bytes(data).hex().upper()}"


def assert_same_find(data: Any, tag: Any) -> None:
    """find_value and find_all_values agree between the two paths."""
    for name in ("find_value", "find_all_values"):
        python = outcome(getattr(_pytlv, name), data, tag)
        c = outcome(getattr(_ctlv, name), data, tag)
        assert c == python, f"{name} tag={tag!r} data={bytes(data).hex().upper()}"


def tags_in(data: bytes) -> list[bytes]:
    """Distinct tags of a (possibly partial) decode, in document order."""
    seen: dict[bytes, None] = {}
    for _, node in _pytlv.walk(_pytlv.decode(data, strict=False)):
        seen.setdefault(node.tag_bytes)
    return list(seen)


# --- vectors ------------------------------------------------------------------------------


def test_vectors_are_present() -> None:
    assert len(VECTORS) >= 10, f"expected the TLV vectors in {VECTOR_DIR}"
    assert any(
        isinstance(_pytlv.decode(raw, strict=False).error, TlvError) for raw in VECTORS.values()
    ), "the vectors should include malformed ones"


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_vector(name: str) -> None:
    assert_same_decode(VECTORS[name])


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_every_prefix_of_vector(name: str) -> None:
    raw = VECTORS[name]
    for end in range(len(raw) + 1):
        assert_same_decode(raw[:end])


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_every_single_byte_mutation_of_vector(name: str) -> None:
    raw = VECTORS[name]
    for index in range(len(raw)):
        replacements = {*INTERESTING, raw[index] ^ 0x80, raw[index] ^ 0x20, (raw[index] + 1) & 0xFF}
        for byte in replacements:
            assert_same_decode(raw[:index] + bytes((byte,)) + raw[index + 1 :])
        assert_same_decode(raw[:index] + raw[index + 1 :])  # deleted
        assert_same_decode(raw[:index] + b"\x81" + raw[index:])  # inserted


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_find_value_on_every_tag_of_vector(name: str) -> None:
    raw = VECTORS[name]
    for tag in tags_in(raw):
        number = int.from_bytes(tag, "big")
        for spelling in (
            tag,
            number,
            tag.hex().upper(),
            tag.hex(),
            " ".join(f"{b:02x}" for b in tag),
        ):
            assert_same_find(raw, spelling)
    for absent in ("9F99", 0xDF7F, b"\x01", "5F2D", "BF0C", "1F8101", 0x7F8F8F0F):
        assert_same_find(raw, absent)


# --- generated TLV trees ------------------------------------------------------------------


def _length_field(length: int, width: int) -> bytes:
    """A BER length in `width` bytes (1 short form, 2-5 long form), minimal if it won't fit."""
    if width > 1 and length < 1 << (8 * (width - 1)):
        return bytes((0x7F + width,)) + length.to_bytes(width - 1, "big")
    if length < 0x80:
        return bytes((length,))
    size = (length.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + length.to_bytes(size, "big")


@st.composite
def tags(draw: st.DrawFn, constructed: bool) -> bytes:
    bit = 0x20 if constructed else 0x00
    if draw(st.booleans()):
        first = draw(st.integers(0, 255).filter(lambda b: b & 0x1F != 0x1F)) & ~0x20 | bit
        if first in (0x00, 0xFF):
            first = 0x01 | bit
        return bytes((first,))
    first = draw(st.sampled_from([0x1F, 0x5F, 0x9F, 0xDF])) | bit
    if first == 0xFF:
        first = 0xBF
    middle = draw(st.lists(st.integers(0x80, 0xFF), max_size=2))
    return bytes((first, *middle, draw(st.integers(0x00, 0x7F))))


paddings = st.lists(st.sampled_from([b"\x00", b"\xff"]), max_size=3).map(b"".join)
length_widths = st.sampled_from([1, 1, 1, 2, 3, 4, 5])


def _object(padding: bytes, tag: bytes, width: int, content: bytes) -> bytes:
    return padding + tag + _length_field(len(content), width) + content


primitives = st.builds(
    _object, paddings, tags(constructed=False), length_widths, st.binary(max_size=40)
)


def _templates(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    contents = st.builds(
        lambda kids, trail: b"".join(kids) + trail, st.lists(children, max_size=4), paddings
    )
    return st.builds(_object, paddings, tags(constructed=True), length_widths, contents)


tlv_objects = st.recursive(primitives, _templates, max_leaves=30)
tlv_streams = st.builds(
    lambda objs, trail: b"".join(objs) + trail, st.lists(tlv_objects, max_size=5), paddings
)


@st.composite
def nested_chains(draw: st.DrawFn) -> bytes:
    """Templates nested around the MAX_DEPTH limit."""
    depth = draw(st.integers(_pytlv.MAX_DEPTH - 2, _pytlv.MAX_DEPTH + 3))
    levels = draw(st.lists(st.tuples(paddings, tags(constructed=True)), min_size=2, max_size=6))
    widths = draw(st.lists(length_widths, min_size=1, max_size=5))
    raw = draw(primitives)
    for level in range(depth):
        padding, tag = levels[level % len(levels)]
        raw = _object(padding, tag, widths[level % len(widths)], raw)
    return raw


@_FAST
@given(tlv_streams)
def test_generated_trees(data: bytes) -> None:
    assert_same_decode(data)
    for tag in tags_in(data)[:6]:
        assert_same_find(data, tag)


@_FAST
@given(tlv_streams, st.data())
def test_damaged_generated_trees(data: bytes, draw: st.DataObject) -> None:
    if data:
        index = draw.draw(st.integers(0, len(data) - 1))
        damage = draw.draw(st.sampled_from(["truncate", "replace", "insert", "delete"]))
        byte = bytes((draw.draw(st.sampled_from(INTERESTING) | st.integers(0, 255)),))
        data = {
            "truncate": data[:index],
            "replace": data[:index] + byte + data[index + 1 :],
            "insert": data[:index] + byte + data[index:],
            "delete": data[:index] + data[index + 1 :],
        }[damage]
    assert_same_decode(data)
    for tag in tags_in(data)[:3]:
        assert_same_find(data, tag)


@_FAST
@given(nested_chains())
def test_nesting_around_the_depth_limit(data: bytes) -> None:
    assert_same_decode(data)
    assert_same_find(data, tags_in(data)[-1])


@_FAST
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    assert_same_decode(data)
    assert_same_find(data, "9F02")


@_FAST
@given(st.lists(st.sampled_from(INTERESTING) | st.integers(0, 255), max_size=120).map(bytes))
def test_random_tlv_like_bytes(data: bytes) -> None:
    assert_same_decode(data)
    assert_same_find(data, 0x70)


def test_hostile_nesting_much_deeper_than_the_limit() -> None:
    raw = b"\x5a\x00"
    for _ in range(5000):
        raw = b"\x70" + _length_field(len(raw), 5) + raw
    assert_same_decode(raw)
    assert_same_find(raw, "5A")


def test_huge_declared_lengths() -> None:
    for raw in ("5A84FFFFFFFF", "5A84FFFFFFFF00", "7084FFFFFFFF5A00", "5A8480000000"):
        assert_same_decode(bytes.fromhex(raw))
        assert_same_find(bytes.fromhex(raw), "5A")


def test_find_all_values_order_nesting_and_many_matches() -> None:
    # A constructed match comes before the matches inside it (pre-order), like find_all.
    inner = bytes.fromhex("70035A0102")
    raw = bytes.fromhex("5A0101") + b"\x70" + bytes((len(inner) + 3,)) + inner + b"\x5a\x01\x03"
    for module in (_ctlv, _pytlv):
        assert module.find_all_values(raw, "5A") == [b"\x01", b"\x02", b"\x03"]
        assert module.find_all_values(raw, 0x70) == [inner + b"\x5a\x01\x03", b"\x5a\x01\x02"]
    assert_same_find(raw, "5A")
    # Thousands of matches, then the same with a fault after them: no partial list.
    many = b"\x5a\x01\x07" * 5000
    assert _ctlv.find_all_values(many, "5A") == [b"\x07"] * 5000
    assert_same_find(many, "5A")
    assert_same_find(many + b"\x5a\x02\x07", "5A")
    with pytest.raises(TlvError):
        _ctlv.find_all_values(many + b"\x5a\x02\x07", "5A")


# --- arguments ----------------------------------------------------------------------------


class _BytesWithDunder(bytes):
    def __bytes__(self) -> bytes:
        return b"\x5a\x01\x99"


def _released_view() -> memoryview:
    view = memoryview(b"\x5a\x01\x01")
    view.release()
    return view


@pytest.mark.parametrize(
    "data",
    [
        bytearray.fromhex("6F0384015A00FF"),
        memoryview(bytes.fromhex("006F0384015AFF"))[1:],
        memoryview(bytes.fromhex("5A01015A0102"))[::2],  # not contiguous
        memoryview(bytes.fromhex("5A0101005A0102FF")).cast("H"),
        type("Sub", (bytes,), {})(bytes.fromhex("5A01019F0200")),
        _BytesWithDunder(b"\x9f\x02\x00"),
        _released_view(),
        "5A0101",
        0x5A0101,
        None,
        [0x5A, 0x01, 0x01],
    ],
    ids=lambda value: type(value).__name__,
)
def test_input_types(data: Any) -> None:
    assert_same_decode(data)
    assert_same_find(data, "5A")


@pytest.mark.parametrize(
    "tag",
    [
        0,
        -1,
        1 << 32,
        True,
        1.5,
        None,
        "",
        "XYZ",
        "9F",
        "9F 02 0",
        b"",
        b"\x9f",
        b"\x5a\x01",
        b"\x00",
        b"\xff",
        "FF",
        bytearray(b"\x5a"),
        "9F:02",
        "9f8102",
        0x9F8180,
        b"\x1f\x81\x81\x81\x01",
    ],
    ids=repr,
)
def test_find_value_tag_arguments(tag: Any) -> None:
    for data in (bytes.fromhex("9F02015A9F810201FF"), b"", "not bytes", b"\x9f"):
        assert_same_find(data, tag)


def test_strict_is_read_for_truth_only_when_an_error_happens() -> None:
    class Exploding:
        def __bool__(self) -> bool:
            raise ZeroDivisionError("strict was asked")

    stricts: list[object] = [0, 1, None, "", "yes", [], Exploding()]
    for data in (b"\x5a\x01\x01", b"\x5a\x05\x01"):
        for strict in stricts:
            assert outcome(_ctlv.decode, data, strict=strict) == outcome(
                _pytlv.decode, data, strict=strict
            )


def test_keyword_arguments() -> None:
    raw = bytes.fromhex("6F035A0101")
    assert outcome(_ctlv.decode, data=raw) == outcome(_pytlv.decode, data=raw)
    assert outcome(_ctlv.decode, data=raw, strict=False) == outcome(
        _pytlv.decode, raw, strict=False
    )
    assert _ctlv.find_value(data=raw, tag="5A") == _pytlv.find_value(data=raw, tag="5A") == b"\x01"
    assert _ctlv.find_value(raw, tag=0x5A) == b"\x01"
    raw = bytes.fromhex("6F085A01019F02005A00")
    assert _ctlv.find_all_values(data=raw, tag="5A") == [b"\x01", b""]
    assert _pytlv.find_all_values(data=raw, tag="5A") == [b"\x01", b""]
    assert _ctlv.find_all_values(raw, tag=0x9F02) == [b""]


@pytest.mark.parametrize(
    ("function_name", "args", "kwargs"),
    [
        ("decode", (), {}),
        ("decode", (b"",), {"bogus": 1}),
        ("decode", (b"", True), {}),
        ("decode", (b"",), {"data": b""}),
        ("find_value", (), {}),
        ("find_value", (b"",), {}),
        ("find_value", (b"", "5A", 1), {}),
        ("find_value", (b"",), {"tag": "5A", "bogus": 1}),
        ("find_value", (b"", "5A"), {"data": b""}),
        ("find_all_values", (), {}),
        ("find_all_values", (b"",), {}),
        ("find_all_values", (b"", "5A", 1), {}),
        ("find_all_values", (b"",), {"tag": "5A", "bogus": 1}),
        ("find_all_values", (b"", "5A"), {"data": b""}),
    ],
)
def test_bad_call_shapes_raise_type_error_on_both(
    function_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    for module in (_ctlv, _pytlv):
        with pytest.raises(TypeError):
            getattr(module, function_name)(*args, **kwargs)
