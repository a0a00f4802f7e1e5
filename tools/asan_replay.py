"""Bounded mutation replay: the C TLV accelerator against the reference, without coverage.

Usage::

    python tools/asan_replay.py --seconds 60 --artifacts build/fuzz-artifacts \\
        [--in-flight FILE] [--seed N] [--seed-vectors] CORPUS_DIR [...]

tools/asan_fuzz.sh runs this as its phase 2, on the ASan+UBSan build with the ASan runtime
preloaded: there atheris gets no coverage (ASan's stand-ins for libFuzzer's hooks silence
it), so libFuzzer would shrink the corpus to one byte and mutate it blindly. Instead, for
``--seconds``, every corpus input (and every vector, with ``--seed-vectors``) is fed, then
random mutations of it: bit flips, byte changes, insertions, deletions, splices of two
inputs, and length bytes set to 0x7F/0x80/0x81/0x84/0xFF. Each input is checked by
tools/fuzz_tlv.py's ``test_one_input`` (same input format: the first byte picks the mode),
so results and errors are compared exactly as the coverage-guided phase compares them.

A mismatch or unexpected exception is saved as ``ARTIFACTS/mismatch-<sha1>`` and exits 1.
A crash (a sanitizer abort) kills the process before it can save anything, so each input
is first written to ``--in-flight FILE``: the caller keeps that file as the reproducer.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz_tlv  # read-only use: the checker and the vector seeding
from contactless.tlv import _ctlv, _pytlv  # the modules fuzz_tlv imported, as it imported them

#: Values that sit on BER length-form boundaries: last short form, the indefinite marker
#: (invalid in EMV), one and four following bytes, and the reserved 0xFF.
LENGTH_BYTES = (0x7F, 0x80, 0x81, 0x84, 0xFF)
#: Mutated inputs stay this small: TLV bugs show on short inputs, and the reference is slow.
MAX_SIZE = 4096
#: Mutations of each corpus input before moving to the next one.
MUTATIONS_PER_INPUT = 200


class InFlight:
    """The input being executed, kept in a file so that it survives a crash."""

    def __init__(self, path: Path | None) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if path else None

    def record(self, data: bytes) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data, 0)

    def clear(self) -> None:
        self.record(b"")


def _position(rng: random.Random, data: bytearray, *, end: bool = False) -> int:
    return rng.randrange(len(data) + (1 if end else 0))


def _flip_bit(rng: random.Random, data: bytearray, other: bytes) -> None:
    if data:
        data[_position(rng, data)] ^= 1 << rng.randrange(8)


def _change_byte(rng: random.Random, data: bytearray, other: bytes) -> None:
    if data:
        data[_position(rng, data)] = rng.randrange(256)


def _insert(rng: random.Random, data: bytearray, other: bytes) -> None:
    at = _position(rng, data, end=True)
    data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))


def _delete(rng: random.Random, data: bytearray, other: bytes) -> None:
    if data:
        at = _position(rng, data)
        del data[at : at + rng.randint(1, 4)]


def _splice(rng: random.Random, data: bytearray, other: bytes) -> None:
    cut = _position(rng, data, end=True)
    data[cut:] = other[rng.randrange(len(other) + 1) :]


def _length_byte(rng: random.Random, data: bytearray, other: bytes) -> None:
    if data:
        data[_position(rng, data)] = rng.choice(LENGTH_BYTES)


MUTATORS: tuple[Callable[[random.Random, bytearray, bytes], None], ...] = (
    _flip_bit,
    _change_byte,
    _insert,
    _delete,
    _splice,
    _length_byte,
    _length_byte,  # the boundary values are where the C length handling can go wrong
)


def mutate(rng: random.Random, data: bytes, other: bytes) -> bytes:
    """One to four stacked mutations of ``data`` (``other`` is the splice partner)."""
    result = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        rng.choice(MUTATORS)(rng, result, other)
    return bytes(result[:MAX_SIZE])


def load_corpus(directories: list[Path]) -> list[bytes]:
    """Every distinct non-empty input in the corpus directories, in a stable order."""
    inputs: dict[bytes, None] = {}
    for directory in directories:
        for path in sorted(directory.iterdir()) if directory.is_dir() else ():
            if path.is_file() and (data := path.read_bytes()[:MAX_SIZE]):
                inputs.setdefault(data, None)
    return list(inputs)


def save(artifacts: Path, kind: str, data: bytes) -> Path:
    artifacts.mkdir(parents=True, exist_ok=True)
    path = artifacts / f"{kind}-{hashlib.sha1(data).hexdigest()}"
    path.write_bytes(data)
    return path


def replay(
    corpus: list[bytes], seconds: float, rng: random.Random, in_flight: InFlight
) -> tuple[int, bytes | None, BaseException | None]:
    """Run for ``seconds``: (inputs executed, failing input, its exception)."""
    deadline = time.monotonic() + seconds
    executed = 0
    while True:
        for original in corpus:
            for round_ in range(MUTATIONS_PER_INPUT + 1):
                if time.monotonic() >= deadline:
                    return executed, None, None
                data = original if round_ == 0 else mutate(rng, original, rng.choice(corpus))
                in_flight.record(data)
                executed += 1
                try:
                    fuzz_tlv.test_one_input(data)
                except Exception as error:  # a mismatch, or an error neither side typed
                    return executed, data, error


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", nargs="+", type=Path, help="corpus directories")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--in-flight", type=Path, help="file holding the input being run")
    parser.add_argument("--seed", type=int, help="random seed (default: random, printed)")
    parser.add_argument(
        "--seed-vectors", action="store_true", help="add vectors/tlv/ to the first corpus dir"
    )
    args = parser.parse_args(argv)
    if args.seed_vectors:
        fuzz_tlv.seed(args.corpus[0])
    corpus = load_corpus(args.corpus)
    if not corpus:
        print("asan_replay: the corpus is empty", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"fuzzing {_ctlv.__file__} against {_pytlv.__file__}", flush=True)
    print(f"asan_replay: {len(corpus)} corpus inputs, seed {seed}, {args.seconds:g} s", flush=True)
    in_flight = InFlight(args.in_flight)
    started = time.monotonic()
    executed, failing, error = replay(corpus, args.seconds, random.Random(seed), in_flight)
    elapsed = time.monotonic() - started
    in_flight.clear()
    print(f"asan_replay: executed {executed} inputs in {elapsed:.1f} s", flush=True)
    if failing is not None:
        path = save(args.artifacts, "mismatch", failing)
        print(
            f"asan_replay: Uncaught Python exception on {failing.hex().upper()}:\n"
            f"{type(error).__name__}: {error}\nreproducer: {path}",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
