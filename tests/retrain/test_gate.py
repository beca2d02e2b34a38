"""The evaluation gate's decision rules."""

from __future__ import annotations

import pytest

from retrain.gate import EvalReport, GatePolicy, SplitScores, decide

#: Default golden score of :func:`report`: a golden set is there unless a test says not.
GOLDEN = 0.9


def report(
    task: float, golden: float | None = GOLDEN, n: int = 20, rouge: float = 0.5
) -> EvalReport:
    g = None if golden is None else SplitScores(task=golden, rouge_l=rouge, n=10)
    return EvalReport(heldout=SplitScores(task=task, rouge_l=rouge, n=n), golden=g)


def test_better_candidate_promoted_worse_rejected() -> None:
    pol = GatePolicy(margin=0.05)
    assert decide(report(0.8), report(0.6), pol).promote
    worse = decide(report(0.5), report(0.6), pol)
    assert not worse.promote
    assert any("does not beat" in r for r in worse.reasons)


def test_margin_is_required() -> None:
    assert not decide(report(0.63), report(0.6), GatePolicy(margin=0.05)).promote
    assert decide(report(0.7), report(0.6), GatePolicy(margin=0.1)).promote  # float-safe


def test_zero_margin_needs_strictly_better() -> None:
    assert not decide(report(0.6), report(0.6), GatePolicy(margin=0.0)).promote
    assert decide(report(0.61), report(0.6), GatePolicy(margin=0.0)).promote


def test_golden_floor_and_drop() -> None:
    pol = GatePolicy(margin=0.05, golden_floor=0.7)
    d = decide(report(0.9, golden=0.6), report(0.5, golden=0.9), pol)
    assert not d.promote and any("below floor" in r for r in d.reasons)
    assert decide(report(0.9, golden=0.75), report(0.5, golden=0.9), pol).promote
    strict = GatePolicy(margin=0.05, golden_floor=0.7, golden_max_drop=0.1)
    d = decide(report(0.9, golden=0.75), report(0.5, golden=0.9), strict)
    assert not d.promote and any("dropped more than" in r for r in d.reasons)


def test_rouge_never_decides() -> None:
    d = decide(report(0.5, rouge=1.0), report(0.8, rouge=0.0), GatePolicy())
    assert not d.promote
    d = decide(report(0.9, rouge=0.0), report(0.5, rouge=1.0), GatePolicy())
    assert d.promote
    assert any("reported only" in r for r in d.reasons)


def test_no_serving_report_compares_to_zero() -> None:
    assert decide(report(0.5), None, GatePolicy(margin=0.1)).promote
    assert not decide(report(0.0), None, GatePolicy(margin=0.0)).promote


def test_too_few_heldout_rejected() -> None:
    d = decide(report(1.0, n=2), report(0.0), GatePolicy(min_heldout=5))
    assert not d.promote


def test_decision_serialises() -> None:
    d = decide(report(0.9, golden=0.9), report(0.5), GatePolicy())
    body = d.to_dict()
    assert body["promote"] is True
    assert body["candidate"]["golden"]["task"] == 0.9
    assert body["policy"]["margin"] == 0.02


def test_no_golden_set_no_promotion() -> None:
    """The held-out split comes from feedback: alone, it is no evidence to promote on."""
    d = decide(report(1.0, golden=None), report(0.0, golden=None), GatePolicy())
    assert not d.promote
    assert any("no golden set" in r for r in d.reasons)
    empty = EvalReport(heldout=SplitScores(1.0, 1.0, 20), golden=SplitScores(0.0, 0.0, 0))
    assert not decide(empty, report(0.0), GatePolicy()).promote


def test_the_opt_out_promotes_on_held_out_alone_and_says_so() -> None:
    pol = GatePolicy(require_golden=False)
    d = decide(report(1.0, golden=None), report(0.0, golden=None), pol)
    assert d.promote
    assert any("opted out" in r for r in d.reasons)
    assert d.to_dict()["policy"]["require_golden"] is False
    assert not decide(report(0.0, golden=None), report(0.5, golden=None), pol).promote


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        GatePolicy(margin=1.5)
    with pytest.raises(ValueError):
        GatePolicy(min_heldout=0)
