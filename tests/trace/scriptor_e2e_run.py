"""Run the real pcsc-tools ``scriptor`` on a script against an emulated card behind a
private pcscd + vpcd, and print its output (used by test_scriptor.py in a child process,
so that this process's PC/SC socket setting cannot leak into the test process).

Usage: python scriptor_e2e_run.py PROFILE SCRIPT
Exit status 77 (with the reason on stderr) when the stack is not available.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP = 77
DEADLINE = 60


def main(profile: str, script: str) -> int:
    scriptor = shutil.which("scriptor")
    if scriptor is None:
        print("scriptor (pcsc-tools) is not installed", file=sys.stderr)
        return SKIP
    spec = importlib.util.spec_from_file_location("e2e_conftest", ROOT / "tests/e2e/conftest.py")
    assert spec is not None and spec.loader is not None
    e2e = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = e2e
    spec.loader.exec_module(e2e)  # points libpcsclite (and scriptor) at a private pcscd
    reason = e2e._missing()
    if reason is not None:
        print(reason, file=sys.stderr)
        return SKIP
    with tempfile.TemporaryDirectory(prefix="scriptor-e2e-") as workdir:
        service = e2e.PcscdService(Path(workdir), e2e._SOCKET_DIR)
        service.start()
        factory = e2e.CardFactory(service)
        try:
            running = factory.thread(profile)
            done = subprocess.run(
                [scriptor, "-r", running.reader, script],
                capture_output=True,
                text=True,
                timeout=DEADLINE,
                check=False,
            )
        finally:
            factory.remove_all()
            service.stop()
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
