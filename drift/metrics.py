"""Prometheus metrics of the drift service (names from ``docs/CONTRACTS.md``).

``driftgate_drift_score`` is how close a signal is to an alarm: the largest
streaming-detector statistic divided by its threshold (1.0 rings the alarm;
for the finish-reason category, ``-log10(p) / -log10(alpha)`` of the last
chi-square test). A drifted signal reports at least 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

from driftgate.core.loops import LoopMetrics

if TYPE_CHECKING:
    from drift.versions import VersionMonitor


#: Outcomes of ``driftgate_retrain_trigger_decisions_total`` (``drift.trigger``).
TRIGGER_OUTCOMES = ("started", "running", "cooldown", "off", "base", "failed")


class DriftMetrics:
    """The service's metrics on an explicit registry (one per app)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        #: The background loops' last success (``driftgate.core.loops``); the rollout
        #: controller mounted on this service reports its loop here too.
        self.loops = LoopMetrics(r)
        self.ingested = Counter(
            "driftgate_drift_events_ingested_total",
            "Events stored (new ones; duplicates excluded)",
            ["kind"],
            registry=r,
        )
        for kind in ("request", "feedback"):
            self.ingested.labels(kind)  # at 0: the drift-stalled alert compares increases
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
        self.feedback = Counter(
            "driftgate_drift_feedback_total",
            "First votes joined to the version that served the request, negative or not",
            ["adapter", "version", "negative"],
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
        self.trigger_decisions = Counter(
            "driftgate_retrain_trigger_decisions_total",
            "Retrain trigger decisions on confirmed drift, by outcome",
            ["adapter", "outcome"],
            registry=r,
        )


class VersionGauges:
    """The gauges of one (adapter, version), their label children looked up once.

    Updated after every batch, for every version in it; ``labels()`` costs a lock and a
    dict lookup per call, so the children are kept (as the gateway does for its metrics).
    """

    def __init__(self, metrics: DriftMetrics, adapter: str, version: str) -> None:
        self._metrics = metrics
        self._labels = (adapter, version)
        # At 0 from the moment the version is known, so an alert's increase() sees its
        # first confirmed drift rather than a series born at 1.
        metrics.confirmed.labels(adapter, version)
        for outcome in TRIGGER_OUTCOMES:
            metrics.trigger_decisions.labels(adapter, outcome)
        self._feedback = {
            negative: metrics.feedback.labels(adapter, version, str(negative).lower())
            for negative in (True, False)
        }
        self._signals: dict[str, tuple[Gauge, Gauge, Gauge]] = {}
        self._negative_ratio: Gauge | None = None

    def _children(self, signal: str) -> tuple[Gauge, Gauge, Gauge]:
        found = self._signals.get(signal)
        if found is None:
            m, labels = self._metrics, self._labels
            found = self._signals[signal] = (
                m.score.labels(*labels, signal),
                m.feature_mean.labels(*labels, signal, "current"),
                m.feature_mean.labels(*labels, signal, "reference"),
            )
        return found

    def count_feedback(self, negative: bool) -> None:
        self._feedback[negative].inc()

    def update(self, vm: VersionMonitor) -> None:
        for name, mon in vm.signals.items():
            score, current, reference = self._children(name)
            score.set(mon.score)
            cur = mon.current_mean
            if cur is not None:
                current.set(cur)
            if mon.ref_mean is not None:
                reference.set(mon.ref_mean)
        ratio = vm.negative_ratio
        if ratio is not None:
            if self._negative_ratio is None:
                self._negative_ratio = self._metrics.negative_ratio.labels(*self._labels)
            self._negative_ratio.set(ratio)
