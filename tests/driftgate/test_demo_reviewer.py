"""The demo's simulated reviewer (against a stand-in gateway) and its feedback profiles."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest

from driftgate.demo.profile import demo_env
from driftgate.demo.reviewer import SimulatedReviewer, review_answer
from driftgate.demo.settings import DemoSettings
from driftgate.demo.tickets import Ticket, TicketGenerator
from driftgate.demo.traffic import Outcome


def _outcome(ticket: Ticket, answer: str, request_id: str) -> Outcome:
    correct = answer == ticket.queue
    return Outcome(0.0, "shifted", ticket, answer, correct, request_id, "support@1", ok=True)


def _tickets(n: int) -> list[Ticket]:
    return TicketGenerator(seed=3).batch(n, shifted=True)


def test_without_noise_right_answers_are_approved_and_wrong_ones_corrected() -> None:
    right, wrong = _tickets(2)
    rng = random.Random(0)
    assert review_answer(_outcome(right, right.queue, "a"), 0.0, rng) == {"label": right.queue}
    other = "Q-ACC" if wrong.queue != "Q-ACC" else "Q-SHP"
    assert review_answer(_outcome(wrong, other, "b"), 0.0, rng) == {"correction": wrong.queue}
    # an answer that names no queue cannot be approved as a label
    assert review_answer(_outcome(wrong, "hello", "c"), 0.0, rng) == {"correction": wrong.queue}


def test_noise_flips_the_judgement_at_its_rate() -> None:
    """2,000 right answers judged at noise 0.1: flips ~ Bin(2000, 0.1), mean 200, sd 13.4;
    outside [140, 260] (4.5 sd) with probability below 1e-5."""
    (ticket,) = _tickets(1)
    rng = random.Random(11)
    flips = sum(
        "correction" in review_answer(_outcome(ticket, ticket.queue, "r"), 0.1, rng)
        for _ in range(2000)
    )
    assert 140 <= flips <= 260


class FakeGateway:
    """The gateway's two review routes over an in-memory queue; records what was posted."""

    def __init__(self, items: list[dict[str, Any]], key: str) -> None:
        self.open = list(items)
        self.key = key
        self.posted: dict[int, dict[str, str]] = {}
        self.polls = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return httpx.Response(401, json={"error": {"message": "bad key"}})
        if request.method == "GET" and request.url.path == "/v1/review/items":
            self.polls += 1
            assert request.url.params["adapter"] == "support"
            limit = int(request.url.params["limit"])
            return httpx.Response(200, json={"object": "list", "data": self.open[:limit]})
        item_id = int(request.url.path.rsplit("/", 1)[1])
        self.posted[item_id] = json.loads(request.content)
        self.open = [i for i in self.open if i["id"] != item_id]
        return httpx.Response(202, json={"id": item_id})


def _reviewer(gw: FakeGateway, budget: int) -> SimulatedReviewer:
    return SimulatedReviewer(
        "http://gateway",
        gw.key,
        "support",
        budget=budget,
        noise=0.0,
        seed=1,
        label_delay_s=0.0,
        transport=httpx.MockTransport(gw.handle),
    )


def test_the_reviewer_answers_its_requests_from_the_truth_within_the_budget() -> None:
    tickets = _tickets(6)
    outcomes = [
        _outcome(t, t.queue if i % 2 else "Q-XYZ", f"req-{i}") for i, t in enumerate(tickets)
    ]
    items = [{"id": 100 + i, "request_id": o.request_id} for i, o in enumerate(outcomes)]
    items.insert(2, {"id": 99, "request_id": "someone-elses"})
    gw = FakeGateway(items, "tenant-key")
    reviewer = _reviewer(gw, budget=4)
    for o in outcomes:
        reviewer.remember(o)
    try:
        assert reviewer.review_once() == 4
        assert reviewer.review_once() == 0  # the budget is spent
    finally:
        reviewer.close()
    assert sorted(gw.posted) == [100, 101, 102, 103]
    for i in range(4):
        want = {"label": tickets[i].queue} if i % 2 else {"correction": tickets[i].queue}
        assert gw.posted[100 + i] == want
    assert reviewer.tally.as_dict() == {
        "labelled": 4, "approved": 2, "corrected": 2, "unknown": 1, "failed": 0,
    }  # fmt: skip


def test_a_refused_poll_is_counted_and_retried_later() -> None:
    gw = FakeGateway([], "tenant-key")
    reviewer = _reviewer(gw, budget=2)
    reviewer._client.headers["Authorization"] = "Bearer wrong"
    try:
        assert reviewer.review_once() == 0
    finally:
        reviewer.close()
    assert reviewer.tally.failed == 1 and reviewer.tally.labelled == 0


def test_the_profiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTGATE_DEMO_PROFILE", raising=False)
    sparse = DemoSettings()  # the default: the feedback real apps get
    assert (sparse.profile, sparse.feedback_share, sparse.review_budget) == ("sparse", 0.05, 40)
    env = demo_env(sparse)
    assert env["DRIFTGATE_DRIFT_REVIEW_BUDGET"] == "40"
    assert env["DRIFTGATE_DRIFT_REVIEW_ROUND"] == "10"
    assert env["DRIFTGATE_RETRAIN_MIN_DRIFT_EXAMPLES"] == "40"
    assert "mean_logprob" in json.loads(env["DRIFTGATE_DRIFT_TRIGGER_SIGNALS"])
    monkeypatch.setenv("DRIFTGATE_DEMO_PROFILE", "dense")
    dense = DemoSettings()
    assert (dense.feedback_share, dense.correction_share, dense.review_budget) == (0.8, 0.8, 0)
    env = demo_env(dense)
    assert env["DRIFTGATE_RETRAIN_MIN_DRIFT_EXAMPLES"] == "80"
    assert "DRIFTGATE_DRIFT_REVIEW_BUDGET" not in env
    # what the user sets wins over the profile
    monkeypatch.setenv("DRIFTGATE_DEMO_FEEDBACK_SHARE", "0.3")
    assert DemoSettings().feedback_share == 0.3
    # the drift service accepts what the sparse profile sets
    from drift.settings import DriftSettings

    for key, value in demo_env(sparse).items():
        monkeypatch.setenv(key, value)
    drift = DriftSettings()
    assert (drift.review_budget, drift.review_round) == (40, 10)
    assert "first_token_margin" in drift.trigger_signals
