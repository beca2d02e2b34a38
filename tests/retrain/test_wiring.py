"""What a retrain run reads from the shared database (``retrain.wiring``): the drifted
window, the opted-in tenants and their traffic."""

from __future__ import annotations

import time
from pathlib import Path

from drift.batch import request_rows
from drift.service import feedback_row
from drift.store import DriftStore
from driftgate.core.events import FeedbackEvent, RequestEvent, ServedRequest
from driftgate.core.state import StateStore
from retrain.wiring import drift_start, read_traffic, training_tenants


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


def test_training_tenants_are_the_opt_ins_of_the_state_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    assert training_tenants(url, "support") == ()  # nothing yet: nobody opted in
    state = StateStore(url)
    try:
        for name in ("globex", "acme"):
            state.create_tenant(name, adapters=["*"], rate_limit_rps=1, burst=1, max_tokens=8)
        state.create_version("support", "/abs/support-1")
        state.set_training_tenants("support", ["globex", "acme"])
    finally:
        state.dispose()
    assert training_tenants(url, "support") == ("acme", "globex")
    assert training_tenants(url, "billing") == ()


def test_traffic_is_read_per_tenant_and_request_id(tmp_path: Path) -> None:
    """Two tenants' requests under one id stay two records, each with its own feedback."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = DriftStore.from_url(url)
    store.create_all()
    events = [
        RequestEvent(request_id="same", tenant=t, adapter="support", version=1,
                     prompt_text=f"{t} prompt", completion_text="c")
        for t in ("acme", "globex")
    ]  # fmt: skip
    store.insert_requests(request_rows(events, lambda _a: "keep").rows)
    for tenant, score in (("acme", 1.0), ("globex", 0.0)):
        store.write_feedback(
            feedback_row(FeedbackEvent(request_id="same", tenant=tenant, score=score))
        )
    store.close()
    records = {r.tenant: r for r in read_traffic(url, "support")}
    assert set(records) == {"acme", "globex"}
    assert records["acme"].prompt_text == "acme prompt"
    assert [(f.tenant, f.score) for f in records["acme"].feedback] == [("acme", 1.0)]
    assert [(f.tenant, f.score) for f in records["globex"].feedback] == [("globex", 0.0)]
    assert [r.tenant for r in read_traffic(url, "support", ["globex"])] == ["globex"]
    assert read_traffic(url, "support", []) == []


def test_traffic_carries_the_served_record_and_the_outcome(tmp_path: Path) -> None:
    """What the retrain job reads back: the request as served, its finish reason and status,
    and no record for an older gateway's event."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = DriftStore.from_url(url)
    store.create_all()
    served = ServedRequest.model_validate(
        {
            "messages": [
                {"role": "system", "content": "S"},
                {"role": "user", "content": "U1"},
                {"role": "assistant", "content": "A1"},
                {"role": "user", "content": "U2"},
            ]
        }
    )
    events = [
        RequestEvent(request_id="new", tenant="acme", adapter="support", version=1,
                     prompt_text="U2", completion_text="c", finish_reason="length",
                     served=served),
        RequestEvent(request_id="old", tenant="acme", adapter="support", version=1,
                     prompt_text="U", completion_text="c"),
    ]  # fmt: skip
    store.insert_requests(request_rows(events, lambda _a: "keep").rows)
    for rid in ("new", "old"):
        store.write_feedback(feedback_row(FeedbackEvent(request_id=rid, tenant="acme", score=1.0)))
    store.close()
    records = {r.request_id: r for r in read_traffic(url, "support")}
    assert records["new"].served == served and records["new"].finish_reason == "length"
    assert records["old"].served is None and records["old"].status_code == 200
