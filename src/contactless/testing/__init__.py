"""Testing with recorded traces: replay one through the library's own read path and get
a comparable outcome. The pytest plugin (:mod:`contactless.testing.pytest_plugin`), the
vector tests, ``tools/record_vectors.py`` and ``tools/bench_replay.py`` all use these.

>>> outcome(read_trace("vectors/traces/visa-read.jsonl"))["result"]["brand"]  # doctest: +SKIP
'visa'

An outcome is JSON: ``{"result": CardData.to_json(include_tlvs=True) without "reader"}``
(masked) when the read succeeds, ``{"error": {"type": ..., "message": ...}}`` when it
fails. Stored beside a trace as ``NAME.expected.json``, it is what CI compares with.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..errors import ContactlessError

if TYPE_CHECKING:
    from ..emv.card import CardData
    from ..emv.terminal import TerminalConfig
    from ..trace import Trace

__all__ = [
    "EXPECTED_SUFFIX",
    "expected_path",
    "is_transaction",
    "outcome",
    "outcome_differences",
    "read_expected",
    "replay",
    "replay_config",
    "write_expected",
]

#: The expected outcome of ``NAME.jsonl`` is stored in ``NAME.expected.json``.
EXPECTED_SUFFIX: Final = ".expected.json"
#: Seconds a replayed exchange may take (nothing blocks: this is only a safety net).
REPLAY_TIMEOUT: Final = 5.0
_GENERATE_AC = 0xAE


def expected_path(trace_path: str | os.PathLike[str]) -> Path:
    """Where the expected outcome of the trace at ``trace_path`` is stored."""
    path = Path(trace_path)
    return path.with_name(path.name.removesuffix(".jsonl") + EXPECTED_SUFFIX)


def is_transaction(trace: Trace) -> bool:
    """Whether the trace recorded a transaction: its header's ``flow``, else whether it
    holds a GENERATE AC (a qVSDC card computes its cryptogram in GET PROCESSING OPTIONS,
    where a read and a transaction look the same)."""
    if trace.header.flow is not None:
        return trace.header.flow == "transaction"
    return any(
        entry.command is not None and entry.command[1:2] == bytes((_GENERATE_AC,))
        for entry in trace.entries
    )


def replay_config(trace: Trace, **overrides: Any) -> TerminalConfig:
    """The terminal settings the trace was recorded with (pinned clock and unpredictable
    number), with ``overrides`` (field names, e.g. ``amount=250``)."""
    import dataclasses

    from ..trace import terminal_from_header

    config = terminal_from_header(trace.header.terminal, source=trace.name)
    return dataclasses.replace(config, **overrides) if overrides else config


def replay(
    trace: Trace,
    *,
    match: str = "strict",
    config: TerminalConfig | None = None,
    transaction: bool | None = None,
    check_complete: bool = True,
) -> CardData:
    """Run the EMV read (a transaction when the trace recorded one) against ``trace``
    through :func:`contactless.read_card`, as ``contactless read`` does, and return the
    card data. ``config`` defaults to the recorded terminal settings. With
    ``check_complete``, recorded exchanges left over after the read are a
    :class:`~contactless.errors.TraceMismatch` (the flow stopped early).
    """
    from ..reader import read_card

    config = config if config is not None else replay_config(trace)
    transaction = is_transaction(trace) if transaction is None else transaction
    # The transport checks for unused entries when read_card closes it, and learns the
    # terminal's settings from read_card: `contactless read --reader replay:` does the same.
    data: CardData = read_card(
        f"replay:{trace.name}",
        config=config,
        transaction=transaction,
        wait=REPLAY_TIMEOUT,
        timeout=REPLAY_TIMEOUT,
        trace=trace,
        match=match,
        check_unused=check_complete,
    )
    return data


def _result_json(data: CardData) -> dict[str, Any]:
    result = data.to_json(include_tlvs=True)
    result.pop("reader", None)  # where it was replayed from, not what the card said
    return result


def outcome(trace: Trace, *, match: str = "strict", **options: Any) -> dict[str, Any]:
    """Replay ``trace`` (see :func:`replay`) and return what happened as JSON: the masked
    card data under ``"result"``, or the error under ``"error"``."""
    try:
        data = replay(trace, match=match, **options)
    except ContactlessError as error:
        return {"error": {"type": type(error).__name__, "message": error.message}}
    return {"result": _result_json(data)}


def read_expected(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The expected outcome stored at ``path``; a missing or broken file is a
    :class:`~contactless.errors.ConfigError`."""
    from ..errors import ConfigError

    name = os.fspath(path)
    try:
        document = json.loads(Path(name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no expected outcome {name}",
            remedy="create it with pytest --apdu-record-mode=once (or tools/record_vectors.py)",
        ) from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"expected outcome {name} is unreadable: {error}") from None
    if not isinstance(document, dict) or not ({"result", "error"} & set(document)):
        raise ConfigError(f"expected outcome {name} has neither 'result' nor 'error'")
    return document


def write_expected(path: str | os.PathLike[str], result: Mapping[str, Any]) -> None:
    """Store an expected outcome (sorted keys, stable for review)."""
    Path(path).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def outcome_differences(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Readable differences between two outcomes, one line per differing leaf, by JSON
    path (``result.responses[3].tlvs[0]...``); empty when equal."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        lines: list[str] = []
        for key in sorted(set(actual) | set(expected), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in expected:
                lines.append(f"{where}: unexpected {_short(actual[key])}")
            elif key not in actual:
                lines.append(f"{where}: missing, expected {_short(expected[key])}")
            else:
                lines += outcome_differences(actual[key], expected[key], where)
        return lines
    if isinstance(actual, list) and isinstance(expected, list):
        lines = []
        for index, (a, b) in enumerate(zip(actual, expected, strict=False)):
            lines += outcome_differences(a, b, f"{path}[{index}{_tag_label(b)}]")
        if len(actual) != len(expected):
            lines.append(f"{path}: {len(actual)} items, expected {len(expected)}")
        return lines
    if actual != expected:
        return [f"{path}: got {_short(actual)}, expected {_short(expected)}"]
    return []


def _tag_label(item: Any) -> str:
    """``:9F38 Processing Options Data Object List (PDOL)`` for a TLV entry of an outcome."""
    if not isinstance(item, dict) or not isinstance(item.get("tag"), str):
        return ""
    from ..tlv.tags import name_of

    try:
        return f":{item['tag']} {name_of(item['tag'])}"
    except ContactlessError:
        return f":{item['tag']}"


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."
