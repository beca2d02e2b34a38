"""The review budget spent in rounds: topped up on alarms, a new round once one is answered,
later rounds spreading away from earlier picks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from drift.app import create_app
from drift.review_queue import ReviewQueue
from drift.settings import DriftSettings
from drift.store import DriftStore
from driftgate.core.events import RequestEvent
from tests.drift.conftest import AUTH
from tests.drift.test_drift_app import post_batch, shifted_traffic
from tests.drift.test_drift_store import rows
from tests.drift.test_review_queue import TopicEmbedder


def _reference() -> np.ndarray:
    reference = np.zeros(16, dtype=np.float32)
    reference[0] = 1.0
    return reference


def test_a_fill_adds_one_round_and_tops_it_up_within_the_budget(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    store.insert_requests(rows([request_factory(prompt_text=f"ticket {i}") for i in range(20)]))
    queue = ReviewQueue(store, 6, round_size=3)
    assert not queue.round_answered("support", 1)  # nothing queued yet: no round to follow
    assert queue.fill("support", 1) == 3
    assert queue.fill("support", 1) == 0  # the round is still open
    first = queue.items("support", None, 10)
    queue.label(first[0]["id"], None, "Q-A", None)
    assert not queue.round_answered("support", 1)
    assert queue.fill("support", 1) == 1  # a later alarm tops the open items up to a round
    for item in queue.items("support", None, 10):
        queue.label(item["id"], None, "Q-A", None)
    assert queue.round_answered("support", 1)
    assert queue.fill("support", 1) == 2  # the budget's rest, not a whole round
    for item in queue.items("support", None, 10):
        queue.label(item["id"], None, "Q-A", None)
    assert store.reviews.count("support", 1) == 6
    assert not queue.round_answered("support", 1)  # the budget is spent
    assert queue.fill("support", 1) == 0


def test_a_later_round_spreads_away_from_the_earlier_picks(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    """Round two's newest candidates are more printer and invoice tickets, which round one
    already covered; the one vpn ticket, older than them, is the farthest from what was
    picked, so it comes first."""
    store.insert_requests(
        rows(
            [
                request_factory(prompt_text=f"{t} issue {i}")
                for i, t in enumerate(["printer", "invoice"])
            ]
        )
    )
    queue = ReviewQueue(
        store, 4, round_size=2, embedder=TopicEmbedder(), centroid=lambda a, v: _reference()
    )
    assert queue.fill("support", 1) == 2
    for item in queue.items("support", None, 10):
        queue.label(item["id"], None, "Q-A", None)
    later = [
        request_factory(prompt_text="vpn drops every hour"),
        *(request_factory(prompt_text=f"{t} again {i}") for i, t in enumerate(["printer"] * 3)),
        *(request_factory(prompt_text=f"{t} again {i}") for i, t in enumerate(["invoice"] * 3)),
    ]
    store.insert_requests(rows(later))
    queue.round_size = 1
    assert queue.fill("support", 1) == 1
    (item,) = queue.items("support", None, 10)
    assert item["prompt"] == "vpn drops every hour"
    assert item["reasons"]["queued_before"] == 2


def test_a_round_larger_than_the_budget_is_refused(tmp_path: Any) -> None:
    with pytest.raises(ValidationError, match="review_round"):
        DriftSettings(state_url=f"sqlite:///{tmp_path}/s.db", review_budget=5, review_round=6)
    # with the queue off the round size does not matter
    DriftSettings(state_url=f"sqlite:///{tmp_path}/s.db", review_budget=0, review_round=6)


def _open_items(c: TestClient, n: int) -> list[dict[str, Any]]:
    for _ in range(400):  # fills run in a worker thread
        items: list[dict[str, Any]] = c.get("/v1/review/items").json()["data"]
        if len(items) >= n:
            return items
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} open review items")


def test_answering_a_round_over_the_api_queues_the_next_until_the_budget_is_spent(
    settings: DriftSettings, request_factory: Callable[..., RequestEvent]
) -> None:
    settings = settings.model_copy(
        update={"trigger_signals": ["latency_ms"], "review_budget": 5, "review_round": 2}
    )
    with TestClient(create_app(settings), headers=AUTH) as c:
        post_batch(c, shifted_traffic(request_factory, 400, 100, 1))
        post_batch(c, shifted_traffic(request_factory, 300, 160, 2))
        labelled: list[str] = []
        for want in (2, 2, 1):
            items = _open_items(c, want)
            assert len(items) == want, items
            for item in items:
                r = c.post(f"/v1/review/items/{item['id']}/label", json={"label": "Q-A"})
                assert r.status_code == 202
                labelled.append(item["request_id"])
        time.sleep(0.3)  # a fill, were one started, would have queued by now
        assert c.get("/v1/review/items").json()["data"] == []
    assert len(set(labelled)) == 5


def test_requests_like_the_reference_prompts_come_last(
    store: DriftStore, request_factory: Callable[..., RequestEvent]
) -> None:
    """The drifted window mixes tickets like the reference's (printer) with a new topic (vpn)
    that happens to lie nearer the centroid: seeded with the reference sample, the pick goes
    to the new topic; by the centroid alone it would not."""
    embedder = TopicEmbedder()
    reference = embedder.encode(["printer jam", "printer toner"])
    events = [
        request_factory(prompt_text="vpn trouble number 0"),
        *(request_factory(prompt_text=f"printer trouble number {i}") for i in range(6)),
    ]
    store.insert_requests(rows(events))
    by_centroid = ReviewQueue(store, 1, embedder=embedder, centroid=lambda a, v: _reference())
    assert by_centroid.room("support", 1) == 1
    cands = store.reviews.candidates("support", 1, 10)
    vectors = embedder.encode([c["prompt_text"] for c in cands])
    centre = _reference()
    farthest = max(range(len(cands)), key=lambda i: 1.0 - float(vectors[i] @ centre))
    assert cands[farthest]["prompt_text"].startswith("printer")
    queue = ReviewQueue(
        store,
        1,
        embedder=embedder,
        centroid=lambda a, v: _reference(),
        reference=lambda a, v: reference,
    )
    assert queue.fill("support", 1) == 1
    assert [i["prompt"] for i in queue.items("support", None, 10)] == ["vpn trouble number 0"]
