"""Canary judgement: the one-sided tests, minimum samples, latency guard, timeout."""

from __future__ import annotations

import random

import pytest
from scipy.stats import norm

from rollout.judge import JudgePolicy, Verdict, VersionStats, judge, worse_p_value

P = JudgePolicy(min_feedback=50, min_requests=50, timeout_s=600)


def test_p_value_matches_the_z_formula() -> None:
    p = worse_p_value(30, 100, 20, 100)
    pooled = 0.25
    z = (0.3 - 0.2) / (pooled * 0.75 * (2 / 100)) ** 0.5
    assert p == pytest.approx(norm.sf(z))
    assert worse_p_value(0, 10, 0, 10) == 1.0
    with pytest.raises(ValueError):
        worse_p_value(1, 0, 1, 10)


def test_minimum_sample_size_blocks_a_decision() -> None:
    # 10/20 vs 1/20 is significant, but below the minimum sample: wait.
    cand = VersionStats(requests=20, feedback=20, negative=10)
    serving = VersionStats(requests=20, feedback=20, negative=1)
    j = judge(cand, serving, P, elapsed_s=10)
    assert j.verdict is Verdict.WAIT and j.p_negative is None


def test_worse_feedback_rolls_back_equal_feedback_promotes() -> None:
    serving = VersionStats(requests=300, feedback=200, negative=20, latency_p50_ms=400)
    worse = VersionStats(requests=300, feedback=200, negative=45, latency_p50_ms=400)
    j = judge(worse, serving, P, elapsed_s=10)
    assert j.verdict is Verdict.ROLLBACK and j.p_negative is not None and j.p_negative < 0.05
    better = VersionStats(requests=300, feedback=200, negative=10, latency_p50_ms=380)
    assert judge(better, serving, P, elapsed_s=10).verdict is Verdict.PROMOTE


def test_not_significant_but_beyond_the_margin_keeps_waiting() -> None:
    serving = VersionStats(requests=60, feedback=60, negative=6)
    cand = VersionStats(requests=60, feedback=60, negative=11)  # +8 points, p ~ 0.1
    j = judge(cand, serving, P, elapsed_s=10)
    assert j.verdict is Verdict.WAIT and j.p_negative is not None and j.p_negative > 0.05


def test_error_rate_and_latency_guards() -> None:
    serving = VersionStats(requests=200, errors=2, feedback=60, negative=5, latency_p50_ms=300)
    errs = VersionStats(requests=200, errors=20, feedback=60, negative=5, latency_p50_ms=300)
    j = judge(errs, serving, P, elapsed_s=1)
    assert j.verdict is Verdict.ROLLBACK and "error rate" in j.reason
    slow = VersionStats(requests=200, errors=2, feedback=60, negative=5, latency_p50_ms=600)
    j = judge(slow, serving, P, elapsed_s=1)
    assert j.verdict is Verdict.ROLLBACK and "latency" in j.reason
    ok = VersionStats(requests=200, errors=2, feedback=60, negative=5, latency_p50_ms=340)
    assert judge(ok, serving, P, elapsed_s=1).verdict is Verdict.PROMOTE


def test_timeout_default() -> None:
    j = judge(VersionStats(), VersionStats(), P, elapsed_s=601)
    assert j.verdict is Verdict.ROLLBACK and "timed out" in j.reason
    promote = JudgePolicy(timeout_s=10, on_timeout="promote")
    assert judge(VersionStats(), VersionStats(), promote, elapsed_s=11).verdict is Verdict.PROMOTE


def test_false_rollback_rate_is_near_alpha_on_equal_versions() -> None:
    """Simulated A/A canaries: the test must not roll back much more often than alpha."""
    rng = random.Random(7)
    rollbacks = 0
    trials = 400
    for _ in range(trials):
        a = sum(rng.random() < 0.1 for _ in range(200))
        b = sum(rng.random() < 0.1 for _ in range(200))
        cand = VersionStats(requests=200, feedback=200, negative=a)
        serving = VersionStats(requests=200, feedback=200, negative=b)
        rollbacks += judge(cand, serving, P, elapsed_s=1).verdict is Verdict.ROLLBACK
    assert rollbacks / trials < 0.09
    # and a real degradation (10% -> 20%) is caught about as often as its power (~0.87)
    caught = 0
    for _ in range(100):
        a = sum(rng.random() < 0.2 for _ in range(200))
        b = sum(rng.random() < 0.1 for _ in range(200))
        cand = VersionStats(requests=200, feedback=200, negative=a)
        serving = VersionStats(requests=200, feedback=200, negative=b)
        caught += judge(cand, serving, P, elapsed_s=1).verdict is Verdict.ROLLBACK
    assert caught >= 78


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        JudgePolicy(alpha=0)
    with pytest.raises(ValueError):
        JudgePolicy(min_feedback=0)
