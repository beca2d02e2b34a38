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

Answer confidence (the mean token logprob of each answer, no label needed) is
judged too when ``confidence_min_requests`` > 0 and both arms hold that many
successful requests with one. The candidate is rolled back when a one-sided
Welch z-test says its mean confidence is lower than the serving version's at
level ``alpha`` *and* it is lower by more than ``confidence_max_drop`` (large
windows make tiny differences significant). Where feedback is too scarce to
decide (below ``min_feedback`` on an arm), the candidate is promoted on
confidence once its mean is at least the serving version's minus
``confidence_max_drop``, unless the feedback there is says it is worse (a
one-sided Fisher exact test at ``alpha``: a veto, the canary waits). With
enough feedback, feedback decides as above, confidence only able to roll back.

>>> serving = VersionStats(requests=400, feedback=200, negative=20)
>>> worse = VersionStats(requests=400, feedback=200, negative=60)
>>> judge(worse, serving, JudgePolicy(min_feedback=100), elapsed_s=60).verdict.value
'rollback'
>>> same = VersionStats(requests=400, feedback=200, negative=22)
>>> judge(same, serving, JudgePolicy(min_feedback=100), elapsed_s=60).verdict.value
'promote'
>>> judge(VersionStats(), serving, JudgePolicy(), elapsed_s=1).verdict.value
'wait'

With little feedback, the confidence decides (here 3 votes per arm):

>>> on = JudgePolicy(min_feedback=30, min_requests=30, confidence_min_requests=40)
>>> v1 = VersionStats(requests=60, feedback=3, negative=1, confidence_requests=60,
...                   confidence_mean=-0.40, confidence_var=0.04)
>>> v2 = VersionStats(requests=60, feedback=3, confidence_requests=60,
...                   confidence_mean=-0.35, confidence_var=0.04)
>>> judge(v2, v1, on, elapsed_s=60).verdict.value
'promote'
>>> from dataclasses import replace
>>> unsure = replace(v2, confidence_mean=-0.70)
>>> judge(unsure, v1, on, elapsed_s=60).verdict.value
'rollback'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from scipy.stats import fisher_exact, norm

# What a version did over the window, as the drift store reads it (re-exported).
from drift.version_window import VersionStats as VersionStats

#: Fewest confident requests per arm with which the confidence z-test may run.
MIN_Z_SAMPLE = 10


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
    #: Successful requests with an answer confidence needed on each arm before confidence
    #: counts; 0 leaves confidence out of the judgement (feedback alone, as before).
    confidence_min_requests: int = 0
    #: Largest drop of the candidate's mean token logprob (nats) below the serving
    #: version's that still promotes; a larger, significant drop rolls back.
    confidence_max_drop: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        if not 0 < self.max_tenant_vote_share <= 1:
            raise ValueError("max_tenant_vote_share must be in (0, 1]")
        if self.min_feedback < 1 or self.min_requests < 1:
            raise ValueError("minimum sample sizes must be >= 1")
        if self.confidence_min_requests != 0 and self.confidence_min_requests < MIN_Z_SAMPLE:
            raise ValueError(
                f"confidence_min_requests must be 0 (off) or >= {MIN_Z_SAMPLE}: the z-test's "
                "normal approximation of a mean needs tens of samples"
            )
        if not 0 <= self.confidence_max_drop < math.inf:
            raise ValueError("confidence_max_drop must be finite and >= 0")

    @property
    def judges_confidence(self) -> bool:
        return self.confidence_min_requests > 0


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
    #: Lower mean confidence (Welch z), and worse scarce feedback (Fisher exact, the veto).
    p_confidence: float | None = None
    p_negative_exact: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "candidate": self.candidate.as_dict(),
            "serving": self.serving.as_dict(),
            "p_negative": self.p_negative,
            "p_errors": self.p_errors,
            "p_confidence": self.p_confidence,
            "p_negative_exact": self.p_negative_exact,
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


def lower_mean_p_value(
    mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int
) -> float:
    """One-sided Welch z-test of H1: mean(a) < mean(b), from each sample's mean, variance, size.

    >>> round(lower_mean_p_value(-0.5, 0.04, 100, -0.4, 0.04, 100), 4)  # z = 3.54
    0.0002
    >>> lower_mean_p_value(-0.4, 0.04, 100, -0.5, 0.04, 100) > 0.99
    True
    """
    if n_a <= 0 or n_b <= 0:
        raise ValueError("both samples must be non-empty")
    se = math.sqrt(var_a / n_a + var_b / n_b)
    if se == 0:  # no spread on either side: the means say it all
        return 0.0 if mean_a < mean_b else 1.0
    return float(norm.sf((mean_b - mean_a) / se))


def confidence_p_value(
    cand: VersionStats, serving: VersionStats, min_requests: int
) -> float | None:
    """p of the candidate's lower mean confidence; None below ``min_requests`` on an arm."""
    n_c, n_s = cand.confidence_requests, serving.confidence_requests
    if min(n_c, n_s) < max(min_requests, 2):
        return None
    mc, vc, ms, vs = (
        cand.confidence_mean,
        cand.confidence_var,
        serving.confidence_mean,
        serving.confidence_var,
    )
    if mc is None or vc is None or ms is None or vs is None:
        return None
    return lower_mean_p_value(mc, vc, n_c, ms, vs, n_s)


def scarce_feedback_p_value(cand: VersionStats, serving: VersionStats) -> float | None:
    """One-sided Fisher exact p of a higher negative rate on the candidate (exact at any
    sample size); None unless both arms have a vote.

    >>> v = VersionStats
    >>> round(scarce_feedback_p_value(v(feedback=5, negative=5), v(feedback=5)), 4)
    0.004
    >>> scarce_feedback_p_value(v(feedback=3, negative=1), v()) is None
    True
    """
    if cand.feedback <= 0 or serving.feedback <= 0:
        return None
    table = [
        [cand.negative, cand.feedback - cand.negative],
        [serving.negative, serving.feedback - serving.negative],
    ]
    return float(fisher_exact(table, alternative="greater").pvalue)


def judge(
    cand: VersionStats, serving: VersionStats, policy: JudgePolicy, *, elapsed_s: float
) -> Judgement:
    """The verdict on a canary after ``elapsed_s`` seconds."""
    p: dict[str, float | None] = {}

    def out(verdict: Verdict, reason: str) -> Judgement:
        return Judgement(verdict, reason, cand, serving, **p)

    enough_fb = cand.feedback >= policy.min_feedback and serving.feedback >= policy.min_feedback
    enough_rq = cand.requests >= policy.min_requests and serving.requests >= policy.min_requests
    if enough_fb:
        p_neg = p["p_negative"] = worse_p_value(
            cand.negative, cand.feedback, serving.negative, serving.feedback
        )
        if p_neg < policy.alpha:
            return out(
                Verdict.ROLLBACK,
                f"negative feedback {cand.negative_rate:.1%} vs {serving.negative_rate:.1%} "
                f"(p={p_neg:.2g} < {policy.alpha})",
            )
    if enough_rq:
        p_err = p["p_errors"] = worse_p_value(
            cand.errors, cand.requests, serving.errors, serving.requests
        )
        if p_err < policy.alpha:
            return out(
                Verdict.ROLLBACK,
                f"error rate {cand.error_rate:.1%} vs {serving.error_rate:.1%} "
                f"(p={p_err:.2g} < {policy.alpha})",
            )
        c, s = cand.latency_p50_ms, serving.latency_p50_ms
        limit = None if s is None else s * policy.latency_ratio + policy.latency_slack_ms
        if c is not None and limit is not None and c > limit:
            return out(
                Verdict.ROLLBACK,
                f"p50 latency {c:.0f} ms vs {s:.0f} ms (guard x{policy.latency_ratio:g})",
            )
    p_conf = None
    if policy.judges_confidence:
        p_conf = p["p_confidence"] = confidence_p_value(
            cand, serving, policy.confidence_min_requests
        )
    drop, confidence = 0.0, ""
    if p_conf is not None:  # both means are known
        assert cand.confidence_mean is not None and serving.confidence_mean is not None
        drop = serving.confidence_mean - cand.confidence_mean
        confidence = (
            f"mean token logprob {cand.confidence_mean:.3f} vs {serving.confidence_mean:.3f}"
            f" over {cand.confidence_requests}/{serving.confidence_requests} answers"
        )
        if p_conf < policy.alpha and drop > policy.confidence_max_drop:
            return out(
                Verdict.ROLLBACK,
                f"answer confidence: {confidence} (p={p_conf:.2g} < {policy.alpha}, drop "
                f"{drop:.3f} > {policy.confidence_max_drop:g})",
            )
    waiting = _collecting(cand, serving, policy)
    if enough_fb and enough_rq:
        cr, sr = cand.negative_rate, serving.negative_rate
        assert cr is not None and sr is not None
        if cr <= sr + policy.max_degradation:
            return out(
                Verdict.PROMOTE,
                f"negative feedback {cr:.1%} vs {sr:.1%} over {cand.feedback}/{serving.feedback}"
                " samples; errors and latency within bounds",
            )
    elif enough_rq and p_conf is not None:
        if drop > policy.confidence_max_drop:
            waiting = f"{confidence}: drop {drop:.3f} not significant yet (p={p_conf:.2g})"
        else:
            p_veto = p["p_negative_exact"] = scarce_feedback_p_value(cand, serving)
            if p_veto is None or p_veto >= policy.alpha:
                return out(
                    Verdict.PROMOTE,
                    f"{confidence} (drop <= {policy.confidence_max_drop:g}); feedback "
                    f"{cand.feedback}/{serving.feedback} too scarce to decide, not worse; "
                    "errors and latency within bounds",
                )
            waiting = (
                f"{confidence} would promote, but the feedback there is vetoes it: negative "
                f"{cand.negative}/{cand.feedback} vs {serving.negative}/{serving.feedback} "
                f"(p={p_veto:.2g} < {policy.alpha})"
            )
    if elapsed_s >= policy.timeout_s:
        verdict = Verdict(policy.on_timeout)
        return out(
            verdict, f"canary timed out after {elapsed_s:.0f} s without a decision: {verdict.value}"
        )
    return out(Verdict.WAIT, waiting)


def _collecting(cand: VersionStats, serving: VersionStats, policy: JudgePolicy) -> str:
    """Why the canary waits while the samples are short."""
    need = f"need {policy.min_feedback}, {policy.min_requests}"
    answers = ""
    if policy.judges_confidence:
        need += f"; or {policy.confidence_min_requests} answers with confidence and the requests"
        answers = (
            f", answers with confidence {cand.confidence_requests}/{serving.confidence_requests}"
        )
    return (
        f"collecting samples: feedback {cand.feedback}/{serving.feedback}, "
        f"requests {cand.requests}/{serving.requests}{answers} ({need})"
    )
