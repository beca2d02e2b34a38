"""The canary judged on answer confidence read by the drift store it reads in production
(SQLite, and PostgreSQL when DRIFTGATE_TEST_POSTGRES_URL is set): what the window counts,
and the verdicts on it."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest

from drift.batch import request_rows
from drift.service import feedback_row
from drift.store import DriftStore
from driftgate.core.events import FeedbackEvent, RequestEvent
from rollout.judge import JudgePolicy, Verdict, judge
from tests.drift.conftest import store  # noqa: F401 (fixture)

SERVING, CANARY = 1, 2
POLICY = JudgePolicy(min_feedback=30, min_requests=30, timeout_s=600, confidence_min_requests=40)


def _requests(
    drift: DriftStore, version: int, confidences: list[float | None], tag: str = "", **kw: Any
) -> None:
    """One request of ``version`` per confidence, ids ``{tag}{version}-{i}``."""
    events = [
        RequestEvent(
            request_id=f"{tag}{version}-{i}",
            tenant="acme",
            adapter="support",
            version=version,
            latency_ms=100.0,
            mean_logprob=c,
            **kw,
        )
        for i, c in enumerate(confidences)
    ]
    drift.insert_requests(request_rows(events, lambda _a: "keep").rows)


def _confidences(center: float, n: int) -> list[float | None]:
    """``n`` confidences spread evenly around ``center`` (a fixed sample, no draw)."""
    return [min(0.0, center + 0.3 * ((i % 7) - 3) / 3) for i in range(n)]


def test_the_window_summarises_routed_successful_answers_with_confidence(
    store: DriftStore,  # noqa: F811
) -> None:
    _requests(store, SERVING, [-2.0] * 5, "old", ts=time.time() - 3600)  # before the canary
    since = time.time() - 1
    counted = _confidences(-0.4, 50)
    _requests(store, SERVING, counted)
    _requests(store, SERVING, [None] * 7, "none")  # no logprobs (completions, older gateways)
    _requests(store, SERVING, [-5.0] * 6, "pinned", pinned=True)  # a client chose the version
    _requests(store, SERVING, [-5.0] * 4, "error", status_code=500)
    _requests(store, CANARY, [-0.25])
    stats = store.version_window("support", [SERVING, CANARY, 3], since, max_tenant_share=1.0)
    s = stats[SERVING]
    assert (s.requests, s.errors, s.confidence_requests) == (61, 4, 50)
    assert s.confidence_mean == pytest.approx(statistics.fmean(counted), abs=1e-12)
    assert s.confidence_var == pytest.approx(statistics.variance(counted), rel=1e-9)
    c = stats[CANARY]
    assert (c.confidence_requests, c.confidence_mean, c.confidence_var) == (1, -0.25, None)
    assert (stats[3].confidence_requests, stats[3].confidence_mean) == (0, None)
    assert stats[3].as_dict()["confidence_var"] is None


def test_a_canary_with_scarce_feedback_is_judged_on_confidence(store: DriftStore) -> None:  # noqa: F811
    since = time.time() - 1
    _requests(store, SERVING, _confidences(-0.60, 60))
    _requests(store, CANARY, _confidences(-0.20, 60))
    # 3 votes per arm: far below min_feedback, and not saying the canary is worse
    for version, negative in ((SERVING, 1), (CANARY, 0)):
        for i in range(3):
            store.write_feedback(
                feedback_row(
                    FeedbackEvent(
                        request_id=f"{version}-{i}",
                        tenant="acme",
                        score=0.0 if i < negative else 1.0,
                    )
                )
            )
    stats = store.version_window("support", [CANARY, SERVING], since, max_tenant_share=1.0)
    assert (stats[CANARY].feedback, stats[SERVING].negative) == (3, 1)
    j = judge(stats[CANARY], stats[SERVING], POLICY, elapsed_s=60)
    assert j.verdict is Verdict.PROMOTE and "over 60/60 answers" in j.reason
    # the same windows with the arms swapped: the candidate far less confident
    j = judge(stats[SERVING], stats[CANARY], POLICY, elapsed_s=60)
    assert j.verdict is Verdict.ROLLBACK and "answer confidence" in j.reason
    # feedback alone (the default) waits for votes that do not come
    alone = JudgePolicy(min_feedback=30, min_requests=30, timeout_s=600)
    assert judge(stats[CANARY], stats[SERVING], alone, elapsed_s=60).verdict is Verdict.WAIT
