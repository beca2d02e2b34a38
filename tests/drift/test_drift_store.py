"""The drift store on SQLite (always) and PostgreSQL (when DRIFTGATE_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from drift.batch import request_rows
from drift.service import feedback_row
from drift.store import DriftStore, FeedbackWrite, Reference, StoredRequest
from driftgate.core.events import FeedbackEvent, RequestEvent, ServedRequest


def rows(events: list[RequestEvent], policy: str = "keep") -> list[tuple[object, ...]]:
    return request_rows(events, lambda _adapter: policy).rows  # type: ignore[return-value]


def test_insert_is_idempotent_by_event_id(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    events = [request_factory() for _ in range(5)]
    assert store.insert_requests(rows(events)) == {e.event_id for e in events}
    # a retried batch with one new event stores only that one
    extra = request_factory()
    assert store.insert_requests(rows([*events, extra])) == {extra.event_id}
    assert store.counts()["drift_requests"] == 6


def test_duplicate_inside_one_batch_is_stored_once(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    e = request_factory()
    assert store.insert_requests(rows([e, e])) == {e.event_id}
    assert store.counts()["drift_requests"] == 1


def test_feedback_joins_requests_for_the_retrain_job(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    r1 = request_factory(prompt_text="p1", completion_text="c1")
    r2 = request_factory(prompt_text="p2", completion_text="c2", version=2, pinned=True)
    other = request_factory(adapter="billing")
    # feedback first: the join must not depend on arrival order
    fb = FeedbackEvent(request_id=r1.request_id, tenant="acme", score=0.0, correction="fixed")
    assert store.write_feedback(feedback_row(fb)) is FeedbackWrite.NEW
    assert store.write_feedback(feedback_row(fb)) is FeedbackWrite.DUPLICATE
    store.insert_requests(rows([r1, r2, other]))
    store.write_feedback(
        feedback_row(FeedbackEvent(request_id=r2.request_id, tenant="acme", label="billing"))
    )
    got = store.requests_with_feedback("support")
    assert [(x.prompt, x.completion, x.version) for x in got] == [("p1", "c1", 1), ("p2", "c2", 2)]
    assert got[0].correction == "fixed" and got[0].negative and got[0].score == 0.0
    assert got[1].label == "billing" and not got[1].negative
    assert store.requests_with_feedback("support", limit=1) == got[:1]
    assert store.requests_with_feedback("support", since=time.time() + 60) == []
    assert store.lookup_requests([r2.request_id, "nope"]) == {
        r2.request_id: StoredRequest("support", 2, pinned=True)
    }


def test_feedback_joins_only_a_request_of_its_own_tenant(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    """Two tenants' requests under one request id: feedback labels its own tenant's only,
    and the retrain job can ask for the opted-in tenants' requests alone."""
    mine = request_factory(request_id="same", tenant="acme", prompt_text="acme's")
    theirs = request_factory(request_id="same", tenant="globex", prompt_text="globex's")
    store.insert_requests(rows([mine, theirs]))
    fb = FeedbackEvent(request_id="same", tenant="globex", score=0.0, correction="evil")
    store.write_feedback(feedback_row(fb))
    got = store.requests_with_feedback("support")
    assert [(x.tenant, x.prompt, x.correction) for x in got] == [("globex", "globex's", "evil")]
    assert store.requests_with_feedback("support", tenants=["globex"]) == got
    assert store.requests_with_feedback("support", tenants=["acme"]) == []
    assert store.requests_with_feedback("support", tenants=[]) == []


def test_confident_answers_are_unrated_pre_drift_answers_of_one_version(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    """The retrain job's anchor candidates: routed to the version asked (a pinned request
    is a client's test), before the drift, confident enough, of the opted-in tenants, and
    never a request its own tenant rated."""
    t0 = time.time()
    keep = request_factory(mean_logprob=-0.01, ts=t0 - 100)
    newer = request_factory(mean_logprob=0.0, ts=t0 - 50)
    unsure = request_factory(mean_logprob=-0.5, ts=t0 - 100)
    after = request_factory(mean_logprob=-0.01, ts=t0 + 10)
    other_version = request_factory(mean_logprob=-0.01, ts=t0 - 100, version=2)
    rated = request_factory(mean_logprob=-0.01, ts=t0 - 100)
    failed = request_factory(mean_logprob=-0.01, ts=t0 - 100, status_code=500)
    unmeasured = request_factory(ts=t0 - 100)
    pinned = request_factory(mean_logprob=-0.01, ts=t0 - 100, pinned=True)
    globex = request_factory(mean_logprob=-0.01, ts=t0 - 100, tenant="globex")
    # globex's vote on acme's request id labels nothing of acme's.
    same_id = request_factory(mean_logprob=-0.02, ts=t0 - 120, request_id=globex.request_id)
    events = [keep, newer, unsure, after, other_version, rated, failed, unmeasured, pinned, globex]
    store.insert_requests(rows([*events, same_id]))
    for e in (rated, globex):
        store.write_feedback(
            feedback_row(FeedbackEvent(request_id=e.request_id, tenant=e.tenant, score=1.0))
        )

    def ids(**kw: object) -> list[str]:
        got = store.confident_answers(
            "support",
            1,
            before=t0,
            min_mean_logprob=-0.05,
            **kw,  # type: ignore[arg-type]
        )
        return [x.request_id for x in got]

    assert ids(tenants=["acme"]) == [newer.request_id, keep.request_id, same_id.request_id]
    assert ids(tenants=["globex"]) == []
    assert ids(tenants=[]) == []
    assert ids(tenants=["acme"], limit=1) == [newer.request_id]
    (one,) = store.confident_answers(
        "support", 2, before=t0, min_mean_logprob=-0.05, tenants=["acme"]
    )
    assert (one.request_id, one.version, one.mean_logprob) == (
        other_version.request_id,
        2,
        -0.01,
    )
    assert one.completion == "It ships tomorrow." and one.tenant == "acme"


def test_privacy_policy_hash_and_drop_keep_features(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    hashed = request_factory(prompt_text="secret", completion_text="I'm sorry, I can't.")
    dropped = request_factory(prompt_text="secret2")
    store.insert_requests(rows([hashed], "hash") + rows([dropped], "drop"))
    with store.engine.connect() as conn:
        from sqlalchemy import select

        from driftgate.core.state.schema.drift import requests

        got = {r.event_id: r for r in conn.execute(select(requests))}
    h = got[hashed.event_id]
    assert h.prompt_text is None and h.completion_text is None
    assert h.prompt_sha256 is not None and len(h.prompt_sha256) == 64
    assert h.refusal is True and h.prompt_tokens == 12
    d = got[dropped.event_id]
    assert d.prompt_text is None and d.prompt_sha256 is None and d.latency_ms == 100.0


SERVED = ServedRequest.model_validate(
    {
        "messages": [
            {"role": "system", "content": "You route tickets."},
            {"role": "user", "content": "Printer jam"},
            {"role": "assistant", "content": "Q-HW"},
            {"role": "user", "content": "Still jammed"},
        ],
        "tools_sha256": "b" * 64,
        "tool_names": ["lookup"],
        "response_format": "json_object",
        "sampling": {"temperature": 0.0, "max_tokens": 16, "stop": ["\n"]},
    }
)


def test_served_record_round_trips_to_the_retrain_job_under_keep(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    served = request_factory(served=SERVED, finish_reason="length", status_code=200)
    old = request_factory()  # an older gateway's event: no record
    store.insert_requests(rows([served, old]))
    for e in (served, old):
        store.write_feedback(
            feedback_row(FeedbackEvent(request_id=e.request_id, tenant="acme", score=1.0))
        )
    got = {x.request_id: x for x in store.requests_with_feedback("support")}
    assert got[served.request_id].served == SERVED
    assert got[served.request_id].finish_reason == "length"
    assert (got[served.request_id].endpoint, got[served.request_id].status_code) == ("chat", 200)
    assert got[old.request_id].served is None


def test_served_record_follows_the_text_policy(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    """``hash`` stores the record's SHA-256 and no text; ``drop`` stores neither."""
    hashed = request_factory(served=SERVED)
    dropped = request_factory(served=SERVED)
    store.insert_requests(rows([hashed], "hash") + rows([dropped], "drop"))
    for e in (hashed, dropped):
        store.write_feedback(
            feedback_row(FeedbackEvent(request_id=e.request_id, tenant="acme", score=1.0))
        )
    with store.engine.connect() as conn:
        from sqlalchemy import select

        from driftgate.core.state.schema.drift import requests

        got = {r.event_id: r for r in conn.execute(select(requests))}
    h, d = got[hashed.event_id], got[dropped.event_id]
    assert h.served_json is None
    assert h.served_sha256 == hashlib.sha256(SERVED.model_dump_json().encode()).hexdigest()
    assert d.served_json is None and d.served_sha256 is None
    assert all(x.served is None for x in store.requests_with_feedback("support"))
    stored = " ".join(str(v) for r in got.values() for v in r)
    assert "Printer jam" not in stored and "Still jammed" not in stored


def test_retention_purges_old_events_only(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    old = request_factory(ts=time.time() - 10 * 86400)
    new = request_factory()
    store.insert_requests(rows([old, new]))
    store.write_feedback(
        feedback_row(FeedbackEvent(request_id=old.request_id, tenant="acme", score=1, ts=old.ts))
    )
    assert store.purge(time.time() - 86400) == (1, 1)
    assert store.counts()["drift_requests"] == 1


def test_references_alarms_and_triggers_round_trip(store: DriftStore) -> None:
    store.save_reference(Reference("support", 1, "latency_ms", "auto", 1.0, [1.0, 2.0]))
    store.save_reference(Reference("support", 1, "latency_ms", "pinned", 2.0, [3.0]))
    store.save_reference(Reference("support", 1, "finish_reason", "auto", 1.0, ["stop"]))
    refs = {r.signal: r for r in store.references()}
    assert refs["latency_ms"].values == [3.0] and refs["latency_ms"].source == "pinned"
    assert refs["finish_reason"].values == ["stop"]
    store.record_alarms(
        [
            {
                "ts": 5.0,
                "adapter": "support",
                "version": 1,
                "signal": "latency_ms",
                "detector": "cusum+ks",
                "confirmed": True,
                "score": 1.0,
                "p_value": 1e-5,
                "detail": "{}",
            }
        ]
    )
    assert [a["detector"] for a in store.confirmed_alarms()] == ["cusum+ks"]
    assert store.last_started_trigger_ts("support") is None
    store.record_trigger(
        adapter="support", version=1, reason="r", mode="subprocess", outcome="started", detail="d"
    )
    assert store.last_started_trigger_ts("support") is not None
    assert store.triggers("support")[0]["reason"] == "r"


def test_feedback_keeps_its_source_into_the_training_query(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    """A review label replaces the client's vote whole, its source included."""
    r1 = request_factory(prompt_text="p1", completion_text="c1")
    r2 = request_factory(prompt_text="p2", completion_text="c2")
    store.insert_requests(rows([r1, r2]))
    store.write_feedback(
        feedback_row(FeedbackEvent(request_id=r1.request_id, tenant="acme", score=1.0))
    )
    store.write_feedback(
        feedback_row(FeedbackEvent(request_id=r2.request_id, tenant="acme", score=1.0))
    )
    review = FeedbackEvent(request_id=r2.request_id, tenant="acme", label="Q-NET")
    assert store.write_feedback(feedback_row(review, "review")) is FeedbackWrite.REPLACED
    got = {x.request_id: x for x in store.requests_with_feedback("support")}
    assert got[r1.request_id].source == "client"
    assert got[r2.request_id].source == "review" and got[r2.request_id].label == "Q-NET"
