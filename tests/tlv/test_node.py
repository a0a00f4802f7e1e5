"""The node types, Tlv and TlvList: the reference classes in node.py and their C versions.

With the accelerator built (and CONTACTLESS_PUREPYTHON unset), node.Tlv and node.TlvList are
the C types from _ctlv; otherwise the classes written out in node.py. Both must behave the
same: the parity test runs one set of probes under each implementation, in two fresh
interpreters, and compares every outcome (results and errors); the other tests check the
behaviour of whichever implementation this run uses, including what only the C types could
get wrong (freeing half-built nodes, long chains, cycles, recycled memory).
"""

from __future__ import annotations

import contextlib
import copy
import gc
import json
import os
import pickle
import subprocess
import sys
import textwrap
import weakref
from typing import Any

import pytest

import contactless.tlv as tlv
from contactless.tlv import _pytlv, decode, encode, node
from contactless.tlv.node import Tlv, TlvList

try:
    from contactless.tlv import _ctlv
except ImportError:
    if os.environ.get("CONTACTLESS_REQUIRE_C") == "1":
        raise
    _ctlv = None  # type: ignore[assignment]

needs_c = pytest.mark.skipif(_ctlv is None, reason="the C accelerator is not built")

#: A PPSE answer with padding (before, inside and after), a long-form length and nested
#: templates: every field differs from its default somewhere.
SAMPLE = bytes.fromhex(
    "00" "6F2E" "840E325041592E5359532E4444463031" "A51C" "BF0C19" "00" "6116"
    "4F07A0000000031010" "50810A56495341204445424954" "FFFF"
)  # fmt: skip


# --- which implementation is in use ------------------------------------------------------


def test_node_types_follow_the_decoder_choice() -> None:
    assert node.IMPLEMENTATION == tlv.IMPLEMENTATION
    if tlv.IMPLEMENTATION == "c":
        assert Tlv is _ctlv.Tlv and TlvList is _ctlv.TlvList
    else:
        assert _ctlv is None or (Tlv is not _ctlv.Tlv and TlvList is not _ctlv.TlvList)
        assert Tlv.__slots__  # the reference class itself


def test_both_decoders_return_the_node_types_in_use() -> None:
    for decoded in (decode(SAMPLE), _pytlv.decode(SAMPLE)):
        assert type(decoded) is TlvList
        assert all(type(item) is Tlv for _, item in tlv.walk(decoded))
    assert decode(SAMPLE) == _pytlv.decode(SAMPLE)


def test_names_and_module() -> None:
    for cls, name in ((Tlv, "Tlv"), (TlvList, "TlvList")):
        assert (cls.__module__, cls.__name__, cls.__qualname__) == (node.__name__, name, name)
    assert issubclass(TlvList, list)
    assert Tlv.__hash__ is None


# --- behaviour, compared between the two implementations ---------------------------------

#: Run in a fresh interpreter under each implementation; prints {probe: outcome} as JSON.
PROBES = r"""
import copy, gc, inspect, json, pickle, sys, weakref
from contactless.tlv import decode, encode, node, walk
from contactless.tlv.node import Tlv, TlvList

SAMPLE = bytes.fromhex(sys.argv[1])
tree = decode(SAMPLE)
fci = tree[0]

def bare():
    return object.__new__(Tlv)

def deleted(name):
    n = Tlv(b"\x5a", b"\x01")
    delattr(n, name)
    return n

def set_then(name, value):
    n = Tlv(b"\x5a", b"\x01")
    setattr(n, name, value)
    return n

class Sub(Tlv):
    pass

probes = {
    "repr tree": lambda: repr(tree),
    "repr walk": lambda: [repr(n) for _, n in walk(tree)],
    "fields": lambda: [(n.tag_bytes, n.value, n.offset, n.length_form, n.padding,
                        n.children is None) for _, n in walk(tree)],
    "properties": lambda: [(n.tag, n.tag_hex, n.constructed, n.length) for n in tree],
    "trailing/error": lambda: (tree.trailing, tree.error, fci.children.trailing, vars(tree)),
    "lenient error": lambda: (vars(decode(b"\x5a\x05\x01", strict=False)).keys(),
                              type(decode(b"\x5a\x05\x01", strict=False).error).__name__),
    "defaults": lambda: (lambda n: (n.children, n.offset, n.length_form, n.padding))(
        Tlv(b"\x5a", b"\x01")),
    "keywords": lambda: repr(Tlv(value=b"\x01", tag_bytes=b"\x9f\x02", offset=7, padding=b"\0",
                                 length_form=2, children=None)),
    "positional": lambda: repr(Tlv(b"\x70", b"", TlvList(), 3, 2, b"\xff")),
    "too few": lambda: Tlv(b"\x5a"),
    "too many": lambda: Tlv(1, 2, 3, 4, 5, 6, 7),
    "unknown keyword": lambda: Tlv(b"\x5a", b"", colour=1),
    "eq": lambda: (Tlv(b"\x5a", b"\x01") == Tlv(b"\x5a", b"\x01"),
                   Tlv(b"\x5a", b"\x01") != Tlv(b"\x5a", b"\x01"),
                   Tlv(b"\x5a", b"\x01", offset=1) == Tlv(b"\x5a", b"\x01", offset=2),
                   Tlv(b"\x5a", b"\x01", offset=2**70) == Tlv(b"\x5a", b"\x01", offset=2**70),
                   Tlv(b"\x5a", b"\x01", offset=1) == Tlv(b"\x5a", b"\x01", offset=True),
                   Tlv(b"\x5a", b"\x01", length_form=2) == Tlv(b"\x5a", b"\x01"),
                   Tlv(b"\x5a", b"\x01", padding=b"\0") == Tlv(b"\x5a", b"\x01"),
                   Tlv(b"\x5a", b"\x01") == Tlv(b"\x5b", b"\x01"),
                   Tlv(b"\x5a", b"\x01") == Sub(b"\x5a", b"\x01"),
                   Sub(b"\x5a", b"\x01") == Tlv(b"\x5a", b"\x01")),
    "eq others": lambda: (Tlv(b"\x5a", b"") == (b"\x5a", b""), Tlv(b"\x5a", b"") != 1,
                          Tlv.__eq__(Tlv(b"\x5a", b""), 1), Tlv(b"\x5a", b"") == None),
    "eq returns the failing comparison": lambda: Tlv([1], b"") == Tlv([2], b""),
    "eq trees": lambda: (decode(SAMPLE) == tree, decode(SAMPLE[1:]) == tree),
    "eq unset": lambda: bare() == bare(),
    "order": lambda: Tlv(b"\x5a", b"") < Tlv(b"\x5a", b""),
    "hash": lambda: hash(Tlv(b"\x5a", b"")),
    "unset read": lambda: bare().value,
    "unset offset": lambda: bare().offset,
    "unset repr": lambda: repr(bare()),
    "del twice": lambda: delattr(deleted("value"), "value"),
    "del offset twice": lambda: delattr(deleted("offset"), "offset"),
    "deleted read": lambda: deleted("padding").padding,
    "deleted offset read": lambda: deleted("offset").offset,
    "unknown attribute": lambda: setattr(Tlv(b"\x5a", b""), "colour", 1),
    "unknown read": lambda: Tlv(b"\x5a", b"").colour,
    "no __dict__": lambda: vars(Tlv(b"\x5a", b"")),
    "no weakref": lambda: weakref.ref(Tlv(b"\x5a", b"")),
    "list weakref": lambda: type(weakref.ref(TlvList())).__name__,
    "list attribute": lambda: (lambda l: (setattr(l, "note", 1), vars(l)))(TlvList([1])),
    "any offset": lambda: [set_then("offset", v).offset for v in
                           (-1, 0, 255, 256, 2**40, 2**63, -2**63 - 1, 2**200, True, "x", None,
                            1.5)],
    "offset types": lambda: [type(set_then("offset", v).offset).__name__ for v in (True, 2**70)],
    "any field": lambda: [getattr(set_then(f, [1]), f) for f in
                          ("tag_bytes", "value", "children", "length_form", "padding")],
    "repr odd fields": lambda: [repr(set_then(f, v)) for f, v in (
        ("offset", "x"), ("offset", 2**70), ("children", [1, 2]), ("value", bytes(range(100))),
        ("tag_bytes", bytearray(b"\x9f\x02")))],
    "repr bad value": lambda: repr(set_then("value", 5)),
    "repr bad children": lambda: repr(set_then("children", 5)),
    "tag forms": lambda: [set_then("tag_bytes", t).tag for t in
                          (b"\x5a", b"\x9f\x02", b"\xdf\x81\x01", bytearray(b"\x9f\x02"), b"",
                           bytes(9) + b"\x01", [0x9f, 0x02])],
    "tag of str": lambda: set_then("tag_bytes", "9F").tag,
    "tag_hex forms": lambda: [set_then("tag_bytes", t).tag_hex for t in
                              (b"\x5a", b"\xbf\x0c", bytearray(b"\x9f\x02"), b"")],
    "tag_hex of list": lambda: set_then("tag_bytes", [1]).tag_hex,
    "constructed forms": lambda: [set_then("tag_bytes", t).constructed for t in
                                  (b"\x5a", b"\x70", bytearray(b"\xbf\x0c"), [0x20], (1,))],
    "constructed empty": lambda: set_then("tag_bytes", b"").constructed,
    "length forms": lambda: [set_then("value", v).length for v in (b"", b"12", [1, 2, 3], "abc")],
    "length of int": lambda: set_then("value", 5).length,
    "class attributes": lambda: (TlvList.trailing, TlvList.error, Tlv.__hash__),
    "tracked": lambda: [gc.is_tracked(n) for n in (fci, fci.children[0], Tlv(b"\x5a", b""))],
    "signature": lambda: [(p.name, p.default) for p in inspect.signature(Tlv).parameters.values()],
    "copies": lambda: (copy.copy(fci) == fci, copy.deepcopy(tree) == tree,
                       vars(copy.deepcopy(tree)), copy.copy(fci).children is fci.children),
    "copy of a node with an unset field": lambda: sorted(
        copy.copy(deleted("offset")).__getstate__()[1]),
    "state of a bare node": lambda: bare().__getstate__(),
    "state of a subclass": lambda: (lambda s: (setattr(s, "extra", [1]), s.__getstate__())[1])(
        Sub(b"\x5a", b"\x01", offset=3)),
    "pickled subclass": lambda: (lambda s: (s.extra, s.offset, s == Sub(b"\x5a", b"\x01", None, 3),
                                            type(s).__name__))(pickle.loads(pickle.dumps(
        (lambda s: (setattr(s, "extra", [1]), s)[1])(Sub(b"\x5a", b"\x01", offset=3)), 4))),
    "pickles": lambda: [pickle.loads(pickle.dumps(tree, p)) == tree for p in range(2, 6)],
    "pickle keeps trailing": lambda: vars(pickle.loads(pickle.dumps(tree, 4))),
    "subclass": lambda: (lambda s: (s.extra, repr(s), s.offset, vars(s), isinstance(s, Tlv)))(
        (lambda s: (setattr(s, "extra", 1), s)[1])(Sub(b"\x5a", b"\x01", offset=9))),
    "edit and encode": lambda: (lambda t: (setattr(t[0].children[0], "value", b"NEW"),
                                           encode(t).hex())[1])(decode(SAMPLE)),
}


def outcome(probe):
    try:
        return ["returned", repr(probe())]
    except Exception as error:
        return ["raised", type(error).__name__, str(error)]


results = {name: outcome(probe) for name, probe in probes.items()}
results["pickle bytes"] = [pickle.dumps(tree, p).hex() for p in range(2, 6)]
print(json.dumps({"implementation": node.IMPLEMENTATION, "results": results}))
"""

#: Messages that name a function differently, though the error is the same.
SAME_ERROR_OTHER_WORDS = {"too few", "too many", "unknown keyword"}


def run_probes(**env: str) -> dict[str, Any]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTLESS_")}
    result = subprocess.run(
        [sys.executable, "-c", PROBES, SAMPLE.hex()],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.fixture(scope="module")
def both_reports() -> tuple[dict[str, Any], dict[str, Any]]:
    if _ctlv is None:
        pytest.skip("the C accelerator is not built: there is one implementation")
    python, c = run_probes(CONTACTLESS_PUREPYTHON="1"), run_probes()
    assert (python["implementation"], c["implementation"]) == ("python", "c")
    return python, c


def test_the_c_types_behave_as_the_reference_classes(
    both_reports: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    python, c = (report["results"] for report in both_reports)
    assert python.keys() == c.keys()
    for name in python:
        if name == "pickle bytes":
            continue  # compared by loading them, below
        if name in SAME_ERROR_OTHER_WORDS:
            assert python[name][:2] == c[name][:2] == ["raised", "TypeError"], name
        else:
            assert c[name] == python[name], name


def test_pickles_load_under_either_implementation(
    both_reports: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    expected = decode(SAMPLE)
    for report in both_reports:
        for dumped in report["results"]["pickle bytes"]:
            loaded = pickle.loads(bytes.fromhex(dumped))
            assert loaded == expected and vars(loaded) == vars(expected)
            assert type(loaded) is TlvList and type(loaded[0]) is Tlv


# --- what the C types in particular must get right (run under either) --------------------


def test_nodes_with_unset_fields_are_freed_safely() -> None:
    # object.__new__ leaves every field unset; freeing must not read them.
    for fields in ({}, {"children": None}, {"children": None, "tag_bytes": b"\x5a"}):
        item = object.__new__(Tlv)
        for name, value in fields.items():
            setattr(item, name, value)
        del item
    half = Tlv(b"\x5a", b"\x01")
    del half.value, half.offset, half.padding
    del half
    gc.collect()


@pytest.mark.parametrize("link", ["children list", "children node", "value", "offset"])
def test_long_chains_are_freed_without_deep_recursion(link: str) -> None:
    head = Tlv(b"\x70", b"")
    for _ in range(200_000):
        item = Tlv(b"\x70", b"")
        if link == "children list":
            item.children = TlvList([head])
        elif link == "children node":
            item.children = head
        else:
            setattr(item, link, head)
        head = item
    del head, item  # a crash here is a C stack overflow
    gc.collect()


def test_cycles_through_nodes_are_collected() -> None:
    parent = decode(SAMPLE)[0]
    parent.children.append(parent)  # node -> its children -> node
    loop = Tlv(b"\x5a", b"")
    loop.value = TlvList([loop])  # through a field that holds bytes when decoded
    other = Tlv(b"\x5a", b"")
    other.offset = TlvList([other])  # and through the offset
    watch = [weakref.ref(parent.children), weakref.ref(loop.value), weakref.ref(other.offset)]
    del parent, loop, other
    gc.collect()
    assert [ref() for ref in watch] == [None, None, None]


def test_recycled_nodes_start_clean() -> None:
    # Free nodes whose fields were all changed, then decode: the memory the C types reuse
    # must not carry anything over.
    odd = [Tlv(bytearray(b"\x9f\x02"), [1], TlvList([1]), "far", 9, b"\0\0") for _ in range(500)]
    for item in odd:
        item.offset = 2**80
    del odd
    gc.collect()
    fresh = decode(SAMPLE)
    assert fresh == _pytlv.decode(SAMPLE)
    for _, item in tlv.walk(fresh):
        assert type(item.tag_bytes) is bytes and type(item.offset) is int
    assert vars(fresh) == {"trailing": b"\xff\xff"} and vars(fresh[0].children) == {}
    blank = TlvList()
    assert len(blank) == 0 and vars(blank) == {} and blank.trailing == b""


def test_lists_from_the_decoder_are_ordinary_lists() -> None:
    tree = decode(SAMPLE)
    children = tree[0].children
    assert children is not None
    size = len(children)
    children.extend(children)  # grows from the exact-size array the decoder gave it
    children.append(Tlv(b"\x5a", b""))
    assert len(children) == 2 * size + 1
    del children[:]
    assert children == [] and encode(tree).hex().upper().startswith("006F")
    assert json.loads(json.dumps(TlvList([1, 2]))) == [1, 2]
    assert TlvList([3, 1, 2]) == [3, 1, 2] and sorted(TlvList([3, 1, 2])) == [1, 2, 3]


def test_offsets_beyond_the_small_int_cache() -> None:
    data = bytes(1000) + bytes.fromhex("9F020100")
    item = decode(data)[0]
    assert item.offset == 1000 and type(item.offset) is int
    assert item == _pytlv.decode(data)[0]
    copied = copy.deepcopy(item)
    assert copied.offset == 1000 and copied == item


def test_offset_accepts_what_a_slot_accepts() -> None:
    item = Tlv(b"\x5a", b"")
    for value in (-(2**63), 2**63 - 1, 2**63, -(2**64), True, "x", None, 1.0):
        item.offset = value
        assert item.offset == value and type(item.offset) is type(value)
    del item.offset
    with pytest.raises(AttributeError):
        item.offset  # noqa: B018
    with pytest.raises(AttributeError):
        del item.offset


def test_a_subclass_is_an_ordinary_python_class() -> None:
    class Marked(Tlv):
        pass

    item = Marked(b"\x5a", b"\x01", offset=4)
    item.mark = "x"
    assert vars(item) == {"mark": "x"} and item == Tlv(b"\x5a", b"\x01", offset=4)
    assert repr(item) == "Tlv(5A, value='**', offset=4)"  # a PAN tag: masked, as in Tlv
    ref = weakref.ref(item)
    del item
    gc.collect()
    assert ref() is None

    class Listed(TlvList):
        pass

    listed = Listed([1])
    listed.trailing = b"\0"
    assert vars(listed) == {"trailing": b"\0"} and listed == [1]


def test_copy_and_pickle_keep_unset_fields_unset() -> None:
    item = Tlv(b"\x5a", b"\x01", offset=2**70)
    del item.padding
    for clone in (copy.copy(item), pickle.loads(pickle.dumps(item, 4))):
        assert clone.offset == 2**70 and clone.value == b"\x01"
        with pytest.raises(AttributeError):
            clone.padding  # noqa: B018


def _every_node_operation() -> None:
    """One of each thing a caller can do with nodes, results and errors alike."""
    item = Tlv(b"\x9f\x02", b"\x01\x02", None, 300, 2, b"\0")
    for offset in (2**70, "x", -5, True):
        item.offset = offset
    del item.offset
    item.offset = 1000
    item.value = bytes(80)  # longer than repr's fast path
    item.children = TlvList([Tlv(b"\x5a", b"")])
    _ = (repr(item), item.tag, item.tag_hex, item.constructed, item.length, item.offset)
    _ = (item == Tlv(b"\x9f\x02", bytes(80), None, 1000, 2, b"\0"), item != 3, item == item)
    _ = (copy.copy(item), copy.deepcopy(item), pickle.loads(pickle.dumps(item, 2)))
    odd = Tlv(bytearray(b"\x9f\x02"), [1], [2], 2**80, "form", b"")
    _ = (odd.tag, odd.tag_hex, odd.constructed, odd.length, odd == odd)
    attempts = (
        lambda: Tlv(b"\x5a"),
        lambda: Tlv(b"\x5a", b"", colour=1),
        lambda: object.__new__(Tlv).value,
        lambda: object.__new__(Tlv).offset,
        lambda: repr(object.__new__(Tlv)),
        lambda: object.__new__(Tlv) == object.__new__(Tlv),
        lambda: hash(item),
        lambda: Tlv("9F", b"").tag,
        lambda: Tlv(b"", b"").constructed,
        lambda: Tlv(b"\x5a", 5).length,
        lambda: repr(Tlv(b"\x5a", 5)),
        lambda: Tlv([1], b"") == Tlv([2], b""),
        lambda: delattr(object.__new__(Tlv), "offset"),
        lambda: repr(odd),
    )
    for attempt in attempts:
        with contextlib.suppress(TypeError, AttributeError, IndexError):
            attempt()
    tree = decode(SAMPLE)
    tree[0].children.append(_pytlv.decode(SAMPLE)[0])
    _ = (encode(tree), copy.deepcopy(tree), TlvList(tree), vars(tree))


def test_node_operations_do_not_leak() -> None:
    watched = (None, True, False, Tlv, TlvList, b"")
    for _ in range(500):  # warm caches and free lists
        _every_node_operation()
    gc.collect()
    blocks, refs = sys.getallocatedblocks(), [sys.getrefcount(obj) for obj in watched]
    for _ in range(5_000):
        _every_node_operation()
    gc.collect()
    # One leaked object per run would be 5 000 blocks or references.
    assert sys.getallocatedblocks() - blocks < 1_000
    for obj, before in zip(watched, refs, strict=True):
        assert sys.getrefcount(obj) - before < 1_000, obj


@needs_c
def test_the_c_types_are_the_ones_node_py_describes() -> None:
    # Same fields, documented the same way, as the reference class the C type replaces.
    source = (
        textwrap.dedent(Tlv.__doc__ or "")
        if tlv.IMPLEMENTATION == "c"
        else (_ctlv.Tlv.__doc__ or "")
    )
    for name in ("tag_bytes", "value", "children", "offset", "length_form", "padding"):
        assert f"{name}:" in source
    assert _ctlv.Tlv.__text_signature__ == (  # type: ignore[attr-defined]
        "(tag_bytes, value, children=None, offset=0, length_form=1, padding=b'')"
    )


# --- repr never shows card data ----------------------------------------------------------

#: A READ RECORD answer (visa sim card): PAN, track 2, cardholder name, expiry.
RECORD = bytes.fromhex(
    "7047"
    "57134761739001010010D28122011010000000000F"
    "5A084761739001010010"
    "5F201A56495341204143515549524552205445535420434152442030"
    "315F24032812319F0702FF00"
)
SECRETS = ("4761739001010010", "VISA ACQUIRER", "D2812201101", "56495341")


def test_repr_masks_card_data_and_shows_templates_by_shape() -> None:
    tree = decode(RECORD)
    shown = [repr(tree), str(tree), *(repr(node) for _, node in tlv.walk(tree))]
    assert not [s for s in SECRETS for text in shown if s.lower() in text.lower()]
    template, *_ = tree
    assert repr(template) == "Tlv(70, length=71, offset=0, children=5)"
    by_tag = {node.tag_hex: repr(node) for node in template.children}
    assert by_tag["5A"] == "Tlv(5A, value='476173******0010', offset=23)"
    assert by_tag["5F20"] == "Tlv(5F20, value='********', offset=33)"
    assert "476173******0010D2812201" in by_tag["57"]  # expiry and service code kept
    assert by_tag["5F24"] == "Tlv(5F24, value='281231', offset=62)"  # not card data: hex
    assert by_tag["9F07"] == "Tlv(9F07, value='FF00', offset=68)"
    # Sensitive only in a scheme's dictionary row (UnionPay Cardholder ID Number): all hidden.
    (cardholder_id,) = decode(bytes.fromhex("9F610A31323334353637383930"))
    assert repr(cardholder_id) == "Tlv(9F61, value='" + "*" * 20 + "', offset=0)"
