"""The retrain_runs table and its Prometheus export."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from retrain.errors import UnknownAdapter
from retrain.run_metrics import RetrainRunsCollector
from retrain.runs import RunStore


@pytest.fixture
def runs(tmp_path: Path) -> RunStore:
    store = RunStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.create_all()
    return store


def test_start_finish_and_list(runs: RunStore) -> None:
    a = runs.start("support", "drift")
    assert runs.get(a).outcome == "running"
    rec = runs.finish(
        a,
        "rejected",
        "worse",
        candidate_version=2,
        candidate_score=0.4,
        serving_score=0.6,
        serving_version=1,
    )
    assert rec.outcome == "rejected" and rec.duration_s is not None and rec.duration_s >= 0
    again = runs.finish(a, "promoted", "late")  # finished once: no change
    assert again.outcome == "rejected"
    b = runs.start("support", "manual")
    runs.finish(b, "insufficient_data", "too little")
    assert [r.id for r in runs.recent("support")] == [b, a]
    assert runs.counts() == {("support", "rejected"): 1, ("support", "insufficient_data"): 1}
    with pytest.raises(ValueError):
        runs.finish(b, "weird", "x")  # type: ignore[arg-type]
    with pytest.raises(UnknownAdapter):
        runs.get("nope")


def test_metrics_export(runs: RunStore) -> None:
    a = runs.start("support", "drift")
    runs.finish(
        a,
        "promoted",
        "better",
        candidate_version=3,
        serving_version=2,
        candidate_score=0.9,
        serving_score=0.5,
    )
    b = runs.start("billing", "drift")
    runs.finish(b, "rejected", "worse", candidate_version=1, candidate_score=0.1, serving_score=0.2)
    reg = CollectorRegistry()
    reg.register(RetrainRunsCollector(runs))
    text = generate_latest(reg).decode()
    assert 'driftgate_retrain_runs_total{adapter="support",outcome="promoted"} 1.0' in text
    assert 'driftgate_retrain_runs_total{adapter="billing",outcome="rejected"} 1.0' in text
    assert (
        'driftgate_retrain_eval_score{adapter="support",role="candidate",version="3"} 0.9' in text
    )
    assert (
        'driftgate_retrain_eval_score{adapter="billing",role="serving",version="base"} 0.2' in text
    )
    assert 'driftgate_retrain_duration_seconds{adapter="support"}' in text


def test_every_outcome_of_a_known_adapter_is_exported_at_zero(runs: RunStore) -> None:
    """A run only started makes the adapter known: its failed count exists at 0 before the
    first failure, so an alert's increase() sees that failure."""
    started = runs.start("support", "drift")
    reg = CollectorRegistry()
    reg.register(RetrainRunsCollector(runs))
    text = generate_latest(reg).decode()
    for outcome in ("promoted", "rejected", "insufficient_data", "failed"):
        assert f'driftgate_retrain_runs_total{{adapter="support",outcome="{outcome}"}} 0.0' in text
    assert "driftgate_retrain_oldest_running_started_timestamp_seconds" in text
    assert 'oldest_running_started_timestamp_seconds{adapter="support"}' in text
    runs.finish(started, "failed", "oom")
    text = generate_latest(reg).decode()
    assert 'driftgate_retrain_runs_total{adapter="support",outcome="failed"} 1.0' in text
    assert 'oldest_running_started_timestamp_seconds{adapter="support"}' not in text
