#!/usr/bin/env python3
"""(Re)record the APDU trace vectors in vectors/traces/ from the emulator.

By default every vector is recorded through the real PC/SC stack: a private pcscd with
vsmartcard's vpcd driver (the one tests/e2e/conftest.py runs), the emulated card served
on a vpcd slot with its faults, and ``contactless.read_card("pcsc:Virtual PCD 00 00")``
with a :class:`contactless.trace.Recorder`. ``--via sim`` records from the in-process
``sim:`` reader instead (for machines without pcscd/vpcd).

For each vector it writes ``NAME.jsonl`` (redacted) and ``NAME.expected.json`` (the
outcome of replaying it), after checking that:

- replaying the unredacted recording gives exactly what the live read gave (card data
  with every answer's TLV, or the same error);
- replaying the redacted trace gives the same card data, but for the cardholder name
  (replaced by the redaction's placeholder), or the same error.

Usage::

    python tools/record_vectors.py                 # all vectors, through pcscd + vpcd
    python tools/record_vectors.py --via sim       # through sim:
    python tools/record_vectors.py visa-read jcb-corrupt-record
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "vectors" / "traces"

#: The terminal every vector is recorded with: a fixed date and unpredictable number, so
#: re-recording gives the same commands (and the same cryptograms).
FIXED_TIME = datetime(2024, 5, 17, 12, 0, 0)
UNPREDICTABLE_NUMBER = bytes.fromhex("1A2B3C4D")
#: Seconds per exchange (short: the timeout vector waits this long once).
EXCHANGE_TIMEOUT = 2.0


@dataclasses.dataclass(frozen=True)
class Vector:
    """One trace to record: the emulator profile, its fault options, the flow."""

    name: str
    profile: str
    description: str
    faults: str = ""
    transaction: bool = False
    terminal: dict[str, Any] = dataclasses.field(default_factory=dict)


VECTORS: tuple[Vector, ...] = (
    Vector("visa-read", "visa", "Visa payWave qVSDC read (cryptogram in the GPO answer)"),
    Vector("mastercard-read", "mastercard", "Mastercard read"),
    Vector("amex-read", "amex", "American Express read"),
    Vector("discover-read", "discover", "Discover read"),
    Vector("jcb-read", "jcb", "JCB read"),
    Vector("unionpay-read", "unionpay", "UnionPay read"),
    Vector(
        "visa-transaction",
        "visa",
        "Visa with TTQ asking for contactless VSDC: GPO without cryptogram, then GENERATE AC",
        transaction=True,
        terminal={"ttq": bytes.fromhex("46004000")},
    ),
    Vector("mastercard-transaction", "mastercard", "Mastercard ARQC", transaction=True),
    Vector("amex-transaction", "amex", "American Express ARQC", transaction=True),
    Vector("discover-transaction", "discover", "Discover D-PAS ARQC", transaction=True),
    Vector("jcb-transaction", "jcb", "JCB ARQC", transaction=True),
    Vector("unionpay-transaction", "unionpay", "UnionPay ARQC", transaction=True),
    Vector(
        "mastercard-t0-transaction",
        "mastercard",
        "T=0 style card: 61xx (GET RESPONSE) and 6Cxx (re-issue with Le)",
        faults="t0=1",
        transaction=True,
    ),
    Vector(
        "mastercard-pin-blocked-transaction",
        "mastercard",
        "PIN try counter 0: the card declines offline (AAC)",
        faults="pin_tries=0",
        transaction=True,
    ),
    Vector(
        "visa-removed-mid-read",
        "visa",
        "the card leaves the field during the first READ RECORD",
        faults="remove_after=3",
    ),
    Vector(
        "amex-gpo-refused",
        "amex",
        "GET PROCESSING OPTIONS refused with 6985 (conditions of use not satisfied)",
        faults="sw=A8:6985",
    ),
    Vector(
        "discover-record-not-found",
        "discover",
        "READ RECORD answered 6A83 (record not found)",
        faults="sw=B2:6A83",
    ),
    Vector(
        "jcb-corrupt-record",
        "jcb",
        "a record whose TLV length runs past the end of the answer",
        faults="corrupt=B2",
    ),
    Vector(
        "unionpay-card-silent",
        "unionpay",
        "the card stops answering after two APDUs (timeout)",
        faults="mute_after=2",
    ),
)


def terminal_config(vector: Vector) -> Any:
    from contactless.emv.terminal import TerminalConfig
    from contactless.trace import PinnedRandom

    return TerminalConfig(
        clock=lambda: FIXED_TIME, rng=PinnedRandom(UNPREDICTABLE_NUMBER), **vector.terminal
    )


# --- readers ---------------------------------------------------------------------------------


def load_e2e_fixtures() -> ModuleType:
    """tests/e2e/conftest.py: its private pcscd (PcscdService) and vpcd card server
    (CardFactory). Importing it points libpcsclite at that pcscd, so it comes first."""
    spec = importlib.util.spec_from_file_location("e2e_conftest", ROOT / "tests/e2e/conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    reason = module._missing()
    if reason is not None:
        raise SystemExit(f"cannot record through pcscd + vpcd: {reason} (use --via sim)")
    return module


@contextmanager
def pcsc_cards() -> Iterator[Any]:
    """Yield ``serve(vector) -> context manager yielding a pcsc: URI with the card on it``."""
    e2e = load_e2e_fixtures()
    with tempfile.TemporaryDirectory(prefix="record-vectors-") as workdir:
        service = e2e.PcscdService(Path(workdir), e2e._SOCKET_DIR)
        service.start()
        try:

            @contextmanager
            def serve(vector: Vector) -> Iterator[str]:
                factory = e2e.CardFactory(service)
                try:
                    running = factory.thread(vector.profile, faults=vector.faults)
                    yield running.uri
                finally:
                    factory.remove_all()

            yield serve
        finally:
            service.stop()


@contextmanager
def sim_cards() -> Iterator[Any]:
    @contextmanager
    def serve(vector: Vector) -> Iterator[str]:
        yield f"sim:{vector.profile}" + (f"?{vector.faults}" if vector.faults else "")

    yield serve


# --- recording ---------------------------------------------------------------------------------


def live_outcome(data: Any, error: Exception | None) -> dict[str, Any]:
    if error is not None:
        return {"error": {"type": type(error).__name__}}
    result: dict[str, Any] = data.to_json(include_tlvs=True)
    result.pop("reader")
    return {"result": result}


def without_name(outcome: dict[str, Any]) -> dict[str, Any]:
    """An outcome with only what redaction keeps: no cardholder name, no TLV listing
    (whose masked name has the placeholder's length), no error message."""
    if "error" in outcome:
        return {"error": {"type": outcome["error"]["type"]}}
    result = dict(outcome["result"])
    result.pop("cardholder_name", None)
    result.pop("responses", None)
    return {"result": result}


def record(vector: Vector, uri: str, out: Path) -> str:
    from contactless.errors import ContactlessError
    from contactless.reader import read_card
    from contactless.testing import expected_path, outcome, write_expected
    from contactless.trace import Recorder, read_trace, terminal_header, write_trace
    from contactless.trace_redact import redact

    config = terminal_config(vector)
    recorder = Recorder()
    data, error = None, None
    try:
        data = read_card(
            uri,
            config=config,
            transaction=vector.transaction,
            wait=10.0,
            timeout=EXCHANGE_TIMEOUT,
            on_card=recorder.attach,
        )
    except ContactlessError as failure:
        error = failure
    where = f"{vector.profile}" + (f"?{vector.faults}" if vector.faults else "")
    trace = recorder.trace(
        terminal=terminal_header(config),
        flow="transaction" if vector.transaction else "read",
        note=f"{vector.description}; emulator card {where}",
        redacted=False,
    )
    live = live_outcome(data, error)
    raw = outcome(trace)
    if without_name(raw) != without_name(live) or (
        "result" in live and raw["result"] != live["result"]
    ):
        raise SystemExit(f"{vector.name}: replaying the recording differs from the live read")
    redacted, report = redact(trace)
    replayed = outcome(redacted)
    if without_name(replayed) != without_name(live):
        raise SystemExit(f"{vector.name}: replaying the redacted trace differs from the live read")
    path = out / f"{vector.name}.jsonl"
    write_trace(redacted, path)
    # The expected outcome is that of the file as CI reads it (its errors name the line).
    write_expected(expected_path(path), outcome(read_trace(path)))
    what = replayed["error"]["type"] if "error" in replayed else "ok"
    return (
        f"{vector.name}: {len(redacted.exchanges)} exchange(s), {what}, "
        f"{report.pans} PAN / {report.names} name(s) redacted"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="vectors to record (default: all)")
    parser.add_argument(
        "--via",
        choices=("pcsc", "sim"),
        default="pcsc",
        help="pcsc: through a private pcscd + vpcd (default); sim: the in-process reader",
    )
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder (default {OUT})")
    args = parser.parse_args(argv)
    known = {vector.name: vector for vector in VECTORS}
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.error(f"unknown vector(s) {', '.join(unknown)}; known: {', '.join(known)}")
    chosen = [known[name] for name in args.names] if args.names else list(VECTORS)
    args.out.mkdir(parents=True, exist_ok=True)
    cards = pcsc_cards() if args.via == "pcsc" else sim_cards()
    with cards as serve:
        for vector in chosen:
            with serve(vector) as uri:
                print(record(vector, uri, args.out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
