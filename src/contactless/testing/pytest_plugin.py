"""pytest plugin for ``contactless``: readers as fixtures, recorded APDU traces as tests.

Installed through the ``pytest11`` entry point, so any project with ``contactless``
installed gets it. It imports the library only inside hooks and fixtures, so a run that
never uses it pays nothing (the way hypothesis' plugin does it).

Fixtures:

``sim_reader``
    A connected ``sim:`` reader. Choose the card with indirect parametrization
    (``@pytest.mark.parametrize("sim_reader", ["visa", "mastercard?t0=1"], indirect=True)``)
    or a marker (``@pytest.mark.sim_card("amex", faults="remove_after=3")``); default
    ``visa``.
``replay_reader``
    A reader replaying the test's trace, stored per test module as
    ``<test dir>/traces/<module>/<name>.jsonl`` (override the folder with an
    ``apdu_trace_dir`` fixture). ``@pytest.mark.apdu_trace("name", match="loose")`` names
    the trace (default: the test's name). Recorded exchanges the test did not use fail it,
    unless ``allow_unused=True``.

Options: ``--apdu-record-mode=none|once|all`` (default ``none``: a missing trace fails
the test; ``once``: record it when missing; ``all``: record every trace again) and
``--apdu-record-reader URI`` (the reader to record from; default the marker's
``reader=``, else ``sim:visa``). Recorded traces are redacted unless the marker says
``redact=False``.

Ini option ``apdu_trace_dirs``: every ``*.jsonl`` trace in these folders (when pytest
collects them) becomes a test that replays it through the EMV read and compares the
outcome with ``NAME.expected.json`` beside it (``--apdu-record-mode=once`` writes a
missing one, ``all`` rewrites them).

Failures show hex diffs with tag names: the plugin's ``pytest_assertrepr_compare``
explains ``==`` between traces, exchanges, commands, responses and tracer events, and
between two card reads (``CardData``) field by field. No explanation shows a full PAN,
track data or a cardholder name: they are masked as everywhere else (pytest's own
dataclass diff, which the hook replaces, would print them).
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode

import pytest

if TYPE_CHECKING:
    from ..transport.base import Transport

RECORD_MODES: Final = ("none", "once", "all")
DEFAULT_RECORD_READER: Final = "sim:visa"
DEFAULT_SIM_PROFILE: Final = "visa"
#: Seconds a recording waits for a card on the reader.
RECORD_CARD_WAIT: Final = 10.0

_reports_key = pytest.StashKey[dict[str, pytest.TestReport]]()
_replay_key = pytest.StashKey[tuple[Any, bool]]()


# --- options and markers --------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("contactless", "contactless APDU traces")
    group.addoption(
        "--apdu-record-mode",
        choices=RECORD_MODES,
        default=None,
        help="none (default): replay stored traces, a missing one fails; once: record "
        "missing traces (and expected outcomes); all: record them all again.",
    )
    group.addoption(
        "--apdu-record-reader",
        metavar="URI",
        default=None,
        help=f"Reader to record traces from (default: the marker's reader=, else "
        f"{DEFAULT_RECORD_READER}).",
    )
    parser.addini(
        "apdu_trace_dirs",
        type="paths",
        default=[],
        help="Folders whose *.jsonl APDU traces become tests (replayed and compared with "
        "NAME.expected.json).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "apdu_trace(name=None, *, match='strict', reader=None, redact=True, allow_unused=False):"
        " replay_reader replays this stored APDU trace (default name: the test's name).",
    )
    config.addinivalue_line(
        "markers",
        "sim_card(profile='visa', faults=''): the emulated card sim_reader puts on its reader.",
    )


def _record_mode(config: pytest.Config) -> str:
    mode: str | None = config.getoption("--apdu-record-mode")
    return mode or "none"


# --- failures and outcomes in reports ---------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Fixtures look at the call phase's outcome (a failed test records no trace).
    report = yield
    item.stash.setdefault(_reports_key, {})[report.when] = report
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    result = yield
    # The test passed: a strict replay must also have used every recorded exchange.
    replay = item.stash.get(_replay_key, None)
    if replay is not None:
        transport, allow_unused = replay
        if not allow_unused:
            from ..errors import TraceMismatch

            try:
                transport.check_complete()
            except TraceMismatch as error:
                pytest.fail(str(error), pytrace=False)
    return result


def pytest_assertrepr_compare(
    config: pytest.Config, op: str, left: object, right: object
) -> list[str] | None:
    if op != "==":
        return None
    # Cheap test first: this hook runs for every failed comparison of every project.
    if not (
        type(left).__module__.startswith("contactless.")
        and type(right).__module__.startswith("contactless.")
    ):
        return None
    from ..trace_view import explain

    # For the types explain() knows, its lines replace pytest's diff, which would print
    # raw bytes and field values (a PAN, track 2, the cardholder name).
    lines = explain(left, right)
    if lines is None:
        return None
    return [f"{type(left).__name__} == {type(right).__name__} failed:", *lines]


# --- sim_reader -----------------------------------------------------------------------------


def _sim_uri(spec: object) -> str:
    """``"visa"``, ``"visa?t0=1"``, ``"sim:visa"`` or ``{"profile": ..., "faults": ...}``."""
    if isinstance(spec, dict):
        profile = str(spec.get("profile", DEFAULT_SIM_PROFILE))
        faults = spec.get("faults", "")
        query = urlencode(faults) if isinstance(faults, dict) else str(faults)
        return f"sim:{profile}" + (f"?{query}" if query else "")
    text = str(spec)
    return text if text.startswith("sim:") else f"sim:{text}"


@pytest.fixture
def sim_reader(request: pytest.FixtureRequest) -> Iterator[Transport]:
    """A connected simulated reader with an emulated card (see the module docstring)."""
    from ..transport import open as open_transport

    spec: object = getattr(request, "param", None)
    if spec is None:
        marker = request.node.get_closest_marker("sim_card")
        if marker is not None:
            spec = {
                "profile": marker.args[0] if marker.args else marker.kwargs.get("profile"),
                "faults": marker.kwargs.get("faults", ""),
            }
            if spec["profile"] is None:
                spec["profile"] = DEFAULT_SIM_PROFILE
        else:
            spec = DEFAULT_SIM_PROFILE
    transport = open_transport(_sim_uri(spec))
    try:
        yield transport
    finally:
        transport.disconnect()


# --- replay_reader and the apdu_trace marker ---------------------------------------------------


@pytest.fixture
def apdu_trace_dir(request: pytest.FixtureRequest) -> Path:
    """Where this test module's traces live: ``<test dir>/traces/<module name>/``."""
    module = Path(str(request.node.path))
    return module.parent / "traces" / module.stem


def _trace_name(node: pytest.Item) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", node.name).strip("_")


@pytest.fixture
def replay_reader(request: pytest.FixtureRequest, apdu_trace_dir: Path) -> Iterator[Transport]:
    """A reader replaying this test's stored trace, or recording it (record modes)."""
    from ..trace import read_trace
    from ..transport.replay import ReplayTransport

    marker = request.node.get_closest_marker("apdu_trace")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    name = marker.args[0] if marker is not None and marker.args else _trace_name(request.node)
    path = apdu_trace_dir / f"{name}.jsonl"
    mode = _record_mode(request.config)
    if mode == "all" or (mode == "once" and not path.exists()):
        yield from _recording(request, path, options)
        return
    if not path.exists():
        pytest.fail(
            f"no APDU trace {path} for this test (--apdu-record-mode=none); record it with "
            "--apdu-record-mode=once",
            pytrace=False,
        )
    # Left-over entries are checked after a passing test (pytest_runtest_call), where
    # allow_unused is honoured, not when the fixture closes the reader.
    transport = ReplayTransport(
        f"replay:{path}",
        trace=read_trace(path),
        match=options.get("match", "strict"),
        check_unused=False,
    )
    transport.connect()
    request.node.stash[_replay_key] = (transport, bool(options.get("allow_unused", False)))
    try:
        yield transport
    finally:
        transport.disconnect()


@pytest.fixture(autouse=True)
def _apdu_trace_marker(request: pytest.FixtureRequest) -> None:
    """A test marked ``apdu_trace`` replays its trace even if it does not ask for the
    reader itself (so a missing trace still fails it)."""
    if "replay_reader" not in request.fixturenames and request.node.get_closest_marker(
        "apdu_trace"
    ):
        request.getfixturevalue("replay_reader")


def _recording(
    request: pytest.FixtureRequest, path: Path, options: dict[str, Any]
) -> Iterator[Transport]:
    from ..trace import Recorder, write_trace
    from ..trace_redact import redact
    from ..transport import open as open_transport

    uri = (
        request.config.getoption("--apdu-record-reader")
        or options.get("reader")
        or DEFAULT_RECORD_READER
    )
    transport = open_transport(uri)
    recorder = Recorder()
    try:
        transport.wait_for_card(RECORD_CARD_WAIT)
        recorder.attach(transport)
        yield transport
    finally:
        recorder.detach()
        transport.disconnect()
    report = request.node.stash.get(_reports_key, {}).get("call")
    if report is None or not report.passed or not recorder.entries:
        return  # a failed test leaves no trace behind to replay its failure
    trace = recorder.trace(note=f"recorded by pytest for {request.node.nodeid}", redacted=False)
    if options.get("redact", True):
        trace, _ = redact(trace)
    # The per-module trace folder is the plugin's own layout: it creates it (write_trace
    # never creates folders).
    path.parent.mkdir(parents=True, exist_ok=True)
    write_trace(trace, path)


# --- traces as test items (apdu_trace_dirs) --------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != ".jsonl":
        return None
    folders: list[Path] = parent.config.getini("apdu_trace_dirs")
    if not any(file_path.is_relative_to(folder) for folder in folders):
        return None
    return TraceFile.from_parent(parent, path=file_path)


class TraceFile(pytest.File):
    """A trace file under ``apdu_trace_dirs``: one test that replays it."""

    def collect(self) -> Iterator[pytest.Item]:
        yield TraceItem.from_parent(self, name="replay")


class TraceOutcomeError(Exception):
    """A replayed trace gave another outcome than the stored one."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class TraceItem(pytest.Item):
    """Replays one trace through the EMV read and compares with ``NAME.expected.json``."""

    def runtest(self) -> None:
        from ..errors import ContactlessError
        from ..testing import (
            expected_path,
            outcome,
            outcome_differences,
            read_expected,
            write_expected,
        )
        from ..trace import read_trace

        try:
            actual = outcome(read_trace(self.path))
        except ContactlessError as error:  # an unusable trace file
            raise TraceOutcomeError([f"cannot replay {self.path.name}: {error}"]) from None
        target = expected_path(self.path)
        mode = _record_mode(self.config)
        if mode == "all" or (mode == "once" and not target.exists()):
            write_expected(target, actual)
            return
        try:
            expected = read_expected(target)
        except ContactlessError as error:
            raise TraceOutcomeError([str(error)]) from None
        differences = outcome_differences(actual, expected)
        if differences:
            lines = [f"replaying {self.path.name} no longer gives {target.name}:"]
            lines += [f"  {line}" for line in differences[:40]]
            if len(differences) > 40:
                lines.append(f"  ... and {len(differences) - 40} more")
            failure = actual.get("error")
            if failure:
                lines += ["", f"the replay failed with {failure['type']}:", failure["message"]]
            raise TraceOutcomeError(lines)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        if isinstance(excinfo.value, TraceOutcomeError):
            return "\n".join(excinfo.value.lines)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"replay {self.path.name}"
