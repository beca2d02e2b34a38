"""Rollout metrics: counters an alert watches exist at 0 before their first event."""

from __future__ import annotations

from rollout.judge import VersionStats
from rollout.machine import Rollout, RolloutState
from rollout.metrics import RolloutMetrics


def test_transition_counters_exist_at_zero_once_the_adapter_has_a_rollout() -> None:
    m = RolloutMetrics()
    r = Rollout(id=1, adapter="support", path="/adapters/x", state=RolloutState.CANDIDATE)
    m.observe(r)
    for state in RolloutState:
        labels = {"adapter": "support", "outcome": state.value}
        assert m.registry.get_sample_value("driftgate_rollout_transitions_total", labels) == 0
    m.moved(r, RolloutState.ROLLED_BACK)
    labels = {"adapter": "support", "outcome": "rolled_back"}
    assert m.registry.get_sample_value("driftgate_rollout_transitions_total", labels) == 1


def test_answer_confidence_is_exported_where_a_version_has_one() -> None:
    m = RolloutMetrics()
    m.signals(
        "support",
        {
            1: VersionStats(requests=3),
            2: VersionStats(
                requests=3, confidence_requests=3, confidence_mean=-0.25, confidence_var=0.01
            ),
        },
    )
    get = m.registry.get_sample_value
    assert (
        get("driftgate_rollout_answer_confidence", {"adapter": "support", "version": "2"}) == -0.25
    )
    assert (
        get("driftgate_rollout_answer_confidence", {"adapter": "support", "version": "1"}) is None
    )
