"""The four driftgate dashboards, built on the metric names of docs/CONTRACTS.md.

``DASHBOARDS`` maps a file name to a builder; ``build.py`` writes the JSON. Rare-event
counters are written ``(sum(rate(x)) or sum(rate(some always-present series)) * 0)`` so a
healthy system shows 0 rather than "No data", while the query still needs the exporter up.
"""

from __future__ import annotations

from collections.abc import Callable

from panels import (
    JSON,
    annotation,
    dashboard,
    layout,
    query_variable,
    row,
    stat,
    state_timeline,
    timeseries,
)

RI = "$__rate_interval"
GW = 'tenant=~"$tenant", adapter=~"$adapter", version=~"$version"'
REQS = f"driftgate_gateway_requests_total{{{GW}}}"


def _quantiles(metric: str, selector: str, by: str = "") -> list[tuple[str, str]]:
    group = f"{by}, le" if by else "le"
    prefix = f"{{{{{by}}}}} " if by else ""
    return [
        (f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{selector}}}[{RI}])))",
         f"{prefix}p{int(q * 100)}")
        for q in (0.5, 0.95, 0.99)
    ]


def _zero_if_absent(expr: str, by: str, present: str) -> str:
    """``expr`` or 0 for every group of the always-present series ``present``."""
    return f"({expr}) or (sum by ({by}) ({present}) * 0)"


#: The SLOs' recorded error ratios (grafana/alerts/driftgate.rules.yaml), per window suffix,
#: and their error budgets (1 - objective): a burn rate is the ratio over the budget.
AVAIL = "driftgate:slo_availability_errors:ratio_rate"
LATENCY = "driftgate:slo_latency_errors:ratio_rate"
AVAILABILITY_BUDGET = 0.005
LATENCY_BUDGET = 0.01
SLO = 'adapter=~"$adapter"'


def gateway() -> JSON:
    err = f'sum by (adapter) (rate(driftgate_gateway_requests_total{{{GW}, status=~"5.."}}[{RI}]))'
    all_rate = f"sum by (adapter) (rate({REQS}[{RI}]))"
    items: list[tuple[JSON, int, int]] = [
        (row("Traffic"), 24, 1),
        (stat("Requests/s", [(f"sum(rate({REQS}[{RI}]))", "req/s")], unit="reqps"), 4, 4),
        (stat("Error ratio (5xx)", [(
            f"({_zero_if_absent(err, 'adapter', f'rate({REQS}[{RI}])')}) / {all_rate}",
            "{{adapter}}")], unit="percentunit", red_at=0.05), 5, 4),
        (stat("In flight", [('sum(driftgate_gateway_in_flight{tenant=~"$tenant", '
                              'adapter=~"$adapter"})', "in flight")]), 4, 4),
        (stat("Upstream replicas up", [(
            "sum(driftgate_gateway_upstream_up) / count(driftgate_gateway_upstream_up)",
            "up")], unit="percentunit"), 5, 4),
        (stat("Tokens/s", [(f"sum(rate(driftgate_gateway_tokens_total{{{GW}}}[{RI}]))",
                            "tok/s")]), 6, 4),
        (timeseries("Request rate by tenant and adapter", [(
            f"sum by (tenant, adapter, version) (rate({REQS}[{RI}]))",
            "{{tenant}} {{adapter}} v{{version}}")], unit="reqps"), 12, 8),
        (timeseries("Responses by status", [(
            f"sum by (status) (rate({REQS}[{RI}]))", "{{status}}")], unit="reqps", stack=True),
         12, 8),
        (timeseries("Error ratio (5xx) by adapter", [(
            f"({_zero_if_absent(err, 'adapter', f'rate({REQS}[{RI}])')}) / {all_rate}",
            "{{adapter}}")], unit="percentunit", red_at=0.05, min_value=0), 12, 8),
        (timeseries("In flight by tenant and adapter", [(
            'sum by (tenant, adapter) (driftgate_gateway_in_flight{tenant=~"$tenant", '
            'adapter=~"$adapter"})', "{{tenant}} {{adapter}}")]), 12, 8),
        (row("SLO: availability 99.5%, first token within 2.5 s for 99% (30 days)"), 24, 1),
        (stat("Availability budget left (30 d)", [(
            f"1 - {AVAIL}30d{{{SLO}}} / {AVAILABILITY_BUDGET}", "{{adapter}}")],
            unit="percentunit"), 6, 6),
        (timeseries("Availability burn rate", [
            (f"{AVAIL}1h{{{SLO}}} / {AVAILABILITY_BUDGET}", "{{adapter}} 1h"),
            (f"{AVAIL}6h{{{SLO}}} / {AVAILABILITY_BUDGET}", "{{adapter}} 6h"),
        ], red_at=14.4, min_value=0), 6, 6),
        (stat("Latency budget left (30 d)", [(
            f"1 - {LATENCY}30d{{{SLO}}} / {LATENCY_BUDGET}", "{{adapter}}")],
            unit="percentunit"), 6, 6),
        (timeseries("Latency burn rate (time to first token)", [
            (f"{LATENCY}1h{{{SLO}}} / {LATENCY_BUDGET}", "{{adapter}} 1h"),
            (f"{LATENCY}6h{{{SLO}}} / {LATENCY_BUDGET}", "{{adapter}} 6h"),
        ], red_at=14.4, min_value=0), 6, 6),
        (row("Latency and tokens"), 24, 1),
        (timeseries("Request duration", _quantiles(
            "driftgate_gateway_request_duration_seconds", GW), unit="s"), 8, 8),
        (timeseries("Time to first token (streaming)", _quantiles(
            "driftgate_gateway_ttft_seconds", GW), unit="s"), 8, 8),
        (timeseries("Tokens/s by adapter and direction", [(
            f"sum by (adapter, direction) (rate(driftgate_gateway_tokens_total{{{GW}}}[{RI}]))",
            "{{adapter}} {{direction}}")]), 8, 8),
        (timeseries("p95 request duration by adapter", _quantiles(
            "driftgate_gateway_request_duration_seconds", GW, by="adapter")[1:2], unit="s"),
         12, 8),
        (timeseries("Route weights", [(
            'driftgate_gateway_route_weight{adapter=~"$adapter"}',
            "{{adapter}} v{{version}}")], unit="percentunit", min_value=0, max_value=1), 12, 8),
        (row("Upstream (vLLM replicas) and events"), 24, 1),
        (state_timeline("Replica health (1 = up)", [(
            "max by (replica) (driftgate_gateway_upstream_up)", "{{replica}}")]), 12, 8),
        (timeseries("In flight per replica", [(
            "sum by (replica) (driftgate_gateway_upstream_in_flight)", "{{replica}}")]), 12, 8),
        (timeseries("Upstream retries", [(_zero_if_absent(
            f"sum by (replica) (rate(driftgate_gateway_upstream_retries_total[{RI}]))",
            "replica", "driftgate_gateway_upstream_up"), "{{replica}}")], unit="reqps"), 8, 8),
        (timeseries("Adapter loads by outcome", [(
            f"sum by (replica, outcome) (increase(driftgate_gateway_adapter_loads_total[{RI}]))",
            "{{replica}} {{outcome}}")]), 8, 8),
        (timeseries("Request events sent and dropped", [
            (f"sum(rate(driftgate_gateway_events_sent_total[{RI}]))", "sent"),
            (_zero_if_absent(
                f"sum by (reason) (rate(driftgate_gateway_events_dropped_total[{RI}]))",
                "job", f"rate(driftgate_gateway_events_sent_total[{RI}])"),
             "dropped {{reason}}"),
        ], unit="ops"), 8, 8),
        (timeseries("Feedback by tenant and status", [(
            f'sum by (tenant, status) (rate(driftgate_gateway_feedback_total{{tenant=~"$tenant"}}'
            f"[{RI}]))", "{{tenant}} {{status}}")], unit="reqps"), 16, 8),
        # Above 0, each replica limits tenants alone (fail open): N replicas admit N times.
        (timeseries("Limits store errors (replicas limiting alone)", [(
            f"sum by (reason) (rate(driftgate_gateway_limiter_errors_total[{RI}]))",
            "{{reason}}")], unit="ops", min_value=0), 8, 8),
    ]
    return dashboard(
        "driftgate-gateway", "driftgate / Gateway overview",
        "Traffic, errors, latency, tokens, upstream replicas and event delivery of the gateway.",
        [
            query_variable("tenant", "Tenant",
                           "label_values(driftgate_gateway_requests_total, tenant)"),
            query_variable("adapter", "Adapter",
                           'label_values(driftgate_gateway_requests_total{tenant=~"$tenant"}, '
                           "adapter)"),
            query_variable("version", "Version",
                           "label_values(driftgate_gateway_requests_total"
                           '{tenant=~"$tenant", adapter=~"$adapter"}, version)'),
        ],
        layout(items),
        namespace_from="driftgate_gateway_requests_total",
    )


DR = 'adapter=~"$adapter", version=~"$version"'


def drift() -> JSON:
    items: list[tuple[JSON, int, int]] = [
        (row("Detectors"), 24, 1),
        (timeseries("Drift score by signal", [(
            f'driftgate_drift_score{{{DR}, signal=~"$signal"}}',
            "{{adapter}} v{{version}} {{signal}}")]), 12, 9),
        (timeseries("Detector alarms", [(
            f'sum by (adapter, version, signal, detector) (increase(driftgate_drift_alarms_total'
            f'{{{DR}, signal=~"$signal"}}[{RI}]))',
            "{{adapter}} v{{version}} {{signal}} {{detector}}")]), 12, 9),
        (timeseries("Current vs reference feature mean", [(
            f'driftgate_drift_feature_mean{{{DR}, signal=~"$signal"}}',
            "{{adapter}} v{{version}} {{signal}} {{window}}")]), 24, 9),
        (row("Quality"), 24, 1),
        (timeseries("Negative-feedback ratio", [(
            f"driftgate_drift_negative_feedback_ratio{{{DR}}}", "{{adapter}} v{{version}}")],
            unit="percentunit", red_at=0.3, min_value=0, max_value=1), 12, 8),
        (timeseries("Embedding drift (distance to reference)", [(
            f"driftgate_drift_embedding_distance{{{DR}}}", "{{adapter}} v{{version}}")]), 12, 8),
        (stat("Drift confirmations (range)", [(_zero_if_absent(
            f"sum by (adapter, version) (increase(driftgate_drift_confirmed_total{{{DR}}}"
            "[$__range]))", "adapter, version", f"driftgate_drift_score{{{DR}}}"),
            "{{adapter}} v{{version}}")], red_at=1), 12, 5),
        (stat("Retrain triggers (range)", [(_zero_if_absent(
            "sum by (adapter, reason) (increase(driftgate_retrain_triggers_total"
            '{adapter=~"$adapter"}[$__range]))', "adapter", f"driftgate_drift_score{{{DR}}}"),
            "{{adapter}} {{reason}}")]), 12, 5),
        (row("Ingestion"), 24, 1),
        (timeseries("Events ingested by kind", [(
            f"sum by (kind) (rate(driftgate_drift_events_ingested_total[{RI}]))", "{{kind}}")],
            unit="ops"), 12, 8),
        (timeseries("Events rejected and duplicate", [
            (_zero_if_absent(
                f"sum by (reason) (rate(driftgate_drift_events_rejected_total[{RI}]))", "job",
                f"rate(driftgate_drift_events_ingested_total[{RI}])"), "rejected {{reason}}"),
            (f"sum(rate(driftgate_drift_events_duplicate_total[{RI}]))", "duplicate"),
        ], unit="ops"), 12, 8),
    ]
    return dashboard(
        "driftgate-drift", "driftgate / Drift",
        "Drift scores, alarms, feature means, feedback and embedding drift per adapter version.",
        [
            query_variable("adapter", "Adapter", "label_values(driftgate_drift_score, adapter)"),
            query_variable("version", "Version",
                           'label_values(driftgate_drift_score{adapter=~"$adapter"}, version)'),
            query_variable("signal", "Signal",
                           f"label_values(driftgate_drift_score{{{DR}}}, signal)"),
        ],
        layout(items),
        annotations=[
            annotation("Drift alarms", f"sum by (adapter, version, signal, detector) "
                       f"(changes(driftgate_drift_alarms_total{{{DR}}}[2m])) > 0", "orange",
                       "alarm {{detector}}", "{{adapter}} v{{version}} {{signal}}"),
            annotation("Drift confirmed", f"sum by (adapter, version) "
                       f"(changes(driftgate_drift_confirmed_total{{{DR}}}[2m])) > 0", "red",
                       "drift confirmed", "{{adapter}} v{{version}}"),
        ],
        namespace_from="driftgate_drift_events_ingested_total",
    )


LC = 'adapter=~"$adapter"'


def lifecycle() -> JSON:
    items: list[tuple[JSON, int, int]] = [
        (row("Retrain"), 24, 1),
        (stat("Retrain runs by outcome (range)", [(
            f"sum by (outcome) (increase(driftgate_retrain_runs_total{{{LC}}}[$__range]))",
            "{{outcome}}")]), 8, 6),
        (stat("Last retrain duration", [(
            f"driftgate_retrain_duration_seconds{{{LC}}}", "{{adapter}}")], unit="s"), 8, 6),
        (stat("Retrain triggers (range)", [(
            f"sum by (reason) (increase(driftgate_retrain_triggers_total{{{LC}}}[$__range]))",
            "{{reason}}")]), 8, 6),
        (timeseries("Retrain runs by outcome", [(
            f"sum by (adapter, outcome) (driftgate_retrain_runs_total{{{LC}}})",
            "{{adapter}} {{outcome}}")]), 12, 8),
        (timeseries("Eval score: candidate vs serving", [(
            f"driftgate_retrain_eval_score{{{LC}}}", "{{adapter}} v{{version}} {{role}}")],
            min_value=0), 12, 8),
        (row("Rollout"), 24, 1),
        (state_timeline("Rollout state", [(
            f"max by (adapter, version, state) (driftgate_rollout_state{{{LC}}}) == 1",
            "{{adapter}} v{{version}} {{state}}")]), 24, 7),
        (timeseries("Canary weight", [(
            f"driftgate_rollout_canary_weight{{{LC}}}", "{{adapter}} v{{version}}")],
            unit="percentunit", min_value=0, max_value=1), 12, 8),
        (timeseries("Route weights (gateway)", [(
            f"max by (adapter, version) (driftgate_gateway_route_weight{{{LC}}})",
            "{{adapter}} v{{version}}")], unit="percentunit", min_value=0, max_value=1), 12, 8),
        (timeseries("Rollout transitions by outcome", [(
            f"sum by (adapter, outcome) (driftgate_rollout_transitions_total{{{LC}}})",
            "{{adapter}} {{outcome}}")]), 24, 8),
        # What the canary judge reads, per arm since the canary began.
        (timeseries("Canary: requests and votes per version", [
            (f"max by (adapter, version) (driftgate_rollout_requests{{{LC}}})",
             "{{adapter}} v{{version}} requests"),
            (f"max by (adapter, version, kind) (driftgate_rollout_feedback{{{LC}}})",
             "{{adapter}} v{{version}} votes {{kind}}")], min_value=0), 12, 8),
        (timeseries("Canary: answer confidence (mean token logprob, nats)", [(
            f"max by (adapter, version) (driftgate_rollout_answer_confidence{{{LC}}})",
            "{{adapter}} v{{version}}")], max_value=0), 12, 8),
    ]
    return dashboard(
        "driftgate-lifecycle", "driftgate / Adapter lifecycle",
        "Retrain runs, evaluation of candidate against serving version, rollout and canary.",
        [query_variable("adapter", "Adapter",
                        "label_values(driftgate_retrain_runs_total, adapter)")],
        layout(items),
        annotations=[
            annotation("Retrain runs", f"sum by (adapter, outcome) "
                       f"(changes(driftgate_retrain_runs_total{{{LC}}}[2m])) > 0", "purple",
                       "retrain {{outcome}}", "{{adapter}}"),
            annotation("Rollout transitions", f"sum by (adapter, outcome) "
                       f"(changes(driftgate_rollout_transitions_total{{{LC}}}[2m])) > 0", "blue",
                       "rollout {{outcome}}", "{{adapter}}"),
        ],
        namespace_from="driftgate_rollout_state",
    )


EN = 'model_name=~"$model_name", instance=~"$instance"'


def engine() -> JSON:
    items: list[tuple[JSON, int, int]] = [
        (row("Scheduler"), 24, 1),
        (timeseries("Requests running and waiting", [
            (f"sum by (instance) (vllm:num_requests_running{{{EN}}})", "running {{instance}}"),
            (f"sum by (instance) (vllm:num_requests_waiting{{{EN}}})", "waiting {{instance}}"),
        ]), 12, 8),
        (timeseries("KV cache usage", [(
            f"max by (instance) (vllm:kv_cache_usage_perc{{{EN}}})", "{{instance}}")],
            unit="percentunit", red_at=0.9, min_value=0, max_value=1), 12, 8),
        (timeseries("Token throughput", [
            (f"sum by (instance) (rate(vllm:prompt_tokens_total{{{EN}}}[{RI}]))",
             "prompt {{instance}}"),
            (f"sum by (instance) (rate(vllm:generation_tokens_total{{{EN}}}[{RI}]))",
             "generation {{instance}}"),
        ]), 12, 8),
        (timeseries("Finished requests by reason", [(
            f"sum by (finished_reason) (rate(vllm:request_success_total{{{EN}}}[{RI}]))",
            "{{finished_reason}}")], unit="reqps", stack=True), 12, 8),
        (row("Latency"), 24, 1),
        (timeseries("Time to first token", _quantiles(
            "vllm:time_to_first_token_seconds", EN), unit="s"), 8, 8),
        (timeseries("Inter-token latency", _quantiles(
            "vllm:inter_token_latency_seconds", EN), unit="s"), 8, 8),
        (timeseries("End-to-end request latency", _quantiles(
            "vllm:e2e_request_latency_seconds", EN), unit="s"), 8, 8),
        (timeseries("Queue time p95", _quantiles(
            "vllm:request_queue_time_seconds", EN, by="instance")[1:2], unit="s"), 12, 8),
        (timeseries("Preemptions", [(
            f"sum by (instance) (rate(vllm:num_preemptions_total{{{EN}}}[{RI}]))",
            "{{instance}}")], unit="ops"), 12, 8),
        (row("LoRA"), 24, 1),
        (timeseries("LoRA adapters loaded per replica (gateway's view)", [(
            "max by (replica) (driftgate_gateway_upstream_adapters_loaded)", "{{replica}}")],
            min_value=0), 12, 8),
        # vllm:lora_requests_info's value is the time it was set: the adapters are its labels.
        (stat("LoRA adapters running and waiting (latest)", [(
            'topk by (instance) (1, vllm:lora_requests_info{instance=~"$instance"})',
            "{{instance}} running [{{running_lora_adapters}}] waiting "
            "[{{waiting_lora_adapters}}] of {{max_lora}}")], unit="dateTimeAsIso"), 12, 8),
    ]
    return dashboard(
        "driftgate-engine", "driftgate / vLLM engine",
        "vLLM's own metrics: scheduler queues, KV cache, token throughput and latency.",
        [
            query_variable("model_name", "Model",
                           "label_values(vllm:num_requests_running, model_name)"),
            query_variable("instance", "Replica", 'label_values(vllm:num_requests_running'
                                                  '{model_name=~"$model_name"}, instance)'),
        ],
        layout(items),
        namespace_from="vllm:num_requests_running",
    )


DASHBOARDS: dict[str, Callable[[], JSON]] = {
    "gateway.json": gateway,
    "drift.json": drift,
    "lifecycle.json": lifecycle,
    "engine.json": engine,
}
