"""Coverage-guided differential fuzzing: the C TLV accelerator against the reference.

Usage::

    python tools/fuzz_tlv.py [--seed-vectors DIR] [libFuzzer options] [CORPUS_DIR ...]
    python tools/fuzz_tlv.py --seed-vectors /tmp/corpus -max_total_time=60 /tmp/corpus

Every input goes to both ``_ctlv`` and ``_pytlv`` (decode, strict or not, as bytes,
bytearray or memoryview; and find_value and find_all_values for a tag taken from the
input); any difference in result or error is raised as an AssertionError, which atheris
reports as a crash and saves as a reproducer. Coverage comes from the instrumented
reference decoder, whose branches mirror the C ones; tools/asan_fuzz.sh runs this against
an ASan+UBSan build of the extension so that memory errors crash too.

The first input byte picks the mode (see ``_modes``); the rest is the data.
``--seed-vectors DIR`` first writes every vector of vectors/tlv/ into DIR, in every mode.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import atheris

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "tlv"))  # outcome(): what "the same" means

with atheris.instrument_imports(include=["contactless.tlv"]):
    from contactless.tlv import _ctlv, _pytlv

from test_differential import outcome  # noqa: E402

#: Tags the find functions look for, picked by the mode byte; plus one read from the data.
TAGS: tuple[Any, ...] = ("5A", 0x9F02, b"\x70", "BF0C", 0x1F8101, "9F4B")


def _modes(selector: int, data: bytes) -> tuple[Any, bool, Any]:
    """(input object, strict, tag for the find functions) for a mode byte."""
    kind = selector & 0x03
    if kind == 1:
        payload: Any = bytearray(data)
    elif kind == 2:
        payload = memoryview(b"\x00" + data)[1:]
    else:
        payload = data
    strict = not selector & 0x04
    choice = (selector >> 3) % (len(TAGS) + 1)
    tag = TAGS[choice] if choice < len(TAGS) else (data[:2] or b"\x5a")
    return payload, strict, tag


def test_one_input(raw: bytes) -> None:
    if not raw:
        return
    payload, strict, tag = _modes(raw[0], raw[1:])
    expected = outcome(_pytlv.decode, payload, strict=strict)
    actual = outcome(_ctlv.decode, payload, strict=strict)
    if actual != expected:
        raise AssertionError(
            f"decode differs on {raw[1:].hex().upper()} (strict={strict}):\n"
            f"  C:      {actual!r:.2000}\n  Python: {expected!r:.2000}"
        )
    for name in ("find_value", "find_all_values"):
        expected = outcome(getattr(_pytlv, name), payload, tag)
        actual = outcome(getattr(_ctlv, name), payload, tag)
        if actual != expected:
            raise AssertionError(
                f"{name}({tag!r}) differs on {raw[1:].hex().upper()}:\n"
                f"  C:      {actual!r:.2000}\n  Python: {expected!r:.2000}"
            )


def seed(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "vectors" / "tlv").glob("*.json")):
        data = bytes.fromhex(json.loads(path.read_text(encoding="utf-8"))["hex"])
        for selector in (0x00, 0x05, 0x0A, 0x34):
            (directory / f"{path.stem}-{selector:02x}").write_bytes(bytes((selector,)) + data)


def main(argv: list[str]) -> None:
    if "--seed-vectors" in argv:
        index = argv.index("--seed-vectors")
        seed(Path(argv[index + 1]))
        del argv[index : index + 2]
    print(f"fuzzing {_ctlv.__file__} against {_pytlv.__file__}", flush=True)
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
