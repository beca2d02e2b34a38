"""Canary judgement: candidate vs serving version on live signals (pure).

Signals per version, counted over the same window (since the canary began):
requests, server errors, feedback and negative feedback, latency of the
successful requests. The drift store counts them over routed traffic only (a
version a client pinned, ``support@3``, is left out) and counts feedback as
votes: one per request, the requesting tenant's latest, and no tenant more than
``max_tenant_vote_share`` of a version's votes (:mod:`drift.version_window`).

The candidate is rolled back when a one-sided two-proportion z-test says its
negative-feedback rate (or its error rate) is higher than the serving version's
at level ``alpha``, or when its median latency exceeds the serving version's by
more than the latency guard. It is
promoted once both arms hold the minimum sample and none of that holds and its
observed negative-feedback rate is within ``max_degradation`` of the serving
version's. Otherwise the canary waits, until ``timeout_s`` takes the safe
default.

>>> serving = VersionStats(requests=400, feedback=200, negative=20)
>>> worse = VersionStats(requests=400, feedback=200, negative=60)
>>> judge(worse, serving, JudgePolicy(min_feedback=100), elapsed_s=60).verdict.value
'rollback'
>>> same = VersionStats(requests=400, feedback=200, negative=22)
>>> judge(same, serving, JudgePolicy(min_feedback=100), elapsed_s=60).verdict.value
'promote'
>>> judge(VersionStats(), serving, JudgePolicy(), elapsed_s=1).verdict.value
'wait'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from scipy.stats import norm

# What a version did over the window, as the drift store reads it (re-exported).
from drift.version_window import VersionStats as VersionStats


@dataclass(frozen=True, slots=True)
class JudgePolicy:
    #: Significance level of the one-sided tests.
    alpha: float = 0.05
    #: Feedback needed on each arm before the feedback test counts.
    min_feedback: int = 30
    #: Requests needed on each arm before error rate and latency count.
    min_requests: int = 30
    #: Promote only if the candidate's negative rate <= serving's + this.
    max_degradation: float = 0.05
    #: Roll back if the candidate's p50 latency > serving's * ratio + slack.
    latency_ratio: float = 1.5
    latency_slack_ms: float = 50.0
    #: No decision after this long: take ``on_timeout``.
    timeout_s: float = 1800.0
    on_timeout: Literal["rollback", "promote"] = "rollback"
    #: Most of a version's counted votes one tenant may supply (its excess is capped); at
    #: the default, one tenant alone never decides a canary, and two alike count whole.
    max_tenant_vote_share: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        if not 0 < self.max_tenant_vote_share <= 1:
            raise ValueError("max_tenant_vote_share must be in (0, 1]")
        if self.min_feedback < 1 or self.min_requests < 1:
            raise ValueError("minimum sample sizes must be >= 1")


class Verdict(StrEnum):
    WAIT = "wait"
    PROMOTE = "promote"
    ROLLBACK = "rollback"


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    reason: str
    candidate: VersionStats = field(default_factory=VersionStats)
    serving: VersionStats = field(default_factory=VersionStats)
    #: p-values of the one-sided tests that ran (None: not enough samples).
    p_negative: float | None = None
    p_errors: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "candidate": self.candidate.as_dict(),
            "serving": self.serving.as_dict(),
            "p_negative": self.p_negative,
            "p_errors": self.p_errors,
        }


def worse_p_value(bad_a: int, n_a: int, bad_b: int, n_b: int) -> float:
    """One-sided pooled two-proportion z-test of H1: rate(a) > rate(b).

    >>> round(worse_p_value(30, 100, 10, 100), 4)
    0.0002
    >>> worse_p_value(10, 100, 30, 100) > 0.99
    True
    """
    if n_a <= 0 or n_b <= 0:
        raise ValueError("both samples must be non-empty")
    pa, pb = bad_a / n_a, bad_b / n_b
    pooled = (bad_a + bad_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:  # both rates 0 or both 1: no evidence either way
        return 1.0 if pa <= pb else 0.0
    return float(norm.sf((pa - pb) / se))


def judge(
    cand: VersionStats, serving: VersionStats, policy: JudgePolicy, *, elapsed_s: float
) -> Judgement:
    """The verdict on a canary after ``elapsed_s`` seconds."""

    def out(verdict: Verdict, reason: str, **p: float | None) -> Judgement:
        return Judgement(verdict, reason, cand, serving, **p)

    p_neg: float | None = None
    p_err: float | None = None
    enough_fb = cand.feedback >= policy.min_feedback and serving.feedback >= policy.min_feedback
    enough_rq = cand.requests >= policy.min_requests and serving.requests >= policy.min_requests
    if enough_fb:
        p_neg = worse_p_value(cand.negative, cand.feedback, serving.negative, serving.feedback)
        if p_neg < policy.alpha:
            return out(
                Verdict.ROLLBACK,
                f"negative feedback {cand.negative_rate:.1%} vs {serving.negative_rate:.1%} "
                f"(p={p_neg:.2g} < {policy.alpha})",
                p_negative=p_neg,
            )
    if enough_rq:
        p_err = worse_p_value(cand.errors, cand.requests, serving.errors, serving.requests)
        if p_err < policy.alpha:
            return out(
                Verdict.ROLLBACK,
                f"error rate {cand.error_rate:.1%} vs {serving.error_rate:.1%} "
                f"(p={p_err:.2g} < {policy.alpha})",
                p_negative=p_neg,
                p_errors=p_err,
            )
        c, s = cand.latency_p50_ms, serving.latency_p50_ms
        limit = None if s is None else s * policy.latency_ratio + policy.latency_slack_ms
        if c is not None and limit is not None and c > limit:
            return out(
                Verdict.ROLLBACK,
                f"p50 latency {c:.0f} ms vs {s:.0f} ms (guard x{policy.latency_ratio:g})",
                p_negative=p_neg,
                p_errors=p_err,
            )
    if enough_fb and enough_rq:
        cr, sr = cand.negative_rate, serving.negative_rate
        assert cr is not None and sr is not None
        if cr <= sr + policy.max_degradation:
            return out(
                Verdict.PROMOTE,
                f"negative feedback {cr:.1%} vs {sr:.1%} over {cand.feedback}/{serving.feedback}"
                " samples; errors and latency within bounds",
                p_negative=p_neg,
                p_errors=p_err,
            )
    if elapsed_s >= policy.timeout_s:
        verdict = Verdict(policy.on_timeout)
        return out(
            verdict,
            f"canary timed out after {elapsed_s:.0f} s without a decision: {verdict.value}",
            p_negative=p_neg,
            p_errors=p_err,
        )
    return out(
        Verdict.WAIT,
        f"collecting samples: feedback {cand.feedback}/{serving.feedback}, "
        f"requests {cand.requests}/{serving.requests} (need {policy.min_feedback}, "
        f"{policy.min_requests})",
        p_negative=p_neg,
        p_errors=p_err,
    )
