#!/usr/bin/env python3
"""Compare contactless's PC/SC transmit with raw pyscard on the same vpcd card.

Both talk to the same virtual card through the same pcscd and vpcd reader in one run:
raw ``smartcard.scard.SCardTransmit`` (list in, list out) against
``PcscTransport.transmit`` (bytes in, bytes out, deadline, tracer hook, error
translation). Rounds alternate between the two so drift hits both alike; the figure is
the median round trip of each, and the overhead of ours relative to raw.

By default the tool starts everything it needs and stops it afterwards: a private
``pcscd --foreground`` with the vpcd driver (in a private mount namespace, as the e2e
tests do; needs root or user namespaces) and ``contactless emulate --card PROFILE --vpcd``
as a child process. With ``--reader NAME`` it uses a reader of the running pcscd instead.

    python tools/bench_transmit.py                 # private pcscd + emulator
    python tools/bench_transmit.py --markdown docs/benchmarks.md   # update its section
    python tools/bench_transmit.py --reader "Virtual PCD 00 00"

Exit status 1 when the overhead exceeds --max-overhead (10 % by default).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchdoc import write_section

SECTION = "# PC/SC transmit benchmark"
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
SLOT0 = "Virtual PCD 00 00"
SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")
DEADLINE = 20.0
RAW, OURS, BACKEND = "raw", "ours", "backend"


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(("0.0.0.0", port))
                second.bind(("0.0.0.0", port + 1))
        except OSError:
            continue
        return port
    raise SystemExit("no two consecutive free TCP ports")


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def _card_present(reader: str) -> bool:
    from smartcard import scard

    code, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if code != 0:
        return False
    try:
        code, states = scard.SCardGetStatusChange(context, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
        return code == 0 and bool(states[0][1] & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(context)


@contextlib.contextmanager
def private_stack(profile: str) -> Iterator[str]:
    """A private pcscd with vpcd and an emulated card on slot 0; yields the reader name."""
    if not VPCD_DRIVER.exists() or shutil.which("pcscd") is None:
        raise SystemExit("needs pcscd and vsmartcard-vpcd (apt-get install pcscd vsmartcard-vpcd)")
    workdir = Path(tempfile.mkdtemp(prefix="contactless-bench-"))
    run_dir = workdir / "run"
    run_dir.mkdir()
    # libpcsclite reads this once, at the first PC/SC call: set it before any.
    os.environ["PCSCLITE_CSOCK_NAME"] = str(run_dir / "pcscd.comm")
    port = _free_port_pair()
    config = workdir / "reader.conf"
    config.write_text(
        f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:0x{port:04X}\n'
        f"LIBPATH {VPCD_DRIVER}\nCHANNELID 0x{port:04X}\n"
    )
    unshare = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        unshare = ["unshare", "--user", "--map-root-user", "--mount"]
    script = (
        f"mkdir -p /run/pcscd && mount --bind {run_dir} /run/pcscd && "
        f"exec pcscd --foreground -c {config}"
    )
    pcscd = subprocess.Popen(
        [*unshare, "sh", "-c", script],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    emulator: subprocess.Popen[bytes] | None = None
    try:
        _wait(lambda: (run_dir / "pcscd.comm").exists(), "pcscd to start")
        emulator = subprocess.Popen(
            [sys.executable, "-m", "contactless", "emulate", "--card", profile,
             "--vpcd", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(lambda: _card_present(SLOT0), "the emulated card on vpcd")
        yield SLOT0
    finally:
        for process in (emulator, pcscd):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(DEADLINE)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Timings:
    """Round trips in ns per path, and paired differences (each of our round trips minus
    the raw one just before it, so load from other processes hits both alike)."""

    paths: dict[str, list[int]] = field(default_factory=dict)
    differences: dict[str, list[int]] = field(default_factory=dict)

    def median_us(self, path: str) -> float:
        return statistics.median(self.paths[path]) / 1000

    def overhead(self, path: str) -> float:
        """Median paired difference, in percent of the median raw round trip."""
        return statistics.median(self.differences[path]) / statistics.median(self.paths[RAW]) * 100


def measure(reader: str, apdu: bytes, rounds: int, per_round: int) -> Timings:
    """Time raw pyscard, our public transmit, and our backend alone (``_transmit``,
    without the base class's checks and tracing), each of ours right after a raw one."""
    from smartcard import scard

    from contactless.transport.pcsc import PcscTransport

    code, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert code == 0, hex(code)
    code, card, protocol = scard.SCardConnect(
        context, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
    )
    assert code == 0, hex(code)
    raw_apdu = list(apdu)
    ours = PcscTransport(f"pcsc:{reader}", timeout=5.0)
    ours.connect()
    timings = Timings({RAW: [], OURS: [], BACKEND: []}, {OURS: [], BACKEND: []})
    clock = time.perf_counter_ns
    transmit = scard.SCardTransmit
    paths: dict[str, Callable[[], object]] = {
        OURS: lambda: ours.transmit(apdu),
        BACKEND: lambda: ours._transmit(apdu, 5.0),
    }
    try:
        expected = ours.transmit(apdu)
        code, answer = transmit(card, protocol, raw_apdu)
        assert code == 0 and bytes(answer) == expected, "raw and ours disagree"
        for _ in range(per_round):  # warm up every path
            transmit(card, protocol, raw_apdu)
            for run in paths.values():
                run()
        for _ in range(rounds * per_round):
            for path, run in paths.items():
                start = clock()
                transmit(card, protocol, raw_apdu)
                middle = clock()
                run()
                end = clock()
                raw_ns, our_ns = middle - start, end - middle
                timings.paths[RAW].append(raw_ns)
                timings.paths[path].append(our_ns)
                timings.differences[path].append(our_ns - raw_ns)
    finally:
        ours.disconnect()
        scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(context)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reader", help="use this reader of the running pcscd")
    parser.add_argument("--card", default="visa", help="emulator profile (default: visa)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=250)
    parser.add_argument("--max-overhead", type=float, default=10.0, help="percent")
    parser.add_argument(
        "--markdown", type=Path, help="also write the report's section to this file"
    )
    args = parser.parse_args(argv)

    stack = contextlib.nullcontext(args.reader) if args.reader else private_stack(args.card)
    with stack as reader:
        timings = measure(reader, SELECT_PPSE, args.rounds, args.per_round)
    raw, ours, backend = (timings.median_us(path) for path in (RAW, OURS, BACKEND))
    overhead, backend_overhead = timings.overhead(OURS), timings.overhead(BACKEND)
    verdict = "PASS" if overhead <= args.max_overhead else "FAIL"
    samples = len(timings.paths[OURS])
    print(f"raw pyscard SCardTransmit  : median {raw:8.1f} us over {samples} APDUs")
    print(f"PcscTransport.transmit     : median {ours:8.1f} us ({overhead:+.1f} %)")
    print(f"backend alone (_transmit)  : median {backend:8.1f} us ({backend_overhead:+.1f} %)")
    print(f"{verdict} (limit {args.max_overhead:g} % for PcscTransport.transmit)")
    if args.markdown:
        section = "\n".join(
            [
                SECTION,
                "",
                f"Generated by `python tools/bench_transmit.py --markdown docs/benchmarks.md`: "
                f"SELECT PPSE to an emulated {args.card} card on vpcd through one pcscd, "
                f"{samples} round trips per path; each of ours follows a raw one, and the "
                "overhead is the median of those paired differences over the median raw round "
                "trip (other processes' load hits both alike).",
                "",
                "| path | median round trip | overhead |",
                "|---|---|---|",
                f"| raw pyscard `SCardTransmit` | {raw:.1f} µs | |",
                f"| `PcscTransport.transmit` (public) | {ours:.1f} µs | {overhead:+.1f} % |",
                f"| PC/SC backend alone (`_transmit`) | {backend:.1f} µs "
                f"| {backend_overhead:+.1f} % |",
                "",
                f"Limit: {args.max_overhead:g} %: {verdict}. Python {platform.python_version()}, "
                f"{platform.machine()}, {os.cpu_count()} CPU(s), {platform.system()} "
                f"{platform.release()}.",
                "",
            ]
        )
        write_section(args.markdown, SECTION, section)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
