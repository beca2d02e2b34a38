"""The review queue: filled on confirmed drift, served and labelled through the drift API."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from drift.app import create_app
from drift.review_queue import ReviewQueue
from drift.service import feedback_row
from drift.settings import DriftSettings
from drift.store import DriftStore
from driftgate.core.errors import NotFound
from driftgate.core.events import FeedbackEvent, RequestEvent
from tests.drift.conftest import AUTH
from tests.drift.test_drift_app import post_batch, shifted_traffic
from tests.drift.test_drift_store import rows


class TopicEmbedder:
    """Unit vectors by the prompt's first word (one topic per axis), a little jitter."""

    def __init__(self, dim: int = 16) -> None:
        self.dim = dim
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            topic = int(hashlib.sha256(t.split()[0].encode()).hexdigest(), 16) % (self.dim - 1)
            out[i, topic + 1] = 1.0
            out[i, 0] = 0.02 * (len(t) % 7)
            out[i] /= np.linalg.norm(out[i])
        return out


def test_fill_spreads_the_budget_and_skips_what_is_not_reviewable(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    topics = ["printer", "invoice", "vpn"]
    events = [request_factory(prompt_text=f"{topics[i % 3]} problem number {i}") for i in range(30)]
    skipped = [
        request_factory(prompt_text="pinned one", pinned=True),
        request_factory(prompt_text="failed one", status_code=500),
        request_factory(prompt_text=None),
        request_factory(prompt_text="labelled one"),
        request_factory(prompt_text="other version", version=2),
    ]
    store.insert_requests(rows([*events, *skipped]))
    store.write_feedback(
        feedback_row(FeedbackEvent(request_id=skipped[3].request_id, tenant="acme", label="Q"))
    )
    reference = np.zeros(16, dtype=np.float32)
    reference[0] = 1.0
    queue = ReviewQueue(store, 3, embedder=TopicEmbedder(), centroid=lambda a, v: reference)
    assert queue.fill("support", 1) == 3
    items = queue.items("support", "acme", 10)
    assert {i["prompt"].split()[0] for i in items} == set(topics)
    assert [i["rank"] for i in items] == [0, 1, 2]
    assert all(i["reasons"]["strategy"] == "k_center" for i in items)
    wanted = {e.request_id for e in events}
    assert {i["request_id"] for i in items} <= wanted
    # the budget is spent: a second confirmed alarm adds nothing
    assert queue.fill("support", 1) == 0
    assert queue.items("support", "other-tenant", 10) == []


def test_without_embeddings_the_newest_distinct_prompts_are_queued(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    events = [
        request_factory(prompt_text="my parcel never arrived, order 991"),
        request_factory(prompt_text="how do I change my billing address"),
        request_factory(prompt_text="My parcel never arrived order 991"),
    ]
    store.insert_requests(rows(events))
    queue = ReviewQueue(store, 5)
    assert queue.fill("support", 1) == 2
    got = [i["request_id"] for i in queue.items("support", None, 10)]
    assert got == [events[2].request_id, events[1].request_id]


def test_a_label_is_the_tenants_feedback_with_review_provenance(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    e = request_factory(prompt_text="vpn token expired", completion_text="Q-HW")
    store.insert_requests(rows([e]))
    store.write_feedback(
        feedback_row(FeedbackEvent(request_id=e.request_id, tenant="acme", score=1.0))
    )
    queue = ReviewQueue(store, 5)
    queue.fill("support", 1)
    (item,) = queue.items("support", "acme", 10)
    with pytest.raises(NotFound):
        queue.label(item["id"], "globex", "Q-NET", None)
    with pytest.raises(NotFound):
        queue.label(item["id"] + 1000, "acme", "Q-NET", None)
    queue.label(item["id"], "acme", "Q-NET", None)
    assert queue.items("support", "acme", 10) == []
    (example,) = store.requests_with_feedback("support")
    assert (example.label, example.source, example.score) == ("Q-NET", "review", None)


def _wait_for_items(c: TestClient, **params: Any) -> list[dict[str, Any]]:
    for _ in range(400):  # the fill runs in a worker thread after the alarm
        items: list[dict[str, Any]] = c.get("/v1/review/items", params=params).json()["data"]
        if items:
            return items
        time.sleep(0.05)
    raise AssertionError("the review queue was not filled")


def test_confirmed_drift_fills_the_queue_served_over_the_api(
    settings: DriftSettings, request_factory: Callable[..., RequestEvent]
) -> None:
    settings = settings.model_copy(update={"trigger_signals": ["latency_ms"], "review_budget": 4})
    with TestClient(create_app(settings), headers=AUTH) as c:
        post_batch(c, shifted_traffic(request_factory, 400, 100, 1))
        assert c.get("/v1/review/items").json()["data"] == []
        post_batch(c, shifted_traffic(request_factory, 300, 160, 2))
        items = _wait_for_items(c, adapter="support", tenant="acme")
        assert len(items) == 4 and all(i["prompt"] for i in items)
        assert c.get("/v1/review/items", params={"tenant": "globex"}).json()["data"] == []
        first = items[0]["id"]
        url = f"/v1/review/items/{first}/label"
        # refusals: wrong key, another tenant's item, unknown item, invalid bodies
        bad_key = {"Authorization": "Bearer nope"}
        assert c.post(url, json={"label": "Q"}, headers=bad_key).status_code == 401
        assert c.get("/v1/review/items", headers=bad_key).status_code == 401
        r = c.post(url, json={"tenant": "globex", "label": "Q"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert c.post("/v1/review/items/999999/label", json={"label": "Q"}).status_code == 404
        r = c.post(url, json={"tenant": "acme"})
        assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request_error"
        assert c.post(url, json={"label": "Q", "score": 1}).status_code == 422
        assert c.post(url, content=b"{not json").status_code == 400
        assert c.get("/v1/review/items", params={"limit": 0}).status_code == 400
        assert c.get("/v1/review/items", params={"limit": "x"}).status_code == 400
        assert c.post("/v1/review/items/x/label", json={"label": "Q"}).status_code == 404
        # no key, malformed parameters: still 401
        r = c.post("/v1/review/items/x/label", json={"label": "Q"}, headers=bad_key)
        assert r.status_code == 401
        assert c.get("/v1/review/items", params={"limit": "x"}, headers=bad_key).status_code == 401
        r = c.post(url, json={"tenant": "acme", "correction": "Q-NET"})
        assert r.status_code == 202 and r.json()["request_id"] == items[0]["request_id"]
        left = c.get("/v1/review/items", params={"adapter": "support"}).json()["data"]
        assert [i["id"] for i in left] == [i["id"] for i in items[1:]]
    store = DriftStore.from_url(settings.state_url)
    try:
        labelled = [x for x in store.requests_with_feedback("support") if x.source == "review"]
    finally:
        store.close()
    assert [(x.request_id, x.correction, x.negative) for x in labelled] == [
        (items[0]["request_id"], "Q-NET", True)
    ]


def test_a_zero_budget_queues_nothing(
    settings: DriftSettings, request_factory: Callable[..., RequestEvent]
) -> None:
    settings = settings.model_copy(update={"trigger_signals": ["latency_ms"], "review_budget": 0})
    with TestClient(create_app(settings), headers=AUTH) as c:
        post_batch(c, shifted_traffic(request_factory, 400, 100, 1))
        post_batch(c, shifted_traffic(request_factory, 300, 160, 2))
        status = c.get("/v1/drift/status").json()
        assert status["versions"][0]["drifted"] == ["latency_ms"]
        assert c.get("/v1/review/items").json()["data"] == []


def test_a_confidence_per_candidate_puts_the_least_sure_first(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    """Two equally new topics: the one answered with less confidence (the mean token logprob
    the gateway stored with the request) is picked first."""
    sure = request_factory(prompt_text="printer jams on floor 3", mean_logprob=-0.1)
    unsure = request_factory(prompt_text="invoice missing for March", mean_logprob=-1.6)
    store.insert_requests(rows([sure, unsure]))
    reference = np.zeros(16, dtype=np.float32)
    reference[0] = 1.0
    queue = ReviewQueue(store, 1, embedder=TopicEmbedder(), centroid=lambda a, v: reference)
    assert queue.fill("support", 1) == 1
    (item,) = queue.items("support", None, 10)
    assert item["request_id"] == unsure.request_id
    assert item["reasons"]["confidence"] == pytest.approx(math.exp(-1.6))


def test_retention_removes_review_items_with_their_requests(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    old = request_factory(prompt_text="an old ticket", ts=1000.0)
    store.insert_requests(rows([old]))
    queue = ReviewQueue(store, 5, clock=lambda: 1000.0)
    assert queue.fill("support", 1) == 1
    assert store.purge(2000.0) == (1, 0)
    assert store.reviews.count("support", 1) == 0
