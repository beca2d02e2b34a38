"""Prometheus export of recorded retrain runs (names in docs/CONTRACTS.md).

A collector that reads the ``retrain_runs`` table at scrape time, so whichever long-running
service registers it (the drift service) exports every run, including runs of jobs that
have exited::

    registry.register(RetrainRunsCollector(RunStore(state_url)))
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from driftgate.core.adapters import BASE_LABEL
from retrain.runs import OUTCOMES, RunStore


class RetrainRunsCollector(Collector):
    def __init__(self, store: RunStore) -> None:
        self.store = store

    def describe(self) -> list[Metric]:
        return []  # no database read at registration

    def collect(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "driftgate_retrain_runs",
            "Finished retrain runs by outcome.",
            labels=["adapter", "outcome"],
        )
        counts = self.store.counts()
        # Every outcome of every adapter with a run, at 0 until it happens: an alert's
        # increase() then sees the first failed run instead of a series born at 1.
        for adapter in self.store.adapters():
            for outcome in OUTCOMES:
                runs.add_metric([adapter, outcome], counts.get((adapter, outcome), 0))
        yield runs
        running = GaugeMetricFamily(
            "driftgate_retrain_oldest_running_started_timestamp_seconds",
            "Start time of the adapter's oldest run still recorded as running (absent if none).",
            labels=["adapter"],
        )
        for adapter, started in sorted(self.store.oldest_running().items()):
            running.add_metric([adapter], started)
        yield running
        duration = GaugeMetricFamily(
            "driftgate_retrain_duration_seconds",
            "Duration of the last finished retrain run.",
            labels=["adapter"],
        )
        score = GaugeMetricFamily(
            "driftgate_retrain_eval_score",
            "Held-out task score of the last run's candidate and of the version serving then.",
            labels=["adapter", "version", "role"],
        )
        for r in self.store.last_finished():
            if r.duration_s is not None:
                duration.add_metric([r.adapter], r.duration_s)
            if r.candidate_score is not None and r.candidate_version is not None:
                score.add_metric(
                    [r.adapter, str(r.candidate_version), "candidate"], r.candidate_score
                )
            if r.serving_score is not None:
                version = str(r.serving_version) if r.serving_version else BASE_LABEL
                score.add_metric([r.adapter, version, "serving"], r.serving_score)
        yield duration
        yield score
