"""How the vpcd bridge reaches vpcd: a bad address fails at once with a ConfigError; a
refused connection (vpcd not up yet) is waited for, said once, and bounded by
``connect_timeout``."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from click.testing import CliRunner

from contactless.commands.emulate import emulate
from contactless.emulator.card import VirtualCard
from contactless.emulator.profiles import load_profile
from contactless.emulator.vpcd import parse_address, serve
from contactless.errors import ConfigError, ServiceUnavailable

# RFC 6761: names under .invalid never resolve.
UNRESOLVABLE = "no-such-host.invalid"


def refused_port() -> int:
    """A local port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unresolvable_host_is_a_config_error_at_once() -> None:
    stop = threading.Event()
    started = time.monotonic()
    with pytest.raises(ConfigError, match=f"{UNRESOLVABLE}.*does not resolve"):
        serve(VirtualCard(load_profile("visa")), (UNRESOLVABLE, 35963), stop=stop)
    assert time.monotonic() - started < 30  # anti-hang: before the fix it retried forever


@pytest.mark.parametrize(
    ("text", "problem"),
    [("127.0.0.1:99999", "not 1..65535"), ("host:port", "not HOST:PORT"), ("a b:1", "host")],
)
def test_parse_address_refuses_bad_addresses(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_address(text)


def test_a_refused_connection_is_waited_for_said_once_and_bounded() -> None:
    port = refused_port()
    lines: list[str] = []
    with pytest.raises(ServiceUnavailable, match=f"127.0.0.1:{port}"):
        serve(
            VirtualCard(load_profile("visa")),
            ("127.0.0.1", port),
            connect_timeout=1.0,
            waiting=lines.append,
        )
    assert len(lines) == 1
    assert lines[0].startswith(f"waiting for up to 1 s for vpcd at 127.0.0.1:{port}")


def test_emulate_reports_an_unresolvable_vpcd_host() -> None:
    result = CliRunner().invoke(emulate, ["--card", "visa", "--vpcd", f"{UNRESOLVABLE}:35963"])
    assert result.exit_code == 2
    assert "does not resolve" in result.output


def test_emulate_says_it_is_waiting_for_vpcd() -> None:
    port = refused_port()
    args = ["--card", "visa", "--vpcd", f"127.0.0.1:{port}", "--connect-timeout", "0.5"]
    result = CliRunner().invoke(emulate, args)
    assert result.exit_code == 2
    assert result.output.count("waiting for up to 0.5 s for vpcd") == 1
