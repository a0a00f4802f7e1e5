"""Property tests for the TLV decoder, run against every implementation (``impl``).

Trees are generated together with their encoding by a small encoder written here, from the
BER rules alone (tags of 1-4 bytes, short or long lengths of any allowed width, 00/FF
padding before objects and at the end of any list), so the decoder is checked against an
independent construction, not against itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contactless.errors import TlvError
from contactless.tlv import Tlv, encode, find, find_all

# Fixture-parametrised tests with @given: the fixture is function-scoped but stateless.
_SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass
class Spec:
    """A data object as generated: tag, value or children, length width and padding."""

    tag: bytes
    value: bytes = b""
    children: list[Spec] | None = None
    length_width: int = 0  # bytes in the length field; 0 means minimal
    padding: bytes = b""
    trailing: bytes = b""  # padding after the last child (constructed only)
    offset: int = field(default=-1, compare=False)


def _length_field(length: int, width: int) -> bytes:
    if width == 0:
        width = 1 if length < 0x80 else 1 + (length.bit_length() + 7) // 8
    if width == 1:
        assert length < 0x80
        return bytes((length,))
    return bytes((0x80 | (width - 1),)) + length.to_bytes(width - 1, "big")


def content_of(specs: list[Spec], trailing: bytes) -> bytes:
    """The encoding of ``specs`` (no offsets recorded)."""
    out = bytearray()
    for spec in specs:
        if spec.children is not None:
            content = content_of(spec.children, spec.trailing)
        else:
            content = spec.value
        out += spec.padding + spec.tag + _length_field(len(content), spec.length_width) + content
    return bytes(out + trailing)


def encode_specs(specs: list[Spec], trailing: bytes, base: int = 0) -> bytes:
    """Encode ``specs`` starting at position ``base``, recording each one's offset."""
    out = bytearray()
    for spec in specs:
        out += spec.padding
        spec.offset = base + len(out)
        if spec.children is not None:
            size = len(content_of(spec.children, spec.trailing))
            header = spec.tag + _length_field(size, spec.length_width)
            content = encode_specs(spec.children, spec.trailing, spec.offset + len(header))
        else:
            content = spec.value
            header = spec.tag + _length_field(len(content), spec.length_width)
        out += header + content
    return bytes(out + trailing)


# --- strategies --------------------------------------------------------------------------

padding_bytes = st.lists(st.sampled_from([0x00, 0xFF]), max_size=3).map(bytes)


@st.composite
def tags(draw: st.DrawFn, constructed: bool) -> bytes:
    klass = draw(st.sampled_from([0x00, 0x40, 0x80, 0xC0]))
    form = 0x20 if constructed else 0x00
    if draw(st.booleans()):
        number = draw(st.integers(0, 0x1E))
        first = klass | form | number
        if first == 0x00:  # would read as padding
            first = 0x01
        return bytes((first,))
    first = klass | form | 0x1F
    if first == 0xFF:  # would read as padding: use the context class instead
        first = 0xBF
    middle = draw(st.lists(st.integers(0x80, 0xFF), max_size=2))
    last = draw(st.integers(0x00, 0x7F))
    return bytes((first, *middle, last))


def _width(draw: st.DrawFn, length: int) -> int:
    # Any width that can hold the length: minimal, or a longer (non-minimal) long form.
    needed = 1 if length < 0x80 else 1 + (length.bit_length() + 7) // 8
    width: int = draw(st.sampled_from([0, *range(max(needed, 2), 6)]))
    return width


@st.composite
def primitive(draw: st.DrawFn) -> Spec:
    value = draw(st.binary(max_size=40) | st.binary(min_size=120, max_size=300))
    return Spec(draw(tags(False)), value, None, _width(draw, len(value)), draw(padding_bytes))


def constructed(children: st.SearchStrategy[list[Spec]]) -> st.SearchStrategy[Spec]:
    @st.composite
    def build(draw: st.DrawFn) -> Spec:
        kids = draw(children)
        trailing = draw(padding_bytes)
        size = len(content_of(kids, trailing))
        return Spec(draw(tags(True)), b"", kids, _width(draw, size), draw(padding_bytes), trailing)

    return build()


specs = st.recursive(
    primitive(),
    lambda inner: constructed(st.lists(inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def documents(draw: st.DrawFn) -> tuple[list[Spec], bytes]:
    nodes = draw(st.lists(specs, max_size=4))
    trailing = draw(padding_bytes)
    return nodes, encode_specs(nodes, trailing)


def assert_same(decoded: list[Tlv], nodes: list[Spec], data: bytes) -> None:
    assert len(decoded) == len(nodes)
    for got, want in zip(decoded, nodes, strict=True):
        assert got.tag_bytes == want.tag
        assert got.offset == want.offset
        assert got.padding == want.padding
        assert data[got.offset : got.offset + len(want.tag)] == want.tag
        if want.children is None:
            assert got.children is None
            assert got.value == want.value
        else:
            assert got.children is not None
            assert got.value == content_of(want.children, want.trailing)
            assert got.children.trailing == want.trailing
            assert_same(got.children, want.children, data)


# Bytes that steer random input into the decoder's branches: padding, multi-byte tag
# starts, long-form and forbidden length bytes, common templates.
interesting_bytes = st.lists(
    st.sampled_from(
        [
            0x00,
            0xFF,
            0x1F,
            0x5F,
            0x9F,
            0xBF,
            0xDF,
            0x81,
            0x82,
            0x84,
            0x85,
            0x80,
            0x01,
            0x02,
            0x03,
            0x7F,
            0x70,
            0x77,
            0x6F,
            0xA5,
            0x61,
            0x5A,
            0xE1,
        ]
    )
    | st.integers(0, 255),
    max_size=120,
).map(bytes)
random_bytes = st.binary(max_size=200) | interesting_bytes


# --- properties --------------------------------------------------------------------------


@_SETTINGS
@given(documents())
def test_generated_trees_decode_exactly_and_round_trip(
    impl: ModuleType, document: tuple[list[Spec], bytes]
) -> None:
    nodes, data = document
    decoded = impl.decode(data)
    assert_same(decoded, nodes, data)
    assert encode(decoded) == data


@_SETTINGS
@given(st.lists(primitive() | constructed(st.lists(primitive(), max_size=3)), max_size=3))
def test_every_proper_prefix_of_one_object_is_an_error(
    impl: ModuleType, candidates: list[Spec]
) -> None:
    for spec in candidates:
        spec.padding = b""
        data = content_of([spec], b"")
        for cut in range(1, len(data)):
            try:
                impl.decode(data[:cut])
            except TlvError as error:
                assert error.offset <= cut
            else:
                raise AssertionError(f"{data[:cut].hex()} decoded without error")


@_SETTINGS
@given(documents(), st.sampled_from([b"\x9f", b"\x5a", b"\x5a\x81", b"\x5a\x05", b"\x6f\x80"]))
def test_lenient_decode_keeps_everything_before_the_error(
    impl: ModuleType, document: tuple[list[Spec], bytes], garbage: bytes
) -> None:
    nodes, data = document
    result = impl.decode(data + garbage, strict=False)
    assert isinstance(result.error, TlvError)
    assert result.error.offset == len(data)
    assert_same(result, nodes, data)


@_SETTINGS
@given(random_bytes)
def test_random_bytes_raise_nothing_but_tlv_error(impl: ModuleType, data: bytes) -> None:
    try:
        strict = impl.decode(data)
    except TlvError as error:
        assert 0 <= error.offset < len(data)
        lenient = impl.decode(data, strict=False)
        assert isinstance(lenient.error, TlvError)
        assert (lenient.error.offset, lenient.error.tag, lenient.error.reason) == (
            error.offset,
            error.tag,
            error.reason,
        )
    else:
        lenient = impl.decode(data, strict=False)
        assert lenient.error is None
        assert lenient == strict
        assert encode(strict) == data


@_SETTINGS
@given(documents(), st.data())
def test_find_value_agrees_with_find_on_the_decoded_tree(
    impl: ModuleType, document: tuple[list[Spec], bytes], draw: st.DataObject
) -> None:
    _, data = document
    tree = impl.decode(data)
    present = sorted({node.tag_bytes for node in _all(tree)})
    wanted = (
        draw.draw(st.sampled_from(present) | tags(False) | tags(True))
        if present
        else (draw.draw(tags(False)))
    )
    node = find(tree, wanted)
    assert impl.find_value(data, wanted) == (node.value if node is not None else None)


@_SETTINGS
@given(random_bytes, tags(False) | tags(True))
def test_find_value_on_random_bytes_fails_exactly_like_decode(
    impl: ModuleType, data: bytes, tag: bytes
) -> None:
    try:
        tree = impl.decode(data)
    except TlvError as error:
        try:
            impl.find_value(data, tag)
        except TlvError as same:
            assert (same.offset, same.tag, same.reason) == (error.offset, error.tag, error.reason)
        else:
            raise AssertionError("find_value accepted data that decode rejects") from None
    else:
        node = find(tree, tag)
        assert impl.find_value(data, tag) == (node.value if node is not None else None)


@_SETTINGS
@given(documents(), st.data())
def test_find_all_values_agrees_with_find_all_on_the_decoded_tree(
    impl: ModuleType, document: tuple[list[Spec], bytes], draw: st.DataObject
) -> None:
    _, data = document
    tree = impl.decode(data)
    present = sorted({node.tag_bytes for node in _all(tree)})
    wanted = (
        draw.draw(st.sampled_from(present) | tags(False) | tags(True))
        if present
        else (draw.draw(tags(False)))
    )
    expected = [node.value for node in _all(tree) if node.tag_bytes == wanted]
    assert impl.find_all_values(data, wanted) == expected
    assert expected == [node.value for node in find_all(tree, wanted)]


@_SETTINGS
@given(random_bytes, tags(False) | tags(True))
def test_find_all_values_on_random_bytes_fails_exactly_like_decode(
    impl: ModuleType, data: bytes, tag: bytes
) -> None:
    try:
        tree = impl.decode(data)
    except TlvError as error:
        try:
            impl.find_all_values(data, tag)
        except TlvError as same:
            assert (same.offset, same.tag, same.reason) == (error.offset, error.tag, error.reason)
        else:
            raise AssertionError("find_all_values accepted data that decode rejects") from None
    else:
        assert impl.find_all_values(data, tag) == [node.value for node in find_all(tree, tag)]


def _all(nodes: list[Tlv]) -> list[Tlv]:
    out: list[Tlv] = []
    for node in nodes:
        out.append(node)
        if node.children is not None:
            out.extend(_all(node.children))
    return out
