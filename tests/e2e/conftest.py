"""End-to-end fixtures: a private pcscd with vsmartcard's vpcd driver, and virtual cards on it.

``pcscd`` (session) starts ``pcscd --foreground`` as a child process with its own
reader.conf (two vpcd slots on free TCP ports) and its own socket directory: pcscd always
puts its socket and pid file in /run/pcscd, so it runs in a private mount namespace
(``unshare``) where a temporary directory is mounted on /run/pcscd, and clients find it
through ``PCSCLITE_CSOCK_NAME``. A system pcscd, if any, is neither touched nor used.
Where mount namespaces are not allowed (a container without CAP_SYS_ADMIN) and no other
pcscd answers on /run/pcscd, it runs there instead, reached through a symlink.

libpcsclite reads ``PCSCLITE_CSOCK_NAME`` once per process, at the first PC/SC call, so
this module sets it when pytest imports it (before any test runs): every PC/SC client in
this test process, and every child it starts, talks to the private pcscd.

``vpcd_card`` (function) starts virtual cards on vpcd slots, in threads of this process
(:func:`contactless.emulator.vpcd.serve`) or as ``contactless emulate`` processes, and
takes them away at the end of the test.

Skips: when pcscd, the vpcd driver or ``unshare`` is missing the tests skip with the
reason, except under CI (``CI`` set), where a missing piece is a failure.
Set ``CONTACTLESS_E2E_NO_NAMESPACE=1`` to force the /run/pcscd fallback.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
SLOT_NAMES = ("Virtual PCD 00 00", "Virtual PCD 00 01")
#: Seconds allowed for pcscd to start, stop, or notice a card.
SERVICE_DEADLINE = 15.0
CARD_DEADLINE = 10.0
#: No e2e test may run longer than this (a hung test fails instead of hanging CI).
TEST_DEADLINE = 120

_SOCKET_DIR = Path(tempfile.mkdtemp(prefix="contactless-pcscd-"))
os.environ["PCSCLITE_CSOCK_NAME"] = str(_SOCKET_DIR / "pcscd.comm")
atexit.register(shutil.rmtree, _SOCKET_DIR, True)


SYSTEM_RUN_DIR = Path("/run/pcscd")


def _missing() -> str | None:
    """Why the pcscd/vpcd stack cannot run here, or None."""
    if shutil.which("pcscd") is None:
        return "pcscd is not installed (apt-get install pcscd)"
    if not VPCD_DRIVER.exists():
        return "the vpcd driver is not installed (apt-get install vsmartcard-vpcd)"
    try:
        import smartcard.scard  # noqa: F401
    except ImportError:
        return "pyscard is not installed (pip install 'contactless[pcsc]')"
    if _unshare_command() is None and not _may_use_system_run_dir():
        return (
            "cannot run a private pcscd: `unshare --mount` is not allowed here (a container "
            "without CAP_SYS_ADMIN?) and /run/pcscd is in use or not writable"
        )
    return None


@functools.cache
def _unshare_command() -> tuple[str, ...] | None:
    """The unshare prefix that gives pcscd a private /run/pcscd, if this system allows it."""
    if shutil.which("unshare") is None or os.environ.get("CONTACTLESS_E2E_NO_NAMESPACE"):
        return None
    prefix = ("unshare", "--mount", "--propagation", "private")
    if os.geteuid() != 0:
        prefix = ("unshare", "--user", "--map-root-user", "--mount")
    try:
        probe = subprocess.run(
            [*prefix, "sh", "-c", f"mount --bind {tempfile.gettempdir()} /tmp"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return prefix if probe.returncode == 0 else None


def _may_use_system_run_dir() -> bool:
    """Without namespaces: pcscd may use /run/pcscd itself if no other pcscd is there."""
    if (SYSTEM_RUN_DIR / "pcscd.comm").exists():
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(SYSTEM_RUN_DIR / "pcscd.comm"))
            except OSError:
                pass  # a stale socket: ours to clean
            else:
                return False  # a pcscd answers there: never touch it
    parent = SYSTEM_RUN_DIR if SYSTEM_RUN_DIR.exists() else SYSTEM_RUN_DIR.parent
    return os.access(parent, os.W_OK)


def require_stack() -> None:
    """Skip (or, under CI, fail) when the pcscd + vpcd stack is not available."""
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"e2e stack missing in CI: {reason}")
    pytest.skip(reason)


def _free_port_pair() -> int:
    """A port P such that P and P+1 are free (vpcd listens on one port per slot)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port >= 65535:
            continue
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(("0.0.0.0", port))
                second.bind(("0.0.0.0", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no two consecutive free TCP ports")


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``condition`` until true; fail the test naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class PcscdService:
    """A private ``pcscd --foreground`` with two vpcd slots; start/stop/restart by PID."""

    def __init__(self, workdir: Path, socket_dir: Path) -> None:
        self.workdir = workdir
        self.socket_dir = socket_dir
        self.port = _free_port_pair()
        self.config = workdir / "reader.conf"
        self.config.write_text(
            'FRIENDLYNAME "Virtual PCD"\n'
            f"DEVICENAME   /dev/null:0x{self.port:04X}\n"
            f"LIBPATH      {VPCD_DRIVER}\n"
            f"CHANNELID    0x{self.port:04X}\n"
        )
        self.log_path = workdir / "pcscd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        #: True when pcscd runs in its own mount namespace (else it uses /run/pcscd).
        self.private = _unshare_command() is not None

    @property
    def ports(self) -> tuple[int, int]:
        """vpcd's TCP port for slot 0 and slot 1."""
        return self.port, self.port + 1

    @property
    def readers(self) -> tuple[str, str]:
        return SLOT_NAMES

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _clean_stale_files(self) -> None:
        # A pcscd killed hard leaves its socket and pid file; the next one refuses to start.
        run_dirs = [self.socket_dir] + ([] if self.private else [SYSTEM_RUN_DIR])
        for run_dir in run_dirs:
            for name in ("pcscd.comm", "pcscd.pid"):
                with contextlib.suppress(FileNotFoundError):
                    (run_dir / name).unlink()

    def start(self) -> None:
        if self.running:
            return
        self._clean_stale_files()
        command = f"pcscd --foreground --debug --apdu -c {self.config}"
        prefix = _unshare_command()
        if prefix is not None:
            # Private mount namespace: our directory is /run/pcscd for this pcscd only.
            argv = [*prefix, "sh", "-c", f"mkdir -p {SYSTEM_RUN_DIR} && mount --bind "
                    f"{self.socket_dir} {SYSTEM_RUN_DIR} && exec {command}"]  # fmt: skip
        else:
            # No namespaces: pcscd uses the real /run/pcscd (checked free); clients reach
            # it through a symlink at the PCSCLITE_CSOCK_NAME path.
            argv = command.split()
            with contextlib.suppress(FileExistsError):
                (self.socket_dir / "pcscd.comm").symlink_to(SYSTEM_RUN_DIR / "pcscd.comm")
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()
        self.starts += 1
        self._wait_ready()

    def _wait_ready(self) -> None:
        from smartcard import scard

        def ready() -> bool:
            if not self.running:
                pytest.fail(
                    f"pcscd exited at start (exit {self.process and self.process.poll()})"
                    f"; log:\n{self.log_tail()}"
                )
            if not (self.socket_dir / "pcscd.comm").exists():  # (through the symlink, too)
                return False
            code, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if code != 0:
                return False
            try:
                code, names = scard.SCardListReaders(context, [])
                return code == 0 and set(SLOT_NAMES) <= set(names)
            finally:
                scard.SCardReleaseContext(context)

        wait_until(ready, SERVICE_DEADLINE, "pcscd to list the vpcd readers")

    def stop(self) -> None:
        """Stop pcscd by its PID (SIGTERM, then SIGKILL) and wait for it to exit."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            self._clean_stale_files()
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=SERVICE_DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=SERVICE_DEADLINE)
        self._clean_stale_files()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@pytest.fixture(scope="session")
def pcscd_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PcscdService]:
    """The private pcscd, started once per session (tests that stop it restart it)."""
    require_stack()
    service = PcscdService(tmp_path_factory.mktemp("pcscd"), _SOCKET_DIR)
    service.start()
    try:
        yield service
    finally:
        service.stop()
        shutil.rmtree(_SOCKET_DIR, ignore_errors=True)


@pytest.fixture
def pcscd(pcscd_service: PcscdService) -> Iterator[PcscdService]:
    """pcscd, running at the start of the test (restarted if an earlier test stopped it)."""
    if not pcscd_service.running:
        pcscd_service.start()
    yield pcscd_service


def reader_present(name: str) -> bool | None:
    """Whether pcscd shows a card on reader ``name`` (None: pcscd unreachable)."""
    from smartcard import scard

    code, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if code != 0:
        return None
    try:
        code, states = scard.SCardGetStatusChange(context, 0, [(name, scard.SCARD_STATE_UNAWARE)])
        if code != 0:
            return None
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(context)


def reader_is_empty(name: str) -> bool:
    """True when pcscd shows no card on ``name`` (or cannot be reached)."""
    return reader_present(name) is not True


@dataclass
class RunningCard:
    """A virtual card being served on a vpcd slot (a thread or a process)."""

    profile: str
    slot: int
    reader: str
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    process: subprocess.Popen[bytes] | None = None
    connected: threading.Event = field(default_factory=threading.Event)
    result: list[object] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"pcsc:{self.reader}"

    def wait_present(self, timeout: float = CARD_DEADLINE) -> None:
        """Wait until pcscd sees this card on its reader."""
        wait_until(lambda: reader_present(self.reader) is True, timeout, f"a card on {self.reader}")

    def remove(self, timeout: float = CARD_DEADLINE) -> None:
        """Take the card away and wait until the serving thread or process is gone."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout)
            assert not self.thread.is_alive(), f"the {self.profile} card did not stop"
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


class CardFactory:
    """Starts virtual cards on vpcd slots; removes them all when the test ends."""

    def __init__(self, service: PcscdService) -> None:
        self.service = service
        self.cards: list[RunningCard] = []

    def thread(
        self, profile: str, *, slot: int = 0, faults: str = "", wait: bool = True
    ) -> RunningCard:
        """Serve ``profile`` from a thread of the test process."""
        from contactless.emulator.card import VirtualCard
        from contactless.emulator.faults import parse_faults
        from contactless.emulator.profiles import load_profile
        from contactless.emulator.vpcd import serve

        parsed = parse_faults(faults)
        card = VirtualCard(load_profile(profile), options=parsed.card_options)
        running = RunningCard(profile, slot, SLOT_NAMES[slot])

        def run() -> None:
            try:
                running.result.append(
                    serve(
                        card,
                        ("127.0.0.1", self.service.ports[slot]),
                        faults=parsed,
                        ready=lambda _connection: running.connected.set(),
                        stop=running.stop_event,
                    )
                )
            except BaseException as error:  # reported by the test through `result`
                running.result.append(error)

        running.thread = threading.Thread(target=run, name=f"vpcd {profile}", daemon=True)
        running.thread.start()
        self.cards.append(running)
        if wait:
            running.wait_present()
        return running

    def process(
        self, profile: str, *, slot: int = 0, args: tuple[str, ...] = (), wait: bool = True
    ) -> RunningCard:
        """Serve ``profile`` with ``contactless emulate`` in a child process."""
        running = RunningCard(profile, slot, SLOT_NAMES[slot])
        command = [
            sys.executable, "-m", "contactless", "emulate", "--card", profile,
            "--vpcd", f"127.0.0.1:{self.service.ports[slot]}", *args,
        ]  # fmt: skip
        running.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.cards.append(running)
        if wait:
            running.wait_present()
        return running

    def remove_all(self) -> None:
        for card in self.cards:
            card.remove()
        if self.service.running:
            for name in SLOT_NAMES:
                wait_until(
                    functools.partial(reader_is_empty, name), CARD_DEADLINE, f"{name} to be empty"
                )


@pytest.fixture
def vpcd_card(pcscd: PcscdService) -> Iterator[CardFactory]:
    """Start virtual cards on the vpcd slots: ``vpcd_card.thread("visa")``,
    ``vpcd_card.process("amex", slot=1)``. They are removed when the test ends."""
    factory = CardFactory(pcscd)
    try:
        yield factory
    finally:
        factory.remove_all()


@pytest.fixture(autouse=True)
def _e2e_deadline() -> Iterator[None]:
    """Fail (rather than hang) an e2e test that runs past TEST_DEADLINE seconds."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"e2e test ran past its {TEST_DEADLINE} s deadline")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_DEADLINE)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
