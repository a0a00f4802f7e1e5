"""The pure-Python helpers around the decoder: find, find_all, paths, walk, build, encode,
encode_length, parse_tag. Trees come from the shared vectors through ``impl.decode``, so
the helpers are also checked on nodes built by each implementation."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from contactless.errors import LocalProtocolError, TlvError
from contactless.tlv import (
    MAX_DEPTH,
    Tlv,
    TlvList,
    build,
    encode,
    encode_length,
    find,
    find_all,
    parse_tag,
    walk,
)

VECTOR_DIR = Path(__file__).resolve().parents[2] / "vectors" / "tlv"


def vector(name: str) -> bytes:
    data = json.loads((VECTOR_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return bytes.fromhex(data["hex"])


# --- find / find_all / paths / walk ------------------------------------------------------


def test_find_accepts_the_tag_as_int_hex_text_or_bytes(impl: ModuleType) -> None:
    tree = impl.decode(vector("fci-visa-prepaid-pdol"))
    pdol = bytes.fromhex("9F66049F02069F03069F1A0295055F2A029A039C019F3704")
    tags: tuple[int | str | bytes, ...] = (0x9F38, "9F38", "9f 38", "9F:38", b"\x9f\x38")
    for tag in tags:
        node = find(tree, tag)
        assert node is not None and node.value == pdol, tag


def test_find_searches_depth_first_and_returns_none_when_absent(impl: ModuleType) -> None:
    tree = impl.decode(vector("duplicate-tags"))
    first = find(tree, "9F36")
    assert first is not None and first.value == b"\x00\x0a"
    assert find(tree, "9F27") is None
    # A three-byte tag inside a nested template.
    nested = impl.decode(vector("three-byte-tags"))
    node = find(nested, "DF20")
    assert node is not None and node.offset == 17 and node.value == b""


def test_find_all_keeps_document_order_and_duplicates(impl: ModuleType) -> None:
    tree = impl.decode(vector("duplicate-tags"))
    assert [n.value.hex() for n in find_all(tree, 0x9F36)] == ["000a", "000b", "000c", "000d"]
    assert find_all(tree, "5A") == []


def test_path_lookup_follows_templates_from_the_top_level(impl: ModuleType) -> None:
    record = impl.decode(vector("record-mastercard-81-length"))
    track2 = find(record, "70/57")
    assert track2 is not None and track2.value.hex().upper() == "5413330089600044D14122010123409172"
    assert find(record, "57") is track2
    # A path names levels exactly: 57 is not at the top level.
    assert find(record, "/57") is None
    assert find(record, "70/9F38") is None

    ppse = impl.decode(vector("ppse-visa-credito-electron"))
    aids = find_all(ppse, "6F/A5/BF0C/61/4F")
    assert [a.value.hex().upper() for a in aids] == ["A0000000031010", "A0000000032010"]
    assert [n.value for n in find_all(ppse, "6F/A5/BF0C/61/87")] == [b"\x01", b"\x02"]
    dup = impl.decode(vector("duplicate-tags"))
    assert [n.value.hex() for n in find_all(dup, "70/9F36")] == ["000c", "000d"]
    assert [n.value.hex() for n in find_all(dup, "9F36/")] == ["000a", "000b"]


def test_path_with_a_bad_step_is_a_local_error(impl: ModuleType) -> None:
    tree = impl.decode(vector("gpo-format2-mastercard"))
    with pytest.raises(LocalProtocolError):
        find(tree, "77//94")
    with pytest.raises(LocalProtocolError):
        find_all(tree, "77/XY")


def test_walk_yields_depth_and_node_in_document_order(impl: ModuleType) -> None:
    tree = impl.decode(vector("nested-templates-five-levels"))
    assert [(depth, node.tag_hex) for depth, node in walk(tree)] == [
        (0, "6F"),
        (1, "84"),
        (1, "A5"),
        (2, "BF0C"),
        (3, "61"),
        (4, "4F"),
        (4, "87"),
        (4, "73"),
        (5, "9F0A"),
    ]
    assert list(walk(impl.decode(b""))) == []


def test_node_properties(impl: ModuleType) -> None:
    tree = impl.decode(vector("ppse-girocard-five-apps-81-lengths"))
    fci = tree[0]
    assert (fci.tag, fci.tag_hex, fci.constructed, fci.length, fci.length_form) == (
        0x6F,
        "6F",
        True,
        155,
        2,
    )
    priority = find(tree, "87")
    assert priority is not None and not priority.constructed and priority.children is None
    assert isinstance(fci.children, TlvList)


def test_padding_is_kept_on_the_next_node_and_on_the_list(impl: ModuleType) -> None:
    between = impl.decode(vector("padding-00-between"))
    assert [n.padding for n in between] == [b"", b"\x00\x00"]
    after = impl.decode(vector("padding-00-after"))
    assert after.trailing == b"\x00\x00"
    inside = impl.decode(vector("padding-inside-template"))
    template = inside[0]
    assert template.children is not None
    assert [n.padding for n in template.children] == [b"\x00", b"\x00"]
    assert template.children.trailing == b"\x00\x00"
    assert impl.decode(vector("padding-only-ff")).trailing == b"\xff\xff\xff"


# --- build / encode ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, "9F4B00"),
        (127, "9F4B7F"),
        (128, "9F4B8180"),
        (255, "9F4B81FF"),
        (256, "9F4B820100"),
        (65535, "9F4B82FFFF"),
        (65536, "9F4B83010000"),
    ],
)
def test_build_uses_the_minimal_length(size: int, header: str) -> None:
    value = bytes(size)
    assert encode([build("9F4B", value)]) == bytes.fromhex(header) + value


def test_encode_from_tag_value_pairs_with_minimal_lengths() -> None:
    pan = bytes.fromhex("4761739001010010")
    data = encode([("9F36", b"\x00\x01"), (0x9F17, b"\x03"), (b"\x5a", pan)])
    assert data.hex().upper() == "9F360200019F1701035A084761739001010010"
    long_value = bytes(range(200))
    assert encode([("9F46", long_value)]) == bytes.fromhex("9F4681C8") + long_value


def test_build_constructed_from_pairs_and_from_bytes() -> None:
    record = build("70", [("5A", bytes.fromhex("4761739001010010")), ("5F24", b"\x25\x12\x31")])
    assert encode([record]).hex().upper() == "70105A0847617390010100105F2403251231"
    assert record.children is not None
    assert [c.tag_hex for c in record.children] == ["5A", "5F24"]
    nested = build("77", [("82", b"\x19\x80"), record])
    assert (
        encode([nested]).hex().upper()
        == "77168202" + "1980" + "70105A0847617390010100105F2403251231"
    )
    from_raw = build("70", bytes.fromhex("5A0847617390010100105F2403251231"))
    assert from_raw.children is not None and len(from_raw.children) == 2
    assert encode([from_raw]) == encode([record])


def test_build_rejects_children_for_a_primitive_tag() -> None:
    with pytest.raises(LocalProtocolError, match="primitive"):
        build("5A", [("57", b"\x01")])


def test_build_constructed_from_malformed_bytes_raises_tlv_error() -> None:
    with pytest.raises(TlvError):
        build("70", bytes.fromhex("5A08"))


def test_encode_rejects_things_that_are_not_items() -> None:
    with pytest.raises(LocalProtocolError):
        encode([b"\x5a\x01\x00"])  # type: ignore[list-item]
    with pytest.raises(LocalProtocolError):
        encode([("5A", b"\x01", b"extra")])  # type: ignore[list-item]


def test_encode_accepts_max_depth_and_refuses_one_level_more() -> None:
    node = build("5A", b"\x11")
    for _ in range(MAX_DEPTH):
        node = build("E1", [node])
    assert encode([node]) == vector("depth-32-accepted")
    too_deep = build("E1", [node])
    with pytest.raises(LocalProtocolError, match="deeper"):
        encode([too_deep])


def test_edited_children_are_re_encoded_with_the_original_length_forms(
    impl: ModuleType,
) -> None:
    tree = impl.decode(vector("record-issuer-certificate-81-81"))
    certificate = find(tree, "70/90")
    assert certificate is not None
    certificate.value = b"\x01\x02"
    # 70 81 .. and 90 81 .. stay in the long form, as the card wrote them.
    assert encode(tree).hex().upper() == "7081059081020102"

    gpo = impl.decode(vector("gpo-format2-mastercard"))
    assert gpo[0].children is not None
    gpo[0].children.append(build("9F36", b"\x00\x35"))
    assert (
        encode(gpo).hex().upper()
        == "771B82025980941008010100100101011801020020010200" + "9F36020035"
    )


def test_a_length_that_outgrows_its_form_switches_to_the_minimal_one(impl: ModuleType) -> None:
    tree = impl.decode(vector("record-empty-issuer-remainder"))
    remainder = find(tree, "70/92")
    assert remainder is not None
    remainder.value = bytes(100)
    data = encode(tree)
    # 70 3E (short form) must now hold 162 bytes: 81 A2; 92 00 grows to 92 64.
    assert data.hex().upper().startswith("7081A28F01EF")
    assert data.hex().upper().endswith("9264" + "00" * 100)
    assert find(impl.decode(data), "92") is not None


# --- encode_length / parse_tag -----------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "form", "expected"),
    [
        (0, 0, "00"),
        (127, 0, "7F"),
        (128, 0, "8180"),
        (0x10000, 0, "83010000"),
        (0xFFFFFFFF, 0, "84FFFFFFFF"),
        (5, 1, "05"),
        (5, 2, "8105"),
        (5, 3, "820005"),
        (5, 5, "8400000005"),
        (300, 2, "82012C"),  # does not fit 81: minimal form instead
        (200, 1, "81C8"),
    ],
)
def test_encode_length(length: int, form: int, expected: str) -> None:
    assert encode_length(length, form).hex().upper() == expected


@pytest.mark.parametrize("length", [-1, 1 << 32])
def test_encode_length_out_of_range(length: int) -> None:
    with pytest.raises(LocalProtocolError):
        encode_length(length)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        (0x9F38, "9F38"),
        (0x5A, "5A"),
        (0xDF8101, "DF8101"),
        (0xDF818101, "DF818101"),
        ("bf0c", "BF0C"),
        ("9F 38", "9F38"),
        ("DF:81:01", "DF8101"),
        (b"\x9f\x38", "9F38"),
        (bytearray(b"\x70"), "70"),
    ],
)
def test_parse_tag_normalises(tag: int | str | bytes, expected: str) -> None:
    assert parse_tag(tag).hex().upper() == expected


@pytest.mark.parametrize(
    "tag",
    [
        "",  # empty
        "9F",  # says more bytes follow, none do
        "5A00",  # single-byte tag with an extra byte
        "9F81",  # last byte still says more follows
        "9F81818101",  # five bytes
        "FF01",  # FF reads as padding, never as a tag
        "00",
        "XYZ",
        0,
        -1,
        1 << 32,
        0x1F,
        True,
        1.5,
        None,
    ],
)
def test_parse_tag_rejects_malformed_tags(tag: object) -> None:
    with pytest.raises(LocalProtocolError):
        parse_tag(tag)  # type: ignore[arg-type]


def test_decode_builds_nodes_of_the_shared_type(impl: ModuleType) -> None:
    tree = impl.decode(vector("gpo-format1-visa"))
    assert isinstance(tree, TlvList) and isinstance(tree[0], Tlv)
    assert tree[0] == Tlv(b"\x80", bytes.fromhex("1C00080101001001010018030400"), None, 0, 1, b"")


@pytest.mark.parametrize("items", [5, None, 1.5, "9F0201FF", b"\x9f\x02\x01\xff"])
def test_encode_of_a_non_iterable_or_raw_data_is_a_local_error(items: object) -> None:
    with pytest.raises(LocalProtocolError, match=r"encode\(\) needs an iterable of Tlv nodes"):
        encode(items)  # type: ignore[arg-type]


def test_encode_of_a_single_node_asks_for_a_list() -> None:
    node = build("5A", b"\x12")
    with pytest.raises(LocalProtocolError, match="not Tlv"):
        encode(node)  # type: ignore[arg-type]
    assert encode([node]).hex().upper() == "5A0112"


@pytest.mark.parametrize("item", ["9F", b"\x5a\x00"])
def test_a_two_character_text_or_two_bytes_is_not_a_pair(item: object) -> None:
    # Without the check these unpack as (tag, value) and give a misleading message.
    with pytest.raises(LocalProtocolError, match="expected a Tlv node or a"):
        encode([item])  # type: ignore[list-item]


@pytest.mark.parametrize("value", [5, None, "5A0112"])
def test_build_constructed_from_a_non_iterable_is_a_local_error(value: object) -> None:
    with pytest.raises(LocalProtocolError, match="tag 70 needs an iterable"):
        build("70", value)  # type: ignore[arg-type]


def test_build_accepts_a_memoryview_value() -> None:
    assert encode([build("5A", memoryview(b"\x12\x34"))]).hex().upper() == "5A021234"


@pytest.mark.parametrize(("length", "form"), [("3", 0), (None, 0), (True, 0), (3, "1")])
def test_encode_length_of_a_non_integer_is_a_local_error(length: object, form: object) -> None:
    with pytest.raises(LocalProtocolError, match="must be an integer"):
        encode_length(length, form)  # type: ignore[arg-type]
