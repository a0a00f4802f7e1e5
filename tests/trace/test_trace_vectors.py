"""CI replays every recorded vector in vectors/traces/ and compares the outcome with the
stored NAME.expected.json (recorded through pcscd + vpcd by tools/record_vectors.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from trace_testkit import PROFILES, VECTORS

from contactless.testing import expected_path, outcome, outcome_differences, read_expected
from contactless.trace import Exchange, TraceEvent, read_trace

TRACES = sorted(VECTORS.glob("*.jsonl"))


@pytest.mark.parametrize("path", TRACES, ids=[p.stem for p in TRACES])
def test_every_vector_replays_to_its_expected_outcome(path: Path) -> None:
    expected = read_expected(expected_path(path))
    actual = outcome(read_trace(path))
    assert outcome_differences(actual, expected) == []


def test_the_corpus_covers_profiles_transactions_and_faults() -> None:
    assert len(TRACES) >= 12
    traces = {path.stem: read_trace(path) for path in TRACES}
    outcomes = {name: read_expected(expected_path(VECTORS / f"{name}.jsonl")) for name in traces}
    brands = {o["result"]["brand"] for o in outcomes.values() if "result" in o}
    assert brands == set(PROFILES)
    assert sum(1 for t in traces.values() if t.header.flow == "transaction") >= 4
    assert {o["result"].get("cryptogram_type") for o in outcomes.values() if "result" in o} >= {
        "ARQC",
        "AAC",
    }
    errors = {o["error"]["type"] for o in outcomes.values() if "error" in o}
    assert {"CardRemoved", "StatusWordError", "TlvError", "TransportTimeout"} <= errors
    status_words = {
        e.response[-2]
        for t in traces.values()
        for e in t.entries
        if isinstance(e, Exchange) and len(e.response) >= 2
    }
    assert {0x61, 0x6C} <= status_words  # T=0: more data, and wrong Le
    kinds = {e.kind for t in traces.values() for e in t.entries if isinstance(e, TraceEvent)}
    assert {"card_removed", "timeout"} <= kinds
    for name, trace in traces.items():
        assert trace.header.redacted is True, name
        assert trace.header.terminal and "unpredictable_number" in trace.header.terminal, name
        # Recorded through the real PC/SC stack (pcscd + vpcd), not the in-process sim.
        assert (trace.header.transport or "").startswith("pcsc:"), name
    expected_files = sorted(VECTORS.glob("*.expected.json"))
    assert [p.name.removesuffix(".expected.json") for p in expected_files] == sorted(traces)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("flow", ["read", "transaction"])
def test_every_profile_has_a_clean_read_and_transaction_vector(profile: str, flow: str) -> None:
    # The corpus holds, for each emulated profile, a fault-free read and transaction.
    path = VECTORS / f"{profile}-{flow}.jsonl"
    assert path.exists(), f"missing vector {path.name} (tools/record_vectors.py {path.stem})"
    assert read_trace(path).header.flow == flow
    expected = read_expected(expected_path(path))
    assert expected.get("result", {}).get("brand") == profile
    if flow == "transaction":
        assert expected["result"].get("cryptogram_type") in {"ARQC", "TC", "AAC"}
