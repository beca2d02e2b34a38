"""Rollout metrics (names in docs/CONTRACTS.md, section Rollout), on a registry passed in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from rollout.judge import VersionStats
from rollout.machine import Rollout, RolloutState


class RolloutMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.state = Gauge(
            "driftgate_rollout_state",
            "1 for the current state of the rollout of an adapter version",
            ["adapter", "version", "state"],
            registry=r,
        )
        self.canary_weight = Gauge(
            "driftgate_rollout_canary_weight",
            "Share of the logical adapter's traffic routed to the candidate version",
            ["adapter", "version"],
            registry=r,
        )
        self.transitions = Counter(
            "driftgate_rollout_transitions_total",
            "Rollout transitions by outcome (the state moved to)",
            ["adapter", "outcome"],
            registry=r,
        )
        self.requests = Gauge(
            "driftgate_rollout_requests",
            "Requests per version since the canary began",
            ["adapter", "version"],
            registry=r,
        )
        self.feedback = Gauge(
            "driftgate_rollout_feedback",
            "Feedback per version since the canary began (kind = all|negative)",
            ["adapter", "version", "kind"],
            registry=r,
        )
        self.answer_confidence = Gauge(
            "driftgate_rollout_answer_confidence",
            "Mean token logprob of the version's answers since the canary began (nats)",
            ["adapter", "version"],
            registry=r,
        )

    def observe(self, r: Rollout) -> None:
        """Set the state gauges of one rollout (its candidate version, 0 until reserved)."""
        version = str(r.candidate_version or 0)
        for s in RolloutState:
            self.state.labels(r.adapter, version, s.value).set(1 if s is r.state else 0)
            # At 0 once the adapter has a rollout, so an alert's increase() sees the first
            # rollback rather than a series born at 1.
            self.transitions.labels(r.adapter, s.value)
        weight = 0.0
        if r.state is RolloutState.CANARY:
            weight = r.canary_weight
        elif r.outcome == "promoted":
            weight = 1.0
        self.canary_weight.labels(r.adapter, version).set(weight)

    def moved(self, r: Rollout, to: RolloutState) -> None:
        self.transitions.labels(r.adapter, to.value).inc()

    def signals(self, adapter: str, stats: dict[int, VersionStats]) -> None:
        for v, st in stats.items():
            self.requests.labels(adapter, str(v)).set(st.requests)
            self.feedback.labels(adapter, str(v), "all").set(st.feedback)
            self.feedback.labels(adapter, str(v), "negative").set(st.negative)
            if st.confidence_mean is not None:
                self.answer_confidence.labels(adapter, str(v)).set(st.confidence_mean)
