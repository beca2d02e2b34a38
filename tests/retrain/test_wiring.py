"""The drifted window a retrain run reads from the drift store (``retrain.wiring``)."""

from __future__ import annotations

import time
from pathlib import Path

from drift.store import DriftStore
from retrain.wiring import drift_start


def _alarm(store: DriftStore, ts: float, signal: str, version: int = 1) -> None:
    store.record_alarm(
        {
            "ts": ts,
            "adapter": "support",
            "version": version,
            "signal": signal,
            "detector": "cusum",
            "confirmed": False,
            "score": 12.0,
            "p_value": None,
            "detail": "test",
        }
    )


def _trigger(store: DriftStore, outcome: str = "started", version: int = 1) -> None:
    store.record_trigger(
        adapter="support",
        version=version,
        reason="test",
        mode="subprocess",
        outcome=outcome,
        detail="test",
    )


def test_window_starts_at_first_alarm_of_a_retrainable_signal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = DriftStore.from_url(url)
    store.create_all()
    now = time.time()
    _alarm(store, now - 300, "latency_ms")  # load moved before the shift: not the task
    _alarm(store, now - 200, "feedback_score", version=2)  # another version
    _alarm(store, now - 60, "feedback_score")
    _alarm(store, now - 30, "completion_tokens")
    _trigger(store)
    store.close()
    assert drift_start(url, "support") == now - 60
    # Naming the signals explicitly: only those count.
    assert drift_start(url, "support", signals=["completion_tokens"]) == now - 30
    assert drift_start(url, "support", signals=["latency_ms"]) == now - 300


def test_window_is_bounded_by_the_previous_started_trigger(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = DriftStore.from_url(url)
    store.create_all()
    _alarm(store, time.time() - 100, "feedback_score")  # drift the first retrain handled
    _trigger(store)
    time.sleep(0.01)
    second = time.time()
    _alarm(store, second, "negative_feedback")
    _trigger(store, outcome="cooldown")  # not a start: does not bound the window
    _trigger(store)
    store.close()
    assert drift_start(url, "support") == second


def test_no_started_trigger_means_no_window(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = DriftStore.from_url(url)
    store.create_all()
    _alarm(store, time.time(), "feedback_score")
    _trigger(store, outcome="running")
    store.close()
    assert drift_start(url, "support") is None
    assert drift_start(url, "other") is None
