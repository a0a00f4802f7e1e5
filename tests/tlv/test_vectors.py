"""Every vector in vectors/tlv/ through every implementation (the ``impl`` fixture).

Valid vectors must decode to the expected tree and re-encode byte for byte; malformed ones
must raise TlvError with the expected offset, tag and reason, and ``strict=False`` must
return the expected partial tree with ``.error`` set. See vectors/README.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

from contactless.errors import LocalProtocolError, TlvError
from contactless.tlv import Tlv, encode, find_all

VECTOR_DIR = Path(__file__).resolve().parents[2] / "vectors" / "tlv"
VECTOR_FILES = sorted(VECTOR_DIR.glob("*.json"))

_HEX = {"type": "string", "pattern": "^([0-9A-F]{2})*$"}
_NODE: dict[str, Any] = {
    "type": "object",
    "required": ["tag", "offset", "length", "value"],
    "additionalProperties": False,
    "properties": {
        "tag": {"type": "string", "pattern": "^([0-9A-F]{2}){1,4}$"},
        "offset": {"type": "integer", "minimum": 0},
        "length": {"type": "integer", "minimum": 0},
        "value": _HEX,
        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
    },
}
#: The vector file format of vectors/README.md, as a JSON schema.
VECTOR_SCHEMA: dict[str, Any] = {
    "$defs": {"node": _NODE},
    "type": "object",
    "required": ["description", "hex", "source"],
    "properties": {
        "description": {"type": "string", "minLength": 10},
        "hex": _HEX,
        "source": {"type": "string", "minLength": 5},
        "expect": {"type": "array", "items": {"$ref": "#/$defs/node"}},
        "error": {
            "type": "object",
            "required": ["offset", "tag", "reason"],
            "additionalProperties": False,
            "properties": {
                "offset": {"type": "integer", "minimum": 0},
                "tag": {"type": ["string", "null"], "pattern": "^([0-9A-F]{2}){1,4}$"},
                "reason": {"type": "string", "minLength": 5},
            },
        },
        "partial": {"type": "array", "items": {"$ref": "#/$defs/node"}},
    },
    "oneOf": [{"required": ["expect"]}, {"required": ["error", "partial"]}],
    "additionalProperties": False,
}


@cache
def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def data_of(path: Path) -> bytes:
    return bytes.fromhex(load(path)["hex"])


VALID = [p for p in VECTOR_FILES if "expect" in load(p)]
MALFORMED = [p for p in VECTOR_FILES if "error" in load(p)]


def as_json(nodes: list[Tlv]) -> list[dict[str, Any]]:
    """A decoded tree in the vector format (the CLI's --json node format minus "name")."""
    out: list[dict[str, Any]] = []
    for node in nodes:
        item: dict[str, Any] = {
            "tag": node.tag_hex,
            "offset": node.offset,
            "length": node.length,
            "value": node.value.hex().upper(),
        }
        if node.children is not None:
            item["children"] = as_json(node.children)
        out.append(item)
    return out


def expected_nodes(tree: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Nodes of an expected tree, depth first in document order."""
    for node in tree:
        yield node
        yield from expected_nodes(node.get("children", []))


def stem(path: Path) -> str:
    return path.stem


# --- the collection itself -------------------------------------------------------------


def test_there_are_enough_vectors_of_each_kind() -> None:
    assert len(VECTOR_FILES) >= 40
    assert len(VALID) >= 25
    assert len(MALFORMED) >= 15


@pytest.mark.parametrize("path", VECTOR_FILES, ids=stem)
def test_vector_file_matches_the_documented_format(path: Path) -> None:
    vector = load(path)
    jsonschema.validate(vector, VECTOR_SCHEMA)
    # Each node's own hex must agree with its length, and children with constructed tags.
    for node in expected_nodes(vector.get("expect", []) + vector.get("partial", [])):
        assert len(node["value"]) == 2 * node["length"]
        assert ("children" in node) == bool(int(node["tag"][:2], 16) & 0x20)


def test_vectors_cover_the_required_cases() -> None:
    tags = {node["tag"] for p in VALID for node in expected_nodes(load(p)["expect"])}
    assert {"61", "9F38", "80", "77", "70", "BF0C", "DF8104", "DF818101"} <= tags
    hexes = [load(p)["hex"] for p in VALID]
    assert any("8181" in h or h.startswith("7081") for h in hexes)  # 81 long form
    assert any(h.startswith("7082") for h in hexes)  # 82 long form
    reasons = [load(p)["error"]["reason"] for p in MALFORMED]
    for start in (
        "tag is truncated",
        "tag is longer than 4 bytes",
        "length is missing",
        "length field is truncated",
        "indefinite length (80) is not allowed",
        "length field of 5 bytes is longer than 4",
        "length 8 runs past the end",
        "nesting is deeper than 32 levels",
    ):
        assert any(reason.startswith(start) for reason in reasons), start
    # At least one error sits inside a template, at the inner object's offset.
    assert any(load(p)["error"]["offset"] > 0 and load(p)["partial"] for p in MALFORMED)


# --- valid vectors ---------------------------------------------------------------------


@pytest.mark.parametrize("path", VALID, ids=stem)
def test_valid_vector_decodes_to_the_expected_tree(impl: ModuleType, path: Path) -> None:
    assert as_json(impl.decode(data_of(path))) == load(path)["expect"]


@pytest.mark.parametrize("path", VALID, ids=stem)
def test_valid_vector_round_trips_byte_for_byte(impl: ModuleType, path: Path) -> None:
    data = data_of(path)
    assert encode(impl.decode(data)).hex().upper() == data.hex().upper()


@pytest.mark.parametrize("path", VALID, ids=stem)
def test_valid_vector_lenient_decode_is_the_same_without_error(
    impl: ModuleType, path: Path
) -> None:
    result = impl.decode(data_of(path), strict=False)
    assert result.error is None
    assert as_json(result) == load(path)["expect"]


@pytest.mark.parametrize("path", VALID, ids=stem)
def test_valid_vector_find_value_gives_the_first_match_depth_first(
    impl: ModuleType, path: Path
) -> None:
    data = data_of(path)
    first: dict[str, str] = {}
    for node in expected_nodes(load(path)["expect"]):
        first.setdefault(node["tag"], node["value"])
    for tag, value in first.items():
        found = impl.find_value(data, tag)
        assert found is not None and found.hex().upper() == value, tag
    # 9F7F (card production life cycle) appears in none of the vectors.
    assert impl.find_value(data, "9F7F") is None


@pytest.mark.parametrize("path", VALID, ids=stem)
def test_valid_vector_find_all_values_gives_every_match_depth_first(
    impl: ModuleType, path: Path
) -> None:
    data = data_of(path)
    tree = impl.decode(data)
    every: dict[str, list[str]] = {}
    for node in expected_nodes(load(path)["expect"]):
        every.setdefault(node["tag"], []).append(node["value"])
    for tag, values in every.items():
        found = impl.find_all_values(data, tag)
        # Against the vector's own tree, and against find_all on the decoded tree.
        assert [value.hex().upper() for value in found] == values, tag
        assert found == [node.value for node in find_all(tree, tag)], tag
        assert found[:1] == [impl.find_value(data, tag)], tag
    assert impl.find_all_values(data, "9F7F") == []


@pytest.mark.parametrize("path", VALID[:3], ids=stem)
def test_decode_accepts_bytearray_and_memoryview(impl: ModuleType, path: Path) -> None:
    data = data_of(path)
    expected = load(path)["expect"]
    assert as_json(impl.decode(bytearray(data))) == expected
    assert as_json(impl.decode(memoryview(data))) == expected


def test_decode_rejects_text(impl: ModuleType) -> None:
    with pytest.raises(LocalProtocolError, match="bytes"):
        impl.decode("9F170103")


# --- malformed vectors -----------------------------------------------------------------


@pytest.mark.parametrize("path", MALFORMED, ids=stem)
def test_malformed_vector_raises_tlv_error_with_offset_tag_and_reason(
    impl: ModuleType, path: Path
) -> None:
    expected = load(path)["error"]
    with pytest.raises(TlvError) as caught:
        impl.decode(data_of(path))
    error = caught.value
    assert {"offset": error.offset, "tag": error.tag, "reason": error.reason} == expected
    assert f"offset {expected['offset']}" in str(error)
    if expected["tag"]:
        assert f"tag {expected['tag']}" in str(error)


@pytest.mark.parametrize("path", MALFORMED, ids=stem)
def test_malformed_vector_lenient_decode_returns_the_clean_prefix(
    impl: ModuleType, path: Path
) -> None:
    vector = load(path)
    result = impl.decode(data_of(path), strict=False)
    assert as_json(result) == vector["partial"]
    assert isinstance(result.error, TlvError)
    error = result.error
    assert {"offset": error.offset, "tag": error.tag, "reason": error.reason} == vector["error"]


@pytest.mark.parametrize("path", MALFORMED, ids=stem)
def test_malformed_vector_find_value_raises_the_same_error(impl: ModuleType, path: Path) -> None:
    expected = load(path)["error"]
    # Whether the tag sits before the bad bytes or nowhere, the whole input is checked.
    for tag in [n["tag"] for n in expected_nodes(load(path)["partial"])] + ["9F7F"]:
        with pytest.raises(TlvError) as caught:
            impl.find_value(data_of(path), tag)
        assert (caught.value.offset, caught.value.tag) == (expected["offset"], expected["tag"])


@pytest.mark.parametrize("path", MALFORMED, ids=stem)
def test_malformed_vector_find_all_values_raises_the_same_error(
    impl: ModuleType, path: Path
) -> None:
    expected = load(path)["error"]
    # Matches found before the bad bytes are not returned: the whole input is checked.
    for tag in [n["tag"] for n in expected_nodes(load(path)["partial"])] + ["9F7F"]:
        with pytest.raises(TlvError) as caught:
            impl.find_all_values(data_of(path), tag)
        error = caught.value
        assert {"offset": error.offset, "tag": error.tag, "reason": error.reason} == expected
