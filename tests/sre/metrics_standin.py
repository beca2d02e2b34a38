"""A stand-in exporter for the live-Prometheus machinery test (not the product's metrics).

Three real ``prometheus_client`` registries served over HTTP on 127.0.0.1 (free ports),
one per scrape target (gateway, drift, vLLM), carrying the metric names and labels of
docs/CONTRACTS.md and vLLM's ``vllm:`` names, with a thread that keeps moving them. It lets
``tests/sre/test_live_prometheus.py`` test the query machinery without the whole stack; the
e2e test in the same file runs it against the real services.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REPLICAS = ["http://127.0.0.1:18000", "http://127.0.0.1:18001"]


@dataclass
class _Exporter:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    m: dict[str, Any] = field(default_factory=dict)

    def counter(self, name: str, labels: list[str]) -> None:
        self.m[name] = Counter(name, name, labels, registry=self.registry)

    def gauge(self, name: str, labels: list[str]) -> None:
        self.m[name] = Gauge(name, name, labels, registry=self.registry)

    def histogram(self, name: str, labels: list[str]) -> None:
        self.m[name] = Histogram(
            name,
            name,
            labels,
            registry=self.registry,
            buckets=(0.05, 0.1, 0.5, 1, 2, 2.5, 5, 10, 30, 60),
        )


def _gateway() -> _Exporter:
    e = _Exporter()
    p = "driftgate_gateway_"
    e.counter(p + "requests_total", ["tenant", "adapter", "version", "endpoint", "status"])
    e.histogram(p + "request_duration_seconds", ["tenant", "adapter", "version", "endpoint"])
    e.histogram(p + "ttft_seconds", ["tenant", "adapter", "version"])
    e.counter(p + "tokens_total", ["tenant", "adapter", "version", "direction"])
    e.gauge(p + "in_flight", ["tenant", "adapter"])
    e.gauge(p + "upstream_up", ["replica"])
    e.gauge(p + "upstream_in_flight", ["replica"])
    e.gauge(p + "upstream_adapters_loaded", ["replica"])
    e.counter(p + "upstream_retries_total", ["replica", "reason"])
    e.counter(p + "events_sent_total", [])
    e.counter(p + "events_dropped_total", ["reason"])
    e.counter(p + "feedback_total", ["tenant", "status"])
    e.counter(p + "limiter_errors_total", ["reason"])
    e.gauge(p + "route_weight", ["adapter", "version"])
    e.counter(p + "adapter_loads_total", ["replica", "outcome"])
    _loops(e)
    return e


def _loops(e: _Exporter) -> None:
    e.gauge("driftgate_loop_last_success_timestamp_seconds", ["loop"])
    e.gauge("driftgate_loop_interval_seconds", ["loop"])
    e.counter("driftgate_loop_failures_total", ["loop"])


def _drift() -> _Exporter:
    e = _Exporter()
    p = "driftgate_drift_"
    e.counter(p + "events_ingested_total", ["kind"])
    e.counter(p + "events_rejected_total", ["reason"])
    e.counter(p + "events_duplicate_total", [])
    e.gauge(p + "score", ["adapter", "version", "signal"])
    e.counter(p + "alarms_total", ["adapter", "version", "signal", "detector"])
    e.counter(p + "confirmed_total", ["adapter", "version"])
    e.gauge(p + "feature_mean", ["adapter", "version", "signal", "window"])
    e.gauge(p + "negative_feedback_ratio", ["adapter", "version"])
    e.counter(p + "feedback_total", ["adapter", "version", "negative"])
    e.gauge(p + "embedding_distance", ["adapter", "version"])
    e.counter("driftgate_retrain_triggers_total", ["adapter", "reason"])
    e.counter("driftgate_retrain_trigger_decisions_total", ["adapter", "outcome"])
    e.gauge("driftgate_retrain_oldest_running_started_timestamp_seconds", ["adapter"])
    e.counter("driftgate_retrain_runs_total", ["adapter", "outcome"])
    e.gauge("driftgate_retrain_duration_seconds", ["adapter"])
    e.gauge("driftgate_retrain_eval_score", ["adapter", "version", "role"])
    e.gauge("driftgate_rollout_state", ["adapter", "version", "state"])
    e.gauge("driftgate_rollout_canary_weight", ["adapter", "version"])
    e.gauge("driftgate_rollout_requests", ["adapter", "version"])
    e.gauge("driftgate_rollout_feedback", ["adapter", "version", "kind"])
    e.gauge("driftgate_rollout_answer_confidence", ["adapter", "version"])
    e.counter("driftgate_rollout_transitions_total", ["adapter", "outcome"])
    _loops(e)
    return e


def _vllm() -> _Exporter:
    e = _Exporter()
    base = ["model_name", "engine"]
    e.gauge("vllm:num_requests_running", base)
    e.gauge("vllm:num_requests_waiting", base)
    e.gauge("vllm:kv_cache_usage_perc", base)
    e.counter("vllm:prompt_tokens", base)
    e.counter("vllm:generation_tokens", base)
    e.counter("vllm:request_success", [*base, "finished_reason"])
    e.counter("vllm:num_preemptions", base)
    for h in (
        "time_to_first_token_seconds",
        "inter_token_latency_seconds",
        "e2e_request_latency_seconds",
        "request_queue_time_seconds",
    ):
        e.histogram(f"vllm:{h}", base)
    e.gauge(
        "vllm:lora_requests_info", ["max_lora", "waiting_lora_adapters", "running_lora_adapters"]
    )
    return e


def _tick(gw: _Exporter, dr: _Exporter, vl: _Exporter, rng: random.Random) -> None:
    g, d, v = gw.m, dr.m, vl.m
    for version, share in (("3", 0.8), ("4", 0.2)):
        lab = {"tenant": "acme", "adapter": "support", "version": version}
        g["driftgate_gateway_requests_total"].labels(**lab, endpoint="chat", status="200").inc(3)
        g["driftgate_gateway_requests_total"].labels(**lab, endpoint="chat", status="503").inc(
            rng.random() < 0.5
        )
        g["driftgate_gateway_request_duration_seconds"].labels(**lab, endpoint="chat").observe(
            rng.uniform(0.2, 3)
        )
        g["driftgate_gateway_ttft_seconds"].labels(**lab).observe(rng.uniform(0.05, 0.6))
        g["driftgate_gateway_tokens_total"].labels(**lab, direction="prompt").inc(40)
        g["driftgate_gateway_tokens_total"].labels(**lab, direction="completion").inc(20)
        g["driftgate_gateway_route_weight"].labels(adapter="support", version=version).set(share)
        for signal in ("prompt_tokens", "completion_tokens", "latency_ms"):
            d["driftgate_drift_score"].labels("support", version, signal).set(rng.random())
            d["driftgate_drift_alarms_total"].labels("support", version, signal, "cusum").inc(
                rng.random() < 0.3
            )
            for window in ("current", "reference"):
                d["driftgate_drift_feature_mean"].labels("support", version, signal, window).set(
                    rng.uniform(10, 20)
                )
        d["driftgate_drift_confirmed_total"].labels("support", version).inc(rng.random() < 0.2)
        d["driftgate_drift_negative_feedback_ratio"].labels("support", version).set(rng.random())
        d["driftgate_drift_embedding_distance"].labels("support", version).set(rng.random())
        for negative in ("true", "false"):
            d["driftgate_drift_feedback_total"].labels("support", version, negative).inc()
        for role in ("candidate", "serving"):
            d["driftgate_retrain_eval_score"].labels("support", version, role).set(rng.random())
        d["driftgate_rollout_canary_weight"].labels("support", version).set(1 - share)
        d["driftgate_rollout_requests"].labels("support", version).set(rng.randint(10, 90))
        for kind in ("all", "negative"):
            d["driftgate_rollout_feedback"].labels("support", version, kind).set(rng.randint(0, 9))
        d["driftgate_rollout_answer_confidence"].labels("support", version).set(-rng.random())
        for state in ("canary", "serving"):
            d["driftgate_rollout_state"].labels("support", version, state).set(
                int((state == "canary") == (version == "4"))
            )
    g["driftgate_gateway_in_flight"].labels("acme", "support").set(rng.randint(0, 5))
    for i, replica in enumerate(REPLICAS):
        g["driftgate_gateway_upstream_up"].labels(replica).set(1)
        g["driftgate_gateway_upstream_in_flight"].labels(replica).set(rng.randint(0, 3))
        g["driftgate_gateway_upstream_adapters_loaded"].labels(replica).set(2)
        g["driftgate_gateway_upstream_retries_total"].labels(replica, "connect").inc(i)
        g["driftgate_gateway_adapter_loads_total"].labels(replica, "success").inc(
            rng.random() < 0.2
        )
    g["driftgate_gateway_events_sent_total"].inc(6)
    g["driftgate_gateway_events_dropped_total"].labels("queue_full").inc(rng.random() < 0.1)
    g["driftgate_gateway_feedback_total"].labels("acme", "202").inc()
    g["driftgate_gateway_limiter_errors_total"].labels("timeout").inc(0)
    d["driftgate_drift_events_ingested_total"].labels("request").inc(6)
    d["driftgate_drift_events_ingested_total"].labels("feedback").inc(1)
    d["driftgate_drift_events_rejected_total"].labels("invalid").inc(rng.random() < 0.1)
    d["driftgate_drift_events_duplicate_total"].inc(rng.random() < 0.1)
    d["driftgate_retrain_triggers_total"].labels("support", "drift").inc(rng.random() < 0.1)
    d["driftgate_retrain_trigger_decisions_total"].labels("support", "started").inc(
        rng.random() < 0.1
    )
    d["driftgate_retrain_oldest_running_started_timestamp_seconds"].labels("support").set(
        time.time() - 60
    )
    d["driftgate_retrain_runs_total"].labels("support", "promoted").inc(rng.random() < 0.1)
    d["driftgate_retrain_runs_total"].labels("support", "failed").inc(rng.random() < 0.05)
    d["driftgate_retrain_duration_seconds"].labels("support").set(rng.uniform(100, 300))
    d["driftgate_rollout_transitions_total"].labels("support", "promoted").inc(rng.random() < 0.1)
    now = time.time()
    for ex, loop in ((g, "state_refresh"), (d, "retention")):
        ex["driftgate_loop_last_success_timestamp_seconds"].labels(loop).set(now)
        ex["driftgate_loop_interval_seconds"].labels(loop).set(1.0)
        ex["driftgate_loop_failures_total"].labels(loop).inc(rng.random() < 0.05)
    base = {"model_name": "base", "engine": "0"}
    v["vllm:num_requests_running"].labels(**base).set(rng.randint(0, 8))
    v["vllm:num_requests_waiting"].labels(**base).set(rng.randint(0, 3))
    v["vllm:kv_cache_usage_perc"].labels(**base).set(rng.random())
    v["vllm:prompt_tokens"].labels(**base).inc(80)
    v["vllm:generation_tokens"].labels(**base).inc(40)
    v["vllm:request_success"].labels(**base, finished_reason="stop").inc(2)
    v["vllm:num_preemptions"].labels(**base).inc(rng.random() < 0.1)
    for h in (
        "time_to_first_token_seconds",
        "inter_token_latency_seconds",
        "e2e_request_latency_seconds",
        "request_queue_time_seconds",
    ):
        v[f"vllm:{h}"].labels(**base).observe(rng.uniform(0.01, 2))
    v["vllm:lora_requests_info"].labels("4", "", "support--v3,support--v4").set(1)


class MetricsStandIn:
    """Serve the three stand-in registries; ``targets`` maps job name to base URL."""

    def __init__(self, tick_s: float = 0.2, seed: int = 7) -> None:
        self._exporters = {"gateway": _gateway(), "drift": _drift(), "vllm": _vllm()}
        self._tick_s = tick_s
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._servers: dict[str, tuple[Any, Any]] = {}
        self.targets: dict[str, str] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        e = self._exporters
        while not self._stop.wait(self._tick_s):
            _tick(e["gateway"], e["drift"], e["vllm"], self._rng)

    def __enter__(self) -> MetricsStandIn:
        e = self._exporters
        _tick(e["gateway"], e["drift"], e["vllm"], self._rng)
        for job, exporter in e.items():
            server, thread = start_http_server(0, addr="127.0.0.1", registry=exporter.registry)
            self._servers[job] = (server, thread)
            self.targets[job] = f"http://127.0.0.1:{server.server_port}"
        self._thread.start()
        return self

    def kill(self, job: str) -> None:
        """Stop serving one target, as if its service died (its scrapes fail from now on)."""
        server, thread = self._servers.pop(job)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for job in list(self._servers):
            self.kill(job)
