"""Can the terminal reach its acquirer? A TCP connection to the configured host, and a TLS
handshake when asked, timed against the slow threshold."""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any

from ..context import Context
from ..model import Outcome
from ..settings import SelftestSettings, parse_host
from .base import Check, ms, seconds

__all__ = ["HOST"]


def _connect_error(error: OSError) -> str:
    """Outcome for a failed connection (order matters: subclasses first)."""
    if isinstance(error, socket.gaierror):
        return "host.unresolved"
    if isinstance(error, TimeoutError):
        return "host.timeout"
    if isinstance(error, ConnectionRefusedError):
        return "host.refused"
    return "host.unreachable"


def _tls_error(error: OSError) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return "host.tls_untrusted"
    if isinstance(error, TimeoutError):
        return "host.timeout"
    return "host.tls_failed"


def check_host(ctx: Context) -> Outcome:
    """Connect to the acquirer host (and shake hands over TLS when configured)."""
    settings = ctx.settings
    if settings.host is None:
        return Outcome("host.none")
    host, port = parse_host(settings.host)
    timeout = settings.host_timeout
    params = {"host": settings.host, "seconds": seconds(timeout)}
    data: dict[str, Any] = {"host": host, "port": port, "tls": settings.tls}
    started = time.perf_counter()
    try:
        connection = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:
        data["error"] = f"{type(error).__name__}: {error}"
        return Outcome(_connect_error(error), params, data)
    with connection:
        connect_ms = (time.perf_counter() - started) * 1000.0
        data["connect_ms"] = round(connect_ms, 3)
        params["connect"] = ms(connect_ms)
        total_ms = connect_ms
        if settings.tls:
            context = ssl.create_default_context(cafile=settings.tls_ca)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            handshake_started = time.perf_counter()
            try:
                with context.wrap_socket(connection, server_hostname=host) as secure:
                    tls_ms = (time.perf_counter() - handshake_started) * 1000.0
                    data.update(tls_ms=round(tls_ms, 3), tls_version=secure.version())
                    params.update(tls=ms(tls_ms), version=str(secure.version()))
            except OSError as error:  # ssl.SSLError is an OSError
                data["error"] = f"{type(error).__name__}: {error}"
                return Outcome(_tls_error(error), params, data)
            total_ms += tls_ms
    if total_ms > settings.host_slow_ms:
        params.update(total=ms(total_ms), limit=ms(settings.host_slow_ms))
        return Outcome("host.slow", params, data)
    return Outcome("host.tls_ok" if settings.tls else "host.ok", params, data)


def _deadline(settings: SelftestSettings) -> float:
    # Connect and handshake each get host_timeout; name resolution has no timeout of its
    # own, so the runner's deadline is what bounds it.
    return 2 * settings.host_timeout + 10.0


HOST = Check("host.link", "network", check_host, deadline=_deadline)
