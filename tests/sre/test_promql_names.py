"""The small PromQL name extractor the dashboard and live tests rely on."""

from __future__ import annotations

from tests.sre.promql_names import base_metric, metric_names, variables_used


def test_names_from_a_histogram_quantile() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (adapter, le) "
        '(rate(driftgate_gateway_ttft_seconds_bucket{adapter=~"$adapter", le!="x"}[5m])))'
    )
    assert metric_names(expr) == {"driftgate_gateway_ttft_seconds_bucket"}
    assert base_metric("driftgate_gateway_ttft_seconds_bucket") == "driftgate_gateway_ttft_seconds"


def test_names_with_colons_or_and_bare_selectors() -> None:
    expr = (
        "(sum by (replica) (rate(vllm:num_preemptions_total[5m]))) or "
        "(sum by (replica) (driftgate_gateway_upstream_up) * 0) / up"
    )
    assert metric_names(expr) == {
        "vllm:num_preemptions_total",
        "driftgate_gateway_upstream_up",
        "up",
    }


def test_strings_and_label_names_are_not_metrics() -> None:
    expr = 'max by (adapter, version, state) (driftgate_rollout_state{state="canary_x"}) == 1'
    assert metric_names(expr) == {"driftgate_rollout_state"}


def test_variables() -> None:
    assert variables_used('x{a=~"$adapter", b="${datasource}"}[$__rate_interval]') == {
        "adapter",
        "datasource",
        "__rate_interval",
    }


def test_label_values_takes_the_selector_only() -> None:
    assert metric_names('label_values(vllm:num_requests_running{model_name=~"$m"}, instance)') == {
        "vllm:num_requests_running"
    }
