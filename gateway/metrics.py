"""The gateway's Prometheus metrics (names from docs/CONTRACTS.md), one registry per app.

The hot path's labelled children are resolved once per label set
(:class:`RequestLabels`): one dict lookup per request instead of prometheus_client's
``labels()`` validation per metric.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from driftgate.core.loops import LoopMetrics

LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RequestLabels:
    """The children one (tenant, adapter, version, endpoint) counts into, resolved once.

    The hot path takes one of these per request (one dict lookup) instead of one
    label lookup per metric.
    """

    __slots__ = (
        "_labels",
        "_requests",
        "_status",
        "completion",
        "duration",
        "prompt",
        "ttft",
    )

    def __init__(self, m: GatewayMetrics, tenant: str, adapter: str, version: str, endpoint: str):
        self._requests = m.requests
        self._status: dict[int, Any] = {}
        self.duration = m.duration.labels(tenant, adapter, version, endpoint)
        self.ttft = m.ttft.labels(tenant, adapter, version)
        self.prompt = m.tokens.labels(tenant, adapter, version, "prompt")
        self.completion = m.tokens.labels(tenant, adapter, version, "completion")
        self._labels = (tenant, adapter, version, endpoint)

    def requests(self, status: int) -> Any:
        child = self._status.get(status)
        if child is None:
            child = self._status[status] = self._requests.labels(*self._labels, str(status))
        return child


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "driftgate_gateway_requests",
            "Requests answered, by HTTP status.",
            ["tenant", "adapter", "version", "endpoint", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "driftgate_gateway_request_duration_seconds",
            "Time from request arrival to the last byte.",
            ["tenant", "adapter", "version", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "driftgate_gateway_ttft_seconds",
            "Time to the first streamed token.",
            ["tenant", "adapter", "version"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "driftgate_gateway_tokens",
            "Tokens in (prompt) and out (completion).",
            ["tenant", "adapter", "version", "direction"],
            registry=r,
        )
        self.in_flight = Gauge(
            "driftgate_gateway_in_flight",
            "Requests being served.",
            ["tenant", "adapter"],
            registry=r,
        )
        self.upstream_up = Gauge(
            "driftgate_gateway_upstream_up",
            "1 when the replica is healthy.",
            ["replica"],
            registry=r,
        )
        self.upstream_in_flight = Gauge(
            "driftgate_gateway_upstream_in_flight",
            "Requests outstanding at the replica.",
            ["replica"],
            registry=r,
        )
        self.upstream_adapters_loaded = Gauge(
            "driftgate_gateway_upstream_adapters_loaded",
            "LoRA adapters the replica reports loaded (compare with its --max-loras).",
            ["replica"],
            registry=r,
        )
        self.upstream_slots_in_use = Gauge(
            "driftgate_gateway_upstream_slots_in_use",
            "Engine connection slots held (of upstream_connections); streams hold theirs.",
            registry=r,
        )
        self.upstream_queued = Gauge(
            "driftgate_gateway_upstream_queued",
            "Requests waiting for an engine connection slot.",
            registry=r,
        )
        self.upstream_retries = Counter(
            "driftgate_gateway_upstream_retries",
            "Requests retried on another replica, by reason.",
            ["replica", "reason"],
            registry=r,
        )
        self.events_sent = Counter(
            "driftgate_gateway_events_sent",
            "Request events accepted by the drift service.",
            registry=r,
        )
        self.events_dropped = Counter(
            "driftgate_gateway_events_dropped",
            "Request events dropped (queue_full, send_failed, rejected).",
            ["reason"],
            registry=r,
        )
        for reason in ("queue_full", "send_failed", "rejected"):
            self.events_dropped.labels(reason)  # at 0, so the first drop is an increase
        self.feedback = Counter(
            "driftgate_gateway_feedback",
            "Feedback requests by HTTP status.",
            ["tenant", "status"],
            registry=r,
        )
        self.limiter_errors = Counter(
            "driftgate_gateway_limiter_errors",
            "Failed calls to the shared limits store (timeout, connection, error); each "
            "request meanwhile is limited by this replica alone (fail open).",
            ["reason"],
            registry=r,
        )
        for reason in ("timeout", "connection", "error"):
            self.limiter_errors.labels(reason)  # at 0, so the first failure is an increase
        self.route_weight = Gauge(
            "driftgate_gateway_route_weight",
            "Route weight of an adapter version (normalised to 1 per adapter).",
            ["adapter", "version"],
            registry=r,
        )
        self.adapter_loads = Counter(
            "driftgate_gateway_adapter_loads",
            "LoRA load calls to replicas by outcome.",
            ["replica", "outcome"],
            registry=r,
        )
        #: The background loops' last success (``driftgate.core.loops``).
        self.loops = LoopMetrics(r)
        self._in_flight_cells: dict[tuple[str, str], list[int]] = {}
        self._request_labels: dict[tuple[str, str, str, str], RequestLabels] = {}

    def request_labels(
        self, tenant: str, adapter: str, version: str, endpoint: str
    ) -> RequestLabels:
        key = (tenant, adapter, version, endpoint)
        found = self._request_labels.get(key)
        if found is None:
            found = self._request_labels[key] = RequestLabels(self, *key)
        return found

    def in_flight_cell(self, tenant: str, adapter: str) -> list[int]:
        """A one-item list the hot path increments; the gauge reads it at scrape time."""
        key = (tenant, adapter)
        cell = self._in_flight_cells.get(key)
        if cell is None:
            cell = self._in_flight_cells[key] = [0]
            self.in_flight.labels(tenant, adapter).set_function(lambda: cell[0])
        return cell

    def set_route_weights(self, routes: dict[str, dict[int, float]]) -> None:
        """Export the current routes (normalised); stale series are removed."""
        self.route_weight.clear()
        for adapter, weights in routes.items():
            total = sum(weights.values())
            for version, w in weights.items():
                self.route_weight.labels(adapter, str(version)).set(w / total if total else 0.0)
