"""Prometheus metrics of the drift service (names from ``docs/CONTRACTS.md``).

``driftgate_drift_score`` is how close a signal is to an alarm: the largest
streaming-detector statistic divided by its threshold (1.0 rings the alarm;
for the finish-reason category, ``-log10(p) / -log10(alpha)`` of the last
chi-square test). A drifted signal reports at least 1.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class DriftMetrics:
    """The service's metrics on an explicit registry (one per app)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.ingested = Counter(
            "driftgate_drift_events_ingested_total",
            "Events stored (new ones; duplicates excluded)",
            ["kind"],
            registry=r,
        )
        self.rejected = Counter(
            "driftgate_drift_events_rejected_total",
            "Events or batches refused, by reason",
            ["reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "driftgate_drift_events_duplicate_total",
            "Events received again (same event id) and not stored twice",
            registry=r,
        )
        self.score = Gauge(
            "driftgate_drift_score",
            "Closeness to an alarm per signal (1.0 = threshold)",
            ["adapter", "version", "signal"],
            registry=r,
        )
        self.alarms = Counter(
            "driftgate_drift_alarms_total",
            "Detector alarms (confirmed or not)",
            ["adapter", "version", "signal", "detector"],
            registry=r,
        )
        self.confirmed = Counter(
            "driftgate_drift_confirmed_total",
            "Confirmed drift per adapter version",
            ["adapter", "version"],
            registry=r,
        )
        self.feature_mean = Gauge(
            "driftgate_drift_feature_mean",
            "Mean of a signal over the current window and the reference window",
            ["adapter", "version", "signal", "window"],
            registry=r,
        )
        self.negative_ratio = Gauge(
            "driftgate_drift_negative_feedback_ratio",
            "Share of negative feedback since the service started (per version)",
            ["adapter", "version"],
            registry=r,
        )
        self.embedding_distance = Gauge(
            "driftgate_drift_embedding_distance",
            "Cosine distance of the recent prompt-embedding centroid from the reference one",
            ["adapter", "version"],
            registry=r,
        )
        self.triggers = Counter(
            "driftgate_retrain_triggers_total",
            "Retrains started on confirmed drift",
            ["adapter", "reason"],
            registry=r,
        )
