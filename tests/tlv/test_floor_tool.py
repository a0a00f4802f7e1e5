"""tools/tlv_floor.py is only a fair lower bound if it builds exactly the tree ``decode``
builds: same node types, fields, offsets, length forms and children. Checked here on every
valid vector it is meant for (no padding), so the benchmark's floor row cannot drift."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from contactless.tlv import Tlv, TlvList, decode, walk

ROOT = Path(__file__).resolve().parents[2]


def _load_floor() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tlv_floor", ROOT / "tools" / "tlv_floor.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FLOOR = _load_floor()


def _unpadded_valid_vectors() -> dict[str, bytes]:
    found = {}
    for path in sorted((ROOT / "vectors" / "tlv").glob("*.json")):
        vector = json.loads(path.read_text(encoding="utf-8"))
        if "error" in vector:
            continue
        raw = bytes.fromhex(vector["hex"])
        tree = decode(raw)
        if tree.trailing or any(node.padding for _, node in walk(tree)):
            continue
        found[path.stem] = raw
    return found


VECTORS = _unpadded_valid_vectors()


def test_there_are_vectors_to_check() -> None:
    assert len(VECTORS) >= 30


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_the_floor_builds_the_tree_decode_builds(name: str) -> None:
    raw = VECTORS[name]
    built = FLOOR.floor_decode(raw)
    assert built == decode(raw)
    assert type(built) is TlvList
    assert all(type(node) is Tlv for _, node in walk(built))
    assert [type(node.children) for _, node in walk(built)] == [
        type(node.children) for _, node in walk(decode(raw))
    ]
