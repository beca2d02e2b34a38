"""After a rejection the job trains again, but only on fresher data (``retrain.attempts``).

Whole runs on the tiny real model: it answers nothing right before or after training, so
the gate rejects every candidate, which is what these tests need."""

from __future__ import annotations

from pathlib import Path

from retrain.attempts import retrain_with_retries
from retrain.base_model import LoadedBase
from retrain.dataset import TrafficRecord
from retrain.runs import RunRecord
from tests.retrain.test_job import context, tiny, traffic

__all__ = ["tiny"]  # the module-scoped model fixture, shared with test_job


class GrowingTraffic:
    """Labelled traffic that grows by ``step`` records at every read, as a live app's does."""

    def __init__(self, start: int, step: int) -> None:
        self.n, self.step = start, step

    def __call__(self, _adapter: str, opted: object) -> list[TrafficRecord]:
        records = traffic(self.n)
        self.n += self.step
        return records


def test_a_rejected_run_is_retried_once_fresher_data_arrived(
    tmp_path: Path, tiny: LoadedBase
) -> None:
    ctx, seen = context(tmp_path, tiny, [], max_attempts=2, retry_new_examples=5, data_wait_s=30)
    ctx.source = GrowingTraffic(start=14, step=3)
    ctx.drift_start = lambda _a: 1000.0
    printed: list[RunRecord] = []
    runs = retrain_with_retries(ctx, "support", "drift: test", on_run=printed.append, poll_s=0)
    assert [r.outcome for r in runs] == ["rejected", "rejected"]
    assert printed == runs
    first, second = (r.details or {} for r in runs)
    assert second["drift_examples"] >= first["drift_examples"] + 5, (first, second)
    assert runs[1].reason == f"drift: test (attempt 2: run {runs[0].id} was rejected)"
    assert runs[1].dataset_hash != runs[0].dataset_hash
    assert [c.version for c in seen["reject"]] == [1, 2]


def test_no_retry_without_fresher_data(tmp_path: Path, tiny: LoadedBase) -> None:
    ctx, _ = context(tmp_path, tiny, traffic(14), max_attempts=3, data_wait_s=0.05)
    ctx.drift_start = lambda _a: 1000.0
    runs = retrain_with_retries(ctx, "support", "drift", poll_s=0.01)
    assert [r.outcome for r in runs] == ["rejected"]


def test_no_retry_past_max_attempts_or_without_a_drift_window(
    tmp_path: Path, tiny: LoadedBase
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ctx, _ = context(tmp_path / "a", tiny, [], max_attempts=1, retry_new_examples=1)
    ctx.source = GrowingTraffic(start=14, step=10)
    ctx.drift_start = lambda _a: 1000.0
    assert len(retrain_with_retries(ctx, "support", "drift", poll_s=0)) == 1
    ctx, _ = context(tmp_path / "b", tiny, [], max_attempts=3, retry_new_examples=1)
    ctx.source = GrowingTraffic(start=14, step=10)
    runs = retrain_with_retries(ctx, "support", "drift", poll_s=0)
    assert [r.outcome for r in runs] == ["rejected"] and runs[0].details["drift_examples"] is None
