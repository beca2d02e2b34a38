"""Canary judgement on answer confidence: the Welch z-test, the margin, scarce feedback,
the feedback veto, and what stays as it was (off by default, feedback, errors, latency)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.stats import norm

from rollout.judge import (
    JudgePolicy,
    Verdict,
    VersionStats,
    judge,
    lower_mean_p_value,
    scarce_feedback_p_value,
)
from rollout.settings import RolloutSettings

ON = JudgePolicy(min_feedback=30, min_requests=30, timeout_s=600, confidence_min_requests=40)


def arm(mean: float, *, n: int = 80, var: float = 0.04, **kw: int) -> VersionStats:
    """A version with ``n`` answers of confidence ``mean`` (variance ``var``)."""
    fields: dict[str, int] = {"requests": n, **kw}
    return VersionStats(confidence_requests=n, confidence_mean=mean, confidence_var=var, **fields)


def test_welch_p_value_matches_the_formula() -> None:
    p = lower_mean_p_value(-0.5, 0.09, 50, -0.4, 0.04, 80)
    z = 0.1 / (0.09 / 50 + 0.04 / 80) ** 0.5
    assert p == pytest.approx(norm.sf(z))
    assert lower_mean_p_value(-0.5, 0.0, 10, -0.4, 0.0, 10) == 0.0
    assert lower_mean_p_value(-0.4, 0.0, 10, -0.4, 0.0, 10) == 1.0
    with pytest.raises(ValueError):
        lower_mean_p_value(-0.4, 0.1, 0, -0.4, 0.1, 10)


def test_off_by_default_feedback_alone_decides() -> None:
    default = JudgePolicy(min_feedback=30, min_requests=30, timeout_s=600)
    j = judge(arm(-0.1, feedback=2), arm(-0.9, feedback=2), default, elapsed_s=60)
    assert j.verdict is Verdict.WAIT and j.p_confidence is None
    assert "confidence" not in j.reason
    # a far less confident candidate is not rolled back on confidence either
    j = judge(
        arm(-2.0, feedback=40, negative=2),
        arm(-0.1, feedback=40, negative=2),
        default,
        elapsed_s=60,
    )
    assert j.verdict is Verdict.PROMOTE and j.p_confidence is None


def test_scarce_feedback_promotes_on_confidence_within_the_drop() -> None:
    serving = arm(-0.40, feedback=3, negative=1)
    # slightly less confident, but within confidence_max_drop (0.1): promoted
    j = judge(arm(-0.45, feedback=3), serving, ON, elapsed_s=60)
    assert j.verdict is Verdict.PROMOTE and "too scarce" in j.reason
    assert j.p_confidence is not None and j.p_negative is None
    d = j.as_dict()
    assert d["candidate"]["confidence_mean"] == -0.45 and d["p_confidence"] == j.p_confidence
    assert d["serving"]["confidence_requests"] == 80


def test_below_the_confidence_minimum_the_canary_waits() -> None:
    j = judge(arm(-0.1, n=39), arm(-0.4, n=39), ON, elapsed_s=60)
    assert j.verdict is Verdict.WAIT and j.p_confidence is None
    assert "answers with confidence 39/39" in j.reason
    # and the requests' minimum holds for the confidence path too
    few = JudgePolicy(min_requests=100, confidence_min_requests=40, timeout_s=600)
    assert judge(arm(-0.1), arm(-0.4), few, elapsed_s=60).verdict is Verdict.WAIT


def test_a_significant_drop_beyond_the_margin_rolls_back() -> None:
    serving = arm(-0.40)
    j = judge(arm(-0.60), serving, ON, elapsed_s=60)  # z = 6.3
    assert j.verdict is Verdict.ROLLBACK and "answer confidence" in j.reason
    assert j.p_confidence is not None and j.p_confidence < 1e-6
    # a significant drop within the margin is no rollback: with large windows any
    # difference is significant
    j = judge(arm(-0.48, n=5000), arm(-0.40, n=5000), ON, elapsed_s=60)
    assert j.p_confidence is not None and j.p_confidence < 1e-6
    assert j.verdict is Verdict.PROMOTE


def test_a_large_drop_not_yet_significant_waits_then_times_out() -> None:
    noisy = {"n": 40, "var": 1.0}
    j = judge(arm(-0.55, **noisy), arm(-0.40, **noisy), ON, elapsed_s=60)  # z = 0.67
    assert j.verdict is Verdict.WAIT and "not significant yet" in j.reason
    j = judge(arm(-0.55, **noisy), arm(-0.40, **noisy), ON, elapsed_s=600)
    assert j.verdict is Verdict.ROLLBACK and "timed out" in j.reason


def test_scarce_feedback_that_says_worse_vetoes_the_promotion() -> None:
    cand, serving = arm(-0.30, feedback=5, negative=5), arm(-0.40, feedback=5)
    assert scarce_feedback_p_value(cand, serving) == pytest.approx(1 / 252)
    j = judge(cand, serving, ON, elapsed_s=60)
    assert j.verdict is Verdict.WAIT and "vetoes" in j.reason
    assert j.p_negative_exact == pytest.approx(1 / 252) and j.p_negative is None
    # one negative vote of a few is no veto
    j = judge(arm(-0.30, feedback=3, negative=1), arm(-0.40, feedback=3), ON, elapsed_s=60)
    assert j.verdict is Verdict.PROMOTE and j.p_negative_exact == pytest.approx(0.5)


def test_enough_feedback_decides_as_before_and_confidence_can_still_roll_back() -> None:
    serving = arm(-0.40, feedback=100, negative=10)
    worse_fb = arm(-0.10, feedback=100, negative=30)
    j = judge(worse_fb, serving, ON, elapsed_s=60)
    assert j.verdict is Verdict.ROLLBACK and "negative feedback" in j.reason
    # feedback fine, confidence inconclusive beyond the margin: feedback promotes
    noisy = {"var": 1.0}
    j = judge(
        arm(-0.55, feedback=100, negative=10, **noisy),
        arm(-0.40, **noisy, feedback=100, negative=10),
        ON,
        elapsed_s=60,
    )
    assert j.verdict is Verdict.PROMOTE and "negative feedback" in j.reason
    # feedback fine, but significantly and far less confident: rolled back
    j = judge(arm(-0.90, feedback=100, negative=10), serving, ON, elapsed_s=60)
    assert j.verdict is Verdict.ROLLBACK and "answer confidence" in j.reason


def test_errors_and_latency_roll_back_before_confidence_promotes() -> None:
    serving = replace(arm(-0.40), errors=1, latency_p50_ms=300)
    errs = replace(arm(-0.30), errors=20, latency_p50_ms=300)
    assert "error rate" in judge(errs, serving, ON, elapsed_s=60).reason
    slow = replace(arm(-0.30), errors=1, latency_p50_ms=900)
    assert "latency" in judge(slow, serving, ON, elapsed_s=60).reason


def _skewed(rng: np.random.Generator, n: int, shift: float) -> VersionStats:
    """Answers mostly confident with a tail of unsure ones (an exponential's skew)."""
    x = -rng.exponential(0.3, n) - shift
    return arm(float(x.mean()), n=n, var=float(x.var(ddof=1)))


def test_false_rollbacks_are_at_most_alpha_and_real_drops_are_caught() -> None:
    """A/A canaries of 40 skewed answers per arm, no margin: the Welch z-test rolls back at
    about its level (0.0524 measured over 200,000 simulated pairs). Fails when nothing is
    wrong with chance 2.4e-4 (150 or more of 2,000 at a rate of 0.056); the drop of
    0.3 nats is caught with probability 0.995 (failing below 380 of 400: 1.4e-9)."""
    rng = np.random.default_rng(11)
    bare = replace(ON, confidence_max_drop=0.0)
    rollbacks = sum(
        judge(_skewed(rng, 40, 0.0), _skewed(rng, 40, 0.0), bare, elapsed_s=1).verdict
        is Verdict.ROLLBACK
        for _ in range(2000)
    )
    assert rollbacks < 150
    caught = sum(
        judge(_skewed(rng, 40, 0.3), _skewed(rng, 40, 0.0), ON, elapsed_s=1).verdict
        is Verdict.ROLLBACK
        for _ in range(400)
    )
    assert caught >= 380


def test_policy_and_settings_validation() -> None:
    with pytest.raises(ValueError, match="confidence_min_requests"):
        JudgePolicy(confidence_min_requests=5)
    with pytest.raises(ValueError, match="confidence_max_drop"):
        JudgePolicy(confidence_max_drop=-0.1)
    with pytest.raises(ValueError, match="confidence_max_drop"):
        JudgePolicy(confidence_max_drop=float("inf"))
    with pytest.raises(ValidationError, match="confidence_min_requests"):
        RolloutSettings(confidence_min_requests=3)
    with pytest.raises(ValidationError):
        RolloutSettings(confidence_max_drop=-1)
    judged = RolloutSettings(confidence_min_requests=24, confidence_max_drop=0.2).policy().judge
    assert (judged.confidence_min_requests, judged.confidence_max_drop) == (24, 0.2)
    assert RolloutSettings().policy().judge.judges_confidence is False
