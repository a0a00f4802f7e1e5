"""Check that the C TLV accelerator leaks nothing: memory and reference counts stay flat.

Usage::

    python tools/leak_check.py [--calls 1000000] [--impl c|python]

Runs ``--calls`` calls of ``decode`` / ``find_value`` / ``find_all_values`` over every
vector in vectors/tlv/ (valid and malformed, strict and lenient, bytes/bytearray/memoryview
inputs, bad arguments), after a warm-up of a tenth as many. Then it compares, before and after:

- resident memory (RSS): a leak of one small object per call is tens of MB per million;
- live pymalloc blocks (``sys.getallocatedblocks``): one per leaked small object;
- reference counts of the objects every call touches (``None``, ``Tlv``, ``TlvList``,
  ``TlvError``...): a missing ``Py_DECREF`` on an error path shows up here even when
  the object itself is immortal for practical purposes.

Exit status 0 when every figure stays within its (generous) bound, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
from collections.abc import Callable
from functools import partial
from itertools import cycle, islice
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from contactless.errors import ContactlessError, LocalProtocolError, TlvError  # noqa: E402
from contactless.tlv import _pytlv  # noqa: E402
from contactless.tlv.node import Tlv, TlvList  # noqa: E402


def load_vectors() -> list[bytes]:
    return [
        bytes.fromhex(json.loads(path.read_text(encoding="utf-8"))["hex"])
        for path in sorted((ROOT / "vectors" / "tlv").glob("*.json"))
    ]


def workload(module: ModuleType, vectors: list[bytes]) -> list[Callable[[], Any]]:
    """One call of every kind the accelerator has a code path for."""
    decode, find_value, find_all_values = module.decode, module.find_value, module.find_all_values
    calls: list[Callable[[], Any]] = []
    for raw in vectors:
        first = _pytlv.decode(raw, strict=False)
        tag = first[0].tag_bytes if first else b"\x5a"
        calls += [
            partial(decode, raw),
            partial(decode, raw, strict=False),
            partial(decode, bytearray(raw)),
            partial(decode, memoryview(raw)[1:], strict=False),
            partial(find_value, raw, tag),
            partial(find_value, raw, tag.hex()),
            partial(find_value, raw, 0x9F7F),
            partial(find_all_values, raw, tag),
            partial(find_all_values, bytearray(raw), tag.hex()),
            partial(find_all_values, raw, 0x9F7F),
        ]
    calls += [
        partial(decode, "not bytes"),
        partial(decode, b"", bogus=1),
        partial(find_value, b"\x5a\x00", "XYZ"),
        partial(find_value, b"\x5a\x00", b"\x9f"),
        partial(find_value, None, "5A"),
        partial(find_all_values, b"\x5a\x00", "XYZ"),
        partial(find_all_values, None, "5A"),
        partial(find_all_values, b"", "5A", "bogus"),
        # Matches collected before a fault are dropped with the list.
        partial(find_all_values, b"\x5a\x01\x01" * 20 + b"\x5a\x05", "5A"),
        partial(find_all_values, b"\x5a\x01\x01" * 20, b"\x5a"),
    ]
    return calls


def run(calls: list[Callable[[], Any]], count: int) -> None:
    for call in islice(cycle(calls), count):
        with contextlib.suppress(ContactlessError, TypeError):
            call()


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def watched() -> dict[str, object]:
    return {
        "None": None,
        "True": True,
        "False": False,
        "Tlv": Tlv,
        "TlvList": TlvList,
        "TlvError": TlvError,
        "LocalProtocolError": LocalProtocolError,
        "empty bytes": b"",
    }


def snapshot() -> dict[str, int]:
    gc.collect()
    figures = {"rss": rss_bytes(), "blocks": sys.getallocatedblocks()}
    for name, obj in watched().items():
        figures[f"refcount {name}"] = sys.getrefcount(obj)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--impl", choices=("c", "python"), default="c")
    parser.add_argument("--max-rss-growth-mb", type=float, default=8.0)
    args = parser.parse_args(argv)
    module: ModuleType = _pytlv
    if args.impl == "c":
        from contactless.tlv import _ctlv as module
    calls = workload(module, load_vectors())
    run(calls, max(args.calls // 10, len(calls)))  # warm caches, free lists, arenas
    before = snapshot()
    run(calls, args.calls)
    after = snapshot()
    # A real leak grows with the number of calls; allow noise far below one per call.
    bounds = {"rss": args.max_rss_growth_mb * 1024 * 1024, "blocks": max(1000, args.calls // 1000)}
    failed = False
    print(f"{args.calls} calls ({len(calls)} kinds) through {module.__name__}")
    for name in before:
        growth = after[name] - before[name]
        bound = bounds.get(name, max(100, args.calls // 1000))
        verdict = "ok" if growth <= bound else "LEAK"
        failed |= growth > bound
        print(
            f"  {name:28s} {before[name]:>14,} -> {after[name]:>14,}"
            f"  ({growth:+,}; bound {bound:,.0f}) {verdict}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
