"""A canary cannot be promoted by one tenant's votes (issue 15, parts 2 and 4).

The judge over the drift store it reads in production (SQLite, and PostgreSQL when
DRIFTGATE_TEST_POSTGRES_URL is set). No sockets needed: what is attacked is the
counting; ``test_feedback_ownership.py`` covers the routes.
"""

from __future__ import annotations

import time

from drift.batch import request_rows
from drift.service import feedback_row
from drift.store import DriftStore
from driftgate.core.events import FeedbackEvent, RequestEvent
from rollout.judge import JudgePolicy, Verdict, judge

SERVING, CANARY = 1, 2
POLICY = JudgePolicy(min_feedback=20, min_requests=20, timeout_s=600)


def _traffic(
    store: DriftStore, tenant: str, version: int, scores: list[float], *, pinned: bool = False
) -> None:
    """One routed (or pinned) request of ``tenant`` per score, each rated with that score."""
    events = [
        RequestEvent(
            request_id=f"{tenant}-{version}-{pinned}-{i}",
            tenant=tenant,
            adapter="support",
            version=version,
            pinned=pinned,
            latency_ms=100.0,
        )
        for i in range(len(scores))
    ]
    store.insert_requests(request_rows(events, lambda _a: "keep").rows)
    for e, score in zip(events, scores, strict=True):
        store.write_feedback(
            feedback_row(FeedbackEvent(request_id=e.request_id, tenant=tenant, score=score))
        )


def _verdict(
    store: DriftStore, since: float, share: float = POLICY.max_tenant_vote_share
) -> Verdict:
    stats = store.version_window("support", [CANARY, SERVING], since, max_tenant_share=share)
    return judge(stats[CANARY], stats[SERVING], POLICY, elapsed_s=60).verdict


def test_one_tenant_alone_cannot_promote_a_canary(store: DriftStore) -> None:
    since = time.time() - 1
    # mallory is all the feedback: the canary rated up, the serving version down
    _traffic(store, "mallory", CANARY, [1.0] * 200)
    _traffic(store, "mallory", SERVING, [0.0] * 200)
    stats = store.version_window("support", [CANARY, SERVING], since, max_tenant_share=0.5)
    assert (stats[CANARY].feedback, stats[CANARY].capped, stats[CANARY].voters) == (0, 200, 1)
    assert _verdict(store, since) is Verdict.WAIT  # no votes count: only the timeout decides
    # the same votes would have promoted it without the share cap
    assert _verdict(store, since, share=1.0) is Verdict.PROMOTE


def test_a_tenant_over_its_share_of_votes_is_capped(store: DriftStore) -> None:
    since = time.time() - 1
    # two honest tenants find the canary worse: 50% negative against 10%
    for tenant in ("acme", "globex"):
        _traffic(store, tenant, CANARY, [0.0] * 10 + [1.0] * 10)
        _traffic(store, tenant, SERVING, [0.0] * 2 + [1.0] * 18)
    # mallory floods the canary with praise: 200 of its 240 votes, uncapped 8% negative
    _traffic(store, "mallory", CANARY, [1.0] * 200)
    stats = store.version_window("support", [CANARY, SERVING], since, max_tenant_share=0.5)
    cand = stats[CANARY]
    # capped at 40 = half of the 80 counted; the honest 40 count whole
    assert (cand.feedback, cand.negative, cand.capped, cand.voters) == (80, 20, 160, 3)
    assert _verdict(store, since) is Verdict.ROLLBACK
    assert _verdict(store, since, share=1.0) is Verdict.PROMOTE  # what the flood aimed at


def test_pinned_votes_do_not_reach_the_judge(store: DriftStore) -> None:
    since = time.time() - 1
    for tenant in ("acme", "globex"):
        _traffic(store, tenant, CANARY, [0.0] * 10 + [1.0] * 10)
        _traffic(store, tenant, SERVING, [0.0] * 2 + [1.0] * 18)
    # mallory pins the canary (support@2) and a whole other tenant's worth of praise
    _traffic(store, "mallory", CANARY, [1.0] * 40, pinned=True)
    _traffic(store, "eve", CANARY, [1.0] * 40, pinned=True)
    stats = store.version_window("support", [CANARY, SERVING], since, max_tenant_share=0.5)
    assert (stats[CANARY].requests, stats[CANARY].feedback, stats[CANARY].voters) == (40, 40, 2)
    assert _verdict(store, since) is Verdict.ROLLBACK
