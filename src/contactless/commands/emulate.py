"""``contactless emulate``: put a virtual EMV card on a reader wire, for tests and demos.

Each way of serving a card is a *serving mode*: one ``--MODE ADDRESS`` option whose
parameter name is the mode's key in :data:`SERVING_MODES`, and the row naming the function
that serves the card there. Exactly one mode is given per run. Adding a mode is: a click
option on :func:`emulate`, and a row.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

import click

from ..errors import ConfigError, ContactlessError

if TYPE_CHECKING:
    from ..emulator.card import VirtualCard
    from ..emulator.faults import Faults

#: Exit status when the card could not be served (bad options, no vpcd to connect to).
EXIT_FAILED = 2


@dataclass(frozen=True)
class ServeRequest:
    """Everything a serving mode needs: the card, where to serve it, the faults, and the
    event that stops it (set by Ctrl-C or SIGTERM)."""

    card: VirtualCard
    profile: str
    address: str
    faults: Faults
    once: bool
    connect_timeout: float | None
    stop: threading.Event
    say: Callable[[str], None]


def _serve_vpcd(request: ServeRequest) -> str:
    from ..emulator.vpcd import StopReason, VpcdCard, parse_address, serve

    host, port = parse_address(request.address)

    def ready(connection: VpcdCard) -> None:
        request.say(
            f"{request.profile} card on vpcd at {host}:{port} (pcscd shows it in "
            "'Virtual PCD'); Ctrl-C to stop"
        )

    reason = serve(
        request.card,
        (host, port),
        faults=request.faults,
        ready=ready,
        stop=request.stop,
        reconnect=not request.once,
        connect_timeout=request.connect_timeout,
        waiting=request.say,
    )
    return {
        StopReason.STOPPED: "stopped",
        StopReason.REMOVED: "card removed (remove_after fault)",
        StopReason.DISCONNECTED: "vpcd closed the connection (pcscd stopped)",
    }[reason]


def _serve_nfc_udp(request: ServeRequest) -> str:
    # UDP has no connection: --once and --connect-timeout do not apply.
    from ..emulator.nfcudp import NfcUdpCard, StopReason, serve

    def ready(server: NfcUdpCard) -> None:
        request.say(
            f"{request.profile} card (type {server.settings.technology}) on nfcpy's UDP "
            f"wire; read it with --reader {server.uri}; Ctrl-C to stop"
        )

    reason = serve(
        request.card, request.address, faults=request.faults, ready=ready, stop=request.stop
    )
    return {
        StopReason.STOPPED: "stopped",
        StopReason.REMOVED: "card removed (remove_after fault)",
    }[reason]


#: Serving mode (its option's parameter name) -> the function that serves the card there
#: and returns a line saying why it stopped.
SERVING_MODES: dict[str, Callable[[ServeRequest], str]] = {
    "vpcd": _serve_vpcd,
    "nfc_udp": _serve_nfc_udp,
}


def _fault_options(pairs: tuple[str, ...], hang_after: int | None) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"--fault {pair!r} is not key=value", remedy="e.g. --fault latency_ms=40"
            )
        if key in options:
            raise ConfigError(f"fault option {key!r} is given twice")
        options[key] = value.strip()
    if hang_after is not None:
        if "hang_after" in options:
            raise ConfigError("hang_after is given both as --hang-after and as --fault")
        options["hang_after"] = str(hang_after)
    return options


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (the serving loop then returns cleanly)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@click.command()
@click.option(
    "--card",
    "profile",
    required=True,
    metavar="PROFILE",
    help="Card profile: visa, mastercard, amex... (`contactless readers` lists sim:PROFILE).",
)
@click.option(
    "--vpcd",
    metavar="HOST:PORT",
    help="Serve the card to pcscd through vsmartcard's vpcd driver (Debian: 127.0.0.1:35963).",
)
@click.option(
    "--nfc-udp",
    metavar="HOST:PORT[?type=A|B&fsci=N&fwi=N]",
    help="Serve the card as an ISO 14443-4 card on nfcpy's UDP wire format, read with "
    "--reader nfc:udp:HOST:PORT (port 0 picks a free one); type, fsci and fwi override "
    "the card type and the frame size and waiting time of its ATS.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KEY=VALUE",
    help="Fault option, as in sim: URIs (latency_ms, error_rate, remove_after, t0...). Repeatable.",
)
@click.option(
    "--hang-after",
    type=click.IntRange(min=0),
    metavar="N",
    help="Answer N APDUs, then stop answering but keep the connection open.",
)
@click.option(
    "--once",
    is_flag=True,
    help="Exit when the reader side goes away instead of waiting for it to come back.",
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="Give up if the reader side cannot be reached within this time. Default: while "
    "the connection is refused (vpcd not up yet), wait until Ctrl-C, saying so once; a host "
    "that does not resolve or a bad port fails at once.",
)
def emulate(
    profile: str,
    faults: tuple[str, ...],
    hang_after: int | None,
    once: bool,
    connect_timeout: float | None,
    **addresses: str | None,
) -> None:
    """Emulate an EMV contactless card on a reader wire until Ctrl-C.

    \b
    contactless emulate --card visa --vpcd 127.0.0.1:35963
    contactless emulate --card mastercard --vpcd :35964 --fault remove_after=5
    contactless emulate --card visa --nfc-udp 127.0.0.1:54321
    """
    # Every serving-mode option arrives in `addresses` under its SERVING_MODES name.
    modes = {name: address for name, address in addresses.items() if address is not None}
    try:
        if len(modes) != 1:
            options = ", ".join("--" + name.replace("_", "-") for name in SERVING_MODES)
            raise ConfigError(
                "say where to serve the card: give exactly one of " + options,
                remedy="e.g. contactless emulate --card visa --vpcd 127.0.0.1:35963",
            )
        [(mode, address)] = modes.items()
        request = _request(profile, address, faults, hang_after, once, connect_timeout)
        with _stop_on_signals(request.stop):
            outcome = SERVING_MODES[mode](request)
    except ContactlessError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"contactless emulate: {outcome}", err=True)


def _request(
    profile: str,
    address: str,
    fault_pairs: tuple[str, ...],
    hang_after: int | None,
    once: bool,
    connect_timeout: float | None,
) -> ServeRequest:
    from ..emulator.card import VirtualCard
    from ..emulator.faults import parse_faults
    from ..emulator.profiles import load_profile, load_profile_file

    faults = parse_faults(_fault_options(fault_pairs, hang_after))
    loaded = load_profile_file(profile) if profile.endswith(".toml") else load_profile(profile)
    return ServeRequest(
        card=VirtualCard(loaded, options=faults.card_options),
        profile=profile,
        address=address,
        faults=faults,
        once=once,
        connect_timeout=connect_timeout,
        stop=threading.Event(),
        say=lambda line: click.echo(f"contactless emulate: {line}", err=True),
    )
