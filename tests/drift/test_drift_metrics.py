"""Drift metrics: counters an alert watches exist at 0 before their first event."""

from __future__ import annotations

from drift.metrics import DriftMetrics, VersionGauges


def test_confirmed_counter_exists_at_zero_once_the_version_is_known() -> None:
    m = DriftMetrics()
    labels = {"adapter": "support", "version": "3"}
    assert m.registry.get_sample_value("driftgate_drift_confirmed_total", labels) is None
    VersionGauges(m, "support", "3")
    assert m.registry.get_sample_value("driftgate_drift_confirmed_total", labels) == 0


def test_watched_counters_of_a_known_version_exist_at_zero() -> None:
    m = DriftMetrics()
    gauges = VersionGauges(m, "support", "3")
    get = m.registry.get_sample_value
    for kind in ("request", "feedback"):
        assert get("driftgate_drift_events_ingested_total", {"kind": kind}) == 0
    for outcome in ("started", "failed"):
        labels = {"adapter": "support", "outcome": outcome}
        assert get("driftgate_retrain_trigger_decisions_total", labels) == 0
    for negative in ("true", "false"):
        labels = {"adapter": "support", "version": "3", "negative": negative}
        assert get("driftgate_drift_feedback_total", labels) == 0
    gauges.count_feedback(True)
    labels = {"adapter": "support", "version": "3", "negative": "true"}
    assert get("driftgate_drift_feedback_total", labels) == 1
