"""The self-test's own settings (the ``[selftest]`` table of the terminal config) and the
terminal configuration it checks.

The terminal config file (``--config terminal.toml``, see docs/terminal-config.md) may
hold a ``[selftest]`` table; everything else in it is the terminal's EMV settings::

    country = 250
    currency = 978

    [selftest]
    host = "acquirer.example.com:443"
    tls = true
    supported_firmware = ["ACR122U2*"]
    reader_model = "ACS ACR122U"
    accelerator = "required"

Every key is optional; :class:`SelftestSettings` lists them with their defaults.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..hexutil import to_hex

if TYPE_CHECKING:
    from ..emv.terminal import TerminalConfig

__all__ = [
    "DEFAULT_UPGRADE_MARKERS",
    "ConfigFileMissing",
    "SelftestSettings",
    "TerminalSetup",
    "build_terminal",
    "config_hash",
    "config_values",
    "load_setup",
    "parse_host",
    "parse_settings",
]

#: Files an upgrade tool creates before it starts and deletes when it has finished; one
#: still present means the upgrade was interrupted (docs/selftest.md).
DEFAULT_UPGRADE_MARKERS: tuple[str, ...] = (
    "/var/lib/contactless/upgrade-in-progress",
    str(Path(sys.prefix) / "contactless-upgrade-in-progress"),
)


class ConfigFileMissing(ConfigError):
    """The terminal config file named is not there."""


@dataclass(frozen=True)
class SelftestSettings:
    """Thresholds and targets of the self-test (the ``[selftest]`` table)."""

    #: Round trips (SELECT PPSE) of the link-quality check.
    loops: int = 50
    #: Seconds one exchange of the link check may take.
    exchange_timeout: float = 1.0
    #: Retries of a failed round trip (a reader retransmits, so a terminal does too).
    link_retries: int = 2
    #: Consecutive failures, with no success at all yet, after which the link is dead.
    link_abort_after: int = 3
    #: Seconds the whole link check may take; it stops early and reports what it saw.
    link_budget: float = 20.0
    #: Share of round trips that must succeed at the first attempt to pass ...
    link_pass_rate: float = 0.98
    #: ... below which (but at or above link_warn_rate) the link is only unsteady (warn) ...
    link_warn_rate: float = 0.90
    #: ... and the share that must succeed at all, else the link is failing.
    link_fail_rate: float = 0.50
    #: p95 latency above this (ms) is slow.
    latency_warn_ms: float = 200.0
    #: p99 latency above this (ms), and five times the median, is a spike.
    latency_spike_ms: float = 500.0
    #: p95 more than this many times the baseline's (and margin ms above it) is slower.
    baseline_latency_factor: float = 3.0
    baseline_latency_margin_ms: float = 20.0
    #: Seconds to wait for the test card.
    card_wait: float = 5.0
    #: Seconds one command of the test transaction may take.
    transaction_timeout: float = 5.0
    #: Retransmissions allowed per command of the test transaction.
    transaction_retries: int = 3
    #: Amount of the test transaction, in minor units.
    test_amount: int = 100
    #: A card expiring within this many days gets a warning.
    expiry_warn_days: int = 30
    #: The acquirer's host, "HOST:PORT" (None: the network check is skipped).
    host: str | None = None
    #: Whether to do a TLS handshake with the host after connecting.
    tls: bool = False
    #: CA bundle (PEM) to trust for the TLS check instead of the system's.
    tls_ca: str | None = None
    #: Seconds allowed to connect (and again for the TLS handshake).
    host_timeout: float = 5.0
    #: Connecting (plus handshake) slower than this (ms) is a warning.
    host_slow_ms: float = 1000.0
    #: "required": the C TLV accelerator must be in use; "optional": either will do.
    accelerator: str = "optional"
    #: Reader backends this terminal needs (pcsc, nfc...); the reader's own is always needed.
    backends: tuple[str, ...] = ()
    #: Reader firmware versions this software supports (shell patterns; empty: any).
    supported_firmware: tuple[str, ...] = ()
    #: Reader drivers this software supports (shell patterns; empty: any).
    supported_drivers: tuple[str, ...] = ()
    #: Reader model, when its name does not say (chooses the firmware command).
    reader_model: str | None = None
    #: Upgrade marker files (shell patterns); see DEFAULT_UPGRADE_MARKERS.
    upgrade_markers: tuple[str, ...] = DEFAULT_UPGRADE_MARKERS
    #: Seconds any one check may take before the self-test gives up on it.
    check_deadline: float = 60.0


def _integer(low: int, high: int) -> Callable[[object], int]:
    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"an integer from {low} to {high}")
        return value

    return convert


def _number(low: float, high: float) -> Callable[[object], float]:
    def convert(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"a number from {low:g} to {high:g}")
        if not low <= float(value) <= high:
            raise ValueError(f"a number from {low:g} to {high:g}")
        return float(value)

    return convert


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a non-empty string")
    return value


def parse_host(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` or ``"[IPv6]:PORT"`` -> (host, port); raises
    :class:`~contactless.errors.ConfigError` for anything else."""
    host, colon, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"host {text!r} is not HOST:PORT (a port from 1 to 65535)")
    return host, int(port)


def _host(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError('"HOST:PORT"')
    try:
        parse_host(value)
    except ConfigError:
        raise ValueError('"HOST:PORT" with a port from 1 to 65535') from None
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _texts(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("a list of strings")
    return tuple(value)


def _choice(*allowed: str) -> Callable[[object], str]:
    def convert(value: object) -> str:
        if value not in allowed:
            raise ValueError(" or ".join(repr(a) for a in allowed))
        return str(value)

    return convert


#: Each key of the [selftest] table and how its value is checked.
_PARSERS: Mapping[str, Callable[[object], Any]] = {
    "loops": _integer(1, 100_000),
    "exchange_timeout": _number(0.01, 60),
    "link_retries": _integer(0, 10),
    "link_abort_after": _integer(1, 1000),
    "link_budget": _number(0.1, 3600),
    "link_pass_rate": _number(0, 1),
    "link_warn_rate": _number(0, 1),
    "link_fail_rate": _number(0, 1),
    "latency_warn_ms": _number(0, 600_000),
    "latency_spike_ms": _number(0, 600_000),
    "baseline_latency_factor": _number(1, 1000),
    "baseline_latency_margin_ms": _number(0, 600_000),
    "card_wait": _number(0.01, 3600),
    "transaction_timeout": _number(0.01, 600),
    "transaction_retries": _integer(0, 10),
    "test_amount": _integer(0, 999_999_999_999),
    "expiry_warn_days": _integer(0, 3650),
    "host": _host,
    "tls": _flag,
    "tls_ca": _text,
    "host_timeout": _number(0.01, 600),
    "host_slow_ms": _number(0, 600_000),
    "accelerator": _choice("optional", "required"),
    "backends": _texts,
    "supported_firmware": _texts,
    "supported_drivers": _texts,
    "reader_model": _text,
    "upgrade_markers": _texts,
    "check_deadline": _number(1, 3600),
}


def parse_settings(table: object, *, source: str = "[selftest]") -> SelftestSettings:
    """Settings from a ``[selftest]`` table; an unknown key or a bad value raises
    :class:`~contactless.errors.ConfigError` naming the key."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: expected a table of settings")
    values: dict[str, Any] = {}
    for key, value in table.items():
        parser = _PARSERS.get(key)
        if parser is None:
            valid = ", ".join(sorted(_PARSERS))
            raise ConfigError(f"{source}: unknown key {key!r} (valid keys: {valid})")
        try:
            values[key] = parser(value)
        except ValueError as error:
            raise ConfigError(f"{source}: key {key!r} must be {error}, got {value!r}") from None
    settings = SelftestSettings(**values)
    if not settings.link_fail_rate <= settings.link_warn_rate <= settings.link_pass_rate:
        raise ConfigError(f"{source}: need link_fail_rate <= link_warn_rate <= link_pass_rate")
    return settings


@dataclass(frozen=True)
class TerminalSetup:
    """A terminal config file, read: the self-test settings, the rest of the document (the
    terminal's EMV settings, turned into a TerminalConfig by :func:`build_terminal`), and
    where they came from (``path`` None: built-in defaults)."""

    settings: SelftestSettings
    document: Mapping[str, Any]
    path: str | None = None
    file_sha256: str | None = None


def load_setup(path: str | None) -> TerminalSetup:
    """Read the terminal config at ``path`` (None: the defaults) and its ``[selftest]``
    table.

    Raises :class:`~contactless.errors.ConfigError` naming the file (and the key) for a
    missing (:class:`ConfigFileMissing`), unreadable or invalid file.
    """
    if path is None:
        return TerminalSetup(SelftestSettings(), {})
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigFileMissing(f"terminal config {path}: file not found") from None
    except OSError as error:
        raise ConfigError(f"terminal config {path}: cannot read: {error.strerror}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"terminal config {path}: not valid TOML: {error}") from None
    settings = parse_settings(
        document.pop("selftest", {}), source=f"terminal config {path}: [selftest]"
    )
    return TerminalSetup(settings, document, path, to_hex(hashlib.sha256(raw).digest()))


def build_terminal(setup: TerminalSetup) -> TerminalConfig:
    """The terminal's EMV settings from ``setup``: ConfigError naming the file and the key
    for a bad value.

    The EMV code is imported here, not when this module loads, so that a self-test on an
    installation whose EMV modules an upgrade broke still runs (and says so).
    """
    from ..emv.terminal import TerminalConfig

    if setup.path is None:
        return TerminalConfig()
    return TerminalConfig.from_mapping(setup.document, source=str(setup.path))


# --- comparable values of a terminal config ---------------------------------------------------

#: TerminalConfig fields that are not settings (sources of variation, provenance).
_NOT_SETTINGS = frozenset({"clock", "rng", "source"})


def _json_value(value: object) -> Any:
    from ..emv.terminal import SupportedAid

    if isinstance(value, bytes):
        return to_hex(value)
    if isinstance(value, SupportedAid):
        return {"aid": to_hex(value.aid), "partial": value.partial, "label": value.label}
    if isinstance(value, tuple | list):
        return [_json_value(item) for item in value]
    if isinstance(value, Mapping):
        return {_json_key(key): _json_value(item) for key, item in sorted(value.items())}
    return value


def _json_key(key: object) -> str:
    return to_hex(key) if isinstance(key, bytes) else str(key)


def config_values(terminal: TerminalConfig) -> dict[str, Any]:
    """The terminal's settings as JSON values (bytes as hex), one entry per setting: what a
    baseline records and compares."""
    return {
        item.name: _json_value(getattr(terminal, item.name))
        for item in dataclasses.fields(terminal)
        if item.name not in _NOT_SETTINGS
    }


def config_hash(values: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``values`` in canonical JSON: equal settings, equal hash."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return to_hex(hashlib.sha256(canonical.encode("utf-8")).digest())
