"""Rollout metrics: counters an alert watches exist at 0 before their first event."""

from __future__ import annotations

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
