"""What the checks share during one self-test run: the options, the terminal's settings,
the baseline, the open reader, and what earlier checks measured."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import Distribution, distribution
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ConfigError, ContactlessError
from .baseline import Baseline, BaselineDamaged, load_baseline
from .settings import SelftestSettings, TerminalSetup, build_terminal, load_setup

if TYPE_CHECKING:
    from ..emv.card import CardData
    from ..emv.terminal import TerminalConfig
    from ..transport.base import ReaderIdentity, Transport
    from .model import CheckResult

__all__ = [
    "DISTRIBUTION",
    "Context",
    "LinkStats",
    "NullProgress",
    "Progress",
    "SelftestOptions",
    "percentile",
]

#: The distribution whose installed files the self-test verifies.
DISTRIBUTION = "contactless"

#: Opens a reader URI with a default exchange timeout (``transport.open`` by default).
Opener = Callable[..., "Transport"]


class Progress(Protocol):
    """Receives progress while the self-test runs (the CLI draws a progress bar)."""

    def check_started(self, check_id: str, index: int, total: int) -> None:
        """Check number ``index`` (0-based) of ``total`` starts."""

    def check_finished(self, result: CheckResult) -> None:
        """A check ended with ``result``."""

    def loop_progress(self, check_id: str, done: int, total: int, stats: Mapping[str, Any]) -> None:
        """A looping check (link quality) finished ``done`` of ``total`` rounds."""


class NullProgress:
    """Progress that goes nowhere."""

    def check_started(self, check_id: str, index: int, total: int) -> None:
        pass

    def check_finished(self, result: CheckResult) -> None:
        pass

    def loop_progress(self, check_id: str, done: int, total: int, stats: Mapping[str, Any]) -> None:
        pass


@dataclass(frozen=True)
class SelftestOptions:
    """How to run the self-test (the CLI options, plus hooks for tests and embedding).

    ``reader``: reader URI (default: the baseline's, else the first reader found);
    ``baseline``/``config``: file paths (the config defaults to the baseline's);
    ``host``/``tls``/``loops``: override the config's ``[selftest]`` values;
    ``distribution``: the installed package to verify (default: ``contactless``);
    ``opener``: opens a reader URI (default :func:`contactless.transport.open`);
    ``clock``: the current time (expiry, marker age).
    """

    reader: str | None = None
    baseline: str | os.PathLike[str] | None = None
    config: str | os.PathLike[str] | None = None
    host: str | None = None
    tls: bool | None = None
    loops: int | None = None
    distribution: Distribution | None = None
    opener: Opener | None = None
    clock: Callable[[], datetime] = datetime.now
    progress: Progress | None = None


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile of ``values`` (``share`` 0-1), ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(share * len(ordered)), 1)
    return ordered[rank - 1]


@dataclass(frozen=True)
class LinkStats:
    """What the link-quality check measured."""

    planned: int
    completed: int
    first_try: int
    succeeded: int
    attempts: int
    failures: Mapping[str, int] = field(default_factory=dict)
    latencies_ms: tuple[float, ...] = ()
    stopped: str | None = None  # "dead", "budget", "card_lost" or None (ran them all)

    @property
    def first_try_rate(self) -> float:
        return self.first_try / self.completed if self.completed else 0.0

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.completed if self.completed else 0.0

    @property
    def retries(self) -> int:
        return self.attempts - self.completed

    def p(self, share: float) -> float | None:
        """Latency percentile in ms (``share`` 0-1) over the successful attempts."""
        return percentile(list(self.latencies_ms), share)


class Context:
    """Shared state of one run. Checks read the options and earlier findings from it and
    record what later checks (and the baseline) need."""

    def __init__(
        self,
        options: SelftestOptions,
        *,
        setup: TerminalSetup,
        setup_error: ConfigError | None,
        terminal: TerminalConfig | None,
        config_path: str | None,
        baseline: Baseline | None,
        baseline_damage: BaselineDamaged | None,
    ) -> None:
        self.options = options
        self.setup = setup
        self.setup_error = setup_error
        self.config_path = config_path
        self.baseline = baseline
        self.baseline_damage = baseline_damage
        self.settings = _with_overrides(setup.settings, options)
        self._terminal = terminal
        self.progress: Progress = options.progress or NullProgress()
        self.reader_uri: str | None = options.reader or (
            baseline.reader.uri if baseline is not None and baseline.reader is not None else None
        )
        self.reader: Transport | None = None
        #: A check gave up on the reader (deadline passed mid-call): nobody may touch it.
        self.reader_unusable = False
        self.identity: ReaderIdentity | None = None
        self.firmware: str | None = None
        self.features: tuple[str, ...] = ()
        self.card_data: CardData | None = None
        self.link: LinkStats | None = None
        self.backends: dict[str, bool] = {}
        self.results: dict[str, CheckResult] = {}

    @classmethod
    def create(cls, options: SelftestOptions) -> Context:
        """Read the baseline and the terminal config named by ``options``.

        A missing baseline file raises :class:`~contactless.errors.ConfigError` (the
        self-test cannot run as asked); a damaged one, or a config that cannot be used,
        is kept as a finding for the checks to report.
        """
        baseline: Baseline | None = None
        damage: BaselineDamaged | None = None
        if options.baseline is not None:
            try:
                baseline = load_baseline(options.baseline)
            except BaselineDamaged as error:
                damage = error
        config_path: str | None = None
        if options.config is not None:
            config_path = os.fspath(options.config)
        elif baseline is not None:
            config_path = baseline.config.path
        setup_error: ConfigError | None = None
        try:
            setup = load_setup(config_path)
        except ConfigError as error:
            setup_error = error
            setup = load_setup(None)
        terminal = None
        if setup_error is None:
            try:
                terminal = build_terminal(setup)
            except ConfigError as error:
                setup_error = error
            except ImportError:
                # The EMV code itself is broken (a half-done upgrade): the checks that need
                # the terminal settings report it; the others still run.
                pass
        return cls(
            options,
            setup=setup,
            setup_error=setup_error,
            terminal=terminal,
            config_path=config_path,
            baseline=baseline,
            baseline_damage=damage,
        )

    # --- services for the checks ---------------------------------------------------------

    @property
    def terminal(self) -> TerminalConfig:
        """The terminal's EMV settings: the config's, or the defaults when it is unusable.
        Raises ImportError when the EMV code cannot be loaded."""
        if self._terminal is None:
            usable = self.setup if self.setup_error is None else load_setup(None)
            self._terminal = build_terminal(usable)
        return self._terminal

    def now(self) -> datetime:
        """The current time, from the options' clock."""
        return self.options.clock()

    def distribution(self) -> Distribution:
        """The installed package to verify; raises PackageNotFoundError when there is none."""
        if self.options.distribution is not None:
            return self.options.distribution
        return distribution(DISTRIBUTION)

    @property
    def reader_scheme(self) -> str | None:
        """The scheme of the reader URI (``"pcsc"``...), or None when none is known yet."""
        if self.reader_uri is None:
            return None
        scheme, colon, _ = self.reader_uri.partition(":")
        return scheme.strip().lower() if colon else None

    def open_reader(self, uri: str) -> Transport:
        """Open ``uri`` with the self-test's exchange timeout."""
        if self.options.opener is not None:
            return self.options.opener(uri, timeout=self.settings.exchange_timeout)
        from .. import transport

        return transport.open(uri, timeout=self.settings.exchange_timeout)

    def close(self) -> None:
        """Release the reader (unless a stuck check still holds it)."""
        reader, self.reader = self.reader, None
        if reader is None or self.reader_unusable:
            return
        # The results are in; a reader that fails to close changes none of them.
        with contextlib.suppress(ContactlessError):
            reader.disconnect()


def _with_overrides(settings: SelftestSettings, options: SelftestOptions) -> SelftestSettings:
    changes: dict[str, Any] = {}
    if options.host is not None:
        changes["host"] = options.host
    if options.tls is not None:
        changes["tls"] = options.tls
    if options.loops is not None:
        changes["loops"] = options.loops
    return dataclasses.replace(settings, **changes) if changes else settings
