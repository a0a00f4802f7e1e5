"""Helpers for the nfcpy UDP end-to-end tests: virtual cards served by ``contactless
emulate --nfc-udp`` in their own processes, read through nfcpy's real reader stack.

Each card asks for port 0 and reports the port it got (no free-port guessing, no two
tests on one port); a card that must come back on the same port (a new card on the same
reader) is started with that port. Readiness is the emulator's own "read it with
--reader nfc:udp:HOST:PORT" line, never a sleep.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: Seconds an emulator process may take to start and bind its socket.
START_DEADLINE = 20.0
#: Terminal settings that make two reads byte-for-byte comparable (fixed UN and date).
FIXED_TERMINAL = """\
seed = 7
fixed_time = 2024-05-17T12:00:00
"""

_URI = re.compile(r"nfc:udp:(?P<host>[0-9.]+):(?P<port>\d+)")
# Run the click command itself, so the tests do not depend on how the CLI registers it.
_EMULATE = "from contactless.commands.emulate import emulate; emulate(prog_name='contactless')"


@dataclass
class EmulatedCard:
    """A ``contactless emulate --nfc-udp`` process serving one card."""

    process: subprocess.Popen[str]
    uri: str
    port: int
    _lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        """Everything the emulator printed so far (stderr)."""
        return "".join(self._lines)

    def kill(self) -> None:
        """SIGKILL: the card vanishes mid-whatever, its socket closed by the kernel."""
        self.process.kill()
        self.process.wait(timeout=10)

    def freeze(self) -> None:
        """SIGSTOP: the card stays in the field but never answers."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> int:
        """SIGTERM (the emulator stops cleanly); returns the exit status."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def wait_exit(self, timeout: float = 10.0) -> int:
        return self.process.wait(timeout=timeout)


def start_card(
    profile: str,
    *,
    port: int = 0,
    settings: str = "",
    faults: tuple[str, ...] = (),
) -> EmulatedCard:
    """Start ``contactless emulate --card PROFILE --nfc-udp 127.0.0.1:PORT[?settings]``
    and return once it listens."""
    address = f"127.0.0.1:{port}" + (f"?{settings}" if settings else "")
    command = [sys.executable, "-c", _EMULATE, "--card", profile, "--nfc-udp", address]
    for fault in faults:
        command += ["--fault", fault]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            seen.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name=f"emulate {profile}", daemon=True).start()
    deadline = time.monotonic() + START_DEADLINE
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            process.kill()
            raise RuntimeError(f"emulator for {profile} did not start: {''.join(seen)}") from None
        if line is None:
            process.wait(timeout=10)
            raise RuntimeError(
                f"emulator for {profile} exited with {process.returncode}: {''.join(seen)}"
            )
        found = _URI.search(line)
        if found:
            return EmulatedCard(process, found.group(0), int(found.group("port")), seen)


@contextlib.contextmanager
def emulated_card(
    profile: str, *, port: int = 0, settings: str = "", faults: tuple[str, ...] = ()
) -> Iterator[EmulatedCard]:
    """:func:`start_card` as a ``with`` block; the process is stopped at the end."""
    card = start_card(profile, port=port, settings=settings, faults=faults)
    try:
        yield card
    finally:
        card.stop()


def terminal_config(directory: Path) -> str:
    """A terminal config file with a fixed unpredictable number and date."""
    path = directory / "terminal.toml"
    path.write_text(FIXED_TERMINAL)
    return str(path)


def frames_sent_by_nfcpy(messages: list[str]) -> list[bytes]:
    """Frames nfcpy's ContactlessFrontend.exchange logged as sent (">>> hex timeout=...")."""
    found = []
    for message in messages:
        match = re.match(r">>> ([0-9a-f]+) timeout=", message)
        if match:
            found.append(bytes.fromhex(match.group(1)))
    return found


def frames_received_by_nfcpy(messages: list[str]) -> list[bytes]:
    """Frames nfcpy's ContactlessFrontend.exchange logged as received ("<<< hex 0.001s")."""
    found = []
    for message in messages:
        match = re.match(r"<<< ([0-9a-f]+) [0-9.]+s", message)
        if match:
            found.append(bytes.fromhex(match.group(1)))
    return found
