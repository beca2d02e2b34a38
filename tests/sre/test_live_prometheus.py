"""Every dashboard panel's query and every alert rule, run by a real Prometheus (Debian's
package, started on 127.0.0.1 by the test) against scraped targets.

- ``test_machinery_*`` scrape a stand-in exporter (tests/sre/metrics_standin.py: real
  prometheus_client registries carrying the contract's metric names, not the product) to
  test the machinery itself, including that it reports a query with no data.
- ``test_live_stack_*`` (e2e) scrape the real gateway, drift service and vLLM from the
  ``live_stack`` fixture while this test sends real traffic through the gateway.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from typing import Any

import httpx
import pytest

from tests.sre.live_prometheus import LiveReport, check_live, substitute
from tests.sre.metrics_standin import MetricsStandIn
from tests.sre.sre_helpers import ALERTS, DASHBOARDS, require_binary

RULE_FILES = sorted(ALERTS.glob("*.yaml"))


def _dashboards() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]


def _typo_dashboard() -> dict[str, Any]:
    """A dashboard with one misspelled metric: the machinery must call it out."""
    return {
        "uid": "typo",
        "templating": {"list": []},
        "panels": [
            {
                "type": "timeseries",
                "title": "misspelled",
                "targets": [{"expr": "sum(rate(driftgate_gateway_request_total[1m]))"}],
            }
        ],
    }


def test_substitute_fills_variables_and_builtins() -> None:
    expr = 'rate(x{a=~"$adapter", d="${datasource}"}[$__rate_interval]) + y[$__range]'
    assert substitute(expr, {"adapter": "support"}, "15s", "5m") == (
        'rate(x{a=~"support", d="${datasource}"}[15s]) + y[5m]'
    )


@pytest.fixture(scope="module")
def standin_report() -> LiveReport:
    prometheus = require_binary("prometheus")
    with MetricsStandIn() as exporter:
        return check_live(
            prometheus,
            exporter.targets,
            [*_dashboards(), _typo_dashboard()],
            RULE_FILES,
            settle_s=6.0,
        )


def test_machinery_every_panel_has_data_on_the_standin(standin_report: LiveReport) -> None:
    missing = [m for m in standin_report.panels_without_data() if not m.startswith("typo")]
    assert missing == []
    assert standin_report.failed() == []
    assert len(standin_report.panels) > 60


def test_machinery_fills_variables_from_label_values(standin_report: LiveReport) -> None:
    assert standin_report.variables["driftgate-gateway"] == {
        "namespace": ".*",  # the stand-in's series carry none: "All"
        "tenant": "acme",
        "adapter": "support",
        "version": "3",
    }
    assert standin_report.variables["driftgate-engine"]["model_name"] == "base"
    assert standin_report.variables["driftgate-drift"]["signal"] in {
        "completion_tokens",
        "latency_ms",
        "prompt_tokens",
    }


def test_machinery_reports_a_misspelled_metric(standin_report: LiveReport) -> None:
    assert standin_report.panels_without_data() == ["typo / misspelled: no data"]
    assert standin_report.unexported == {"driftgate_gateway_request_total"}


def test_machinery_alert_rules_load_and_evaluate(standin_report: LiveReport) -> None:
    alerts = {a.where for a in standin_report.alerts}
    assert len(alerts) == len(standin_report.rule_health) >= 9
    assert set(standin_report.rule_health.values()) == {"ok"}
    # The stand-in has 503s and a failed retrain run: those alert expressions return data.
    by_name = {a.where: a for a in standin_report.alerts}
    assert by_name["alert DriftgateRetrainFailing"].has_data
    assert by_name["alert DriftgateAvailabilityBudgetBurnFast"].has_data
    # Every SLO recording rule has a value from the gateway's counters alone.
    records = [a for a in standin_report.alerts if a.where.startswith("record ")]
    assert len(records) == 20
    assert [r.where for r in records if not r.has_data] == []


# --- the real stack ---------------------------------------------------------------------------

#: Dashboards whose every panel has data after a few requests. The drift dashboard needs a
#: filled reference window and detector alarms, the lifecycle one a retrain run and a rollout:
#: tests/e2e/test_demo.py requires every panel of every dashboard after the closed loop.
SHORT_TRAFFIC_DASHBOARDS = ("driftgate-gateway", "driftgate-engine")


def _drive_traffic(stack: Any, requests: int = 8, concurrency: int = 4) -> None:
    """Bounded real traffic through the gateway (tenant acme, adapter support): chat and
    streaming chat, then feedback on each answer."""
    headers = {"Authorization": f"Bearer {stack.keys['acme']}"}
    with httpx.Client(base_url=stack.gateway_url, headers=headers, timeout=120) as client:

        def one(i: int) -> None:
            body = {
                "model": "support",
                "max_tokens": 16,
                "stream": i % 2 == 1,
                "messages": [{"role": "user", "content": f"Ticket {i}: my login fails"}],
            }
            request_id = None
            if body["stream"]:
                with client.stream("POST", "/v1/chat/completions", json=body) as resp:
                    resp.raise_for_status()
                    for _ in resp.iter_lines():
                        pass
                    request_id = resp.headers.get("x-request-id")
            else:
                resp = client.post("/v1/chat/completions", json=body)
                resp.raise_for_status()
                request_id = resp.headers.get("x-request-id") or resp.json()["id"]
            if request_id:
                client.post(
                    "/v1/feedback", json={"request_id": request_id, "score": float(i % 3 == 0)}
                )

        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(requests)))


@pytest.mark.e2e
def test_live_stack_panels_have_data(live_stack: Any) -> None:
    prometheus = require_binary("prometheus")
    targets = {
        "gateway": live_stack.gateway_url,
        "drift": live_stack.drift_url,
        "vllm": live_stack.engine_url,
    }
    started = time.monotonic()
    report = check_live(
        prometheus,
        targets,
        _dashboards(),
        RULE_FILES,
        rate_interval="2m",
        range_="15m",
        settle_s=5.0,
        during=lambda: _drive_traffic(live_stack),
    )
    summary = report.save_summary(
        "sre_live_prometheus",
        seconds=round(time.monotonic() - started, 1),
        panels=len(report.panels),
    )
    assert report.failed() == [], summary
    serving = [m for m in report.panels_without_data() if m.startswith(SHORT_TRAFFIC_DASHBOARDS)]
    assert serving == [], summary
    # The SLO recording rules (gateway counters and the streamed requests' TTFT) have values.
    records = [r.where for r in report.alerts if r.where.startswith("record ") and not r.has_data]
    assert records == [], summary
    serving_names = {n for n in report.unexported if n.startswith(("driftgate_gateway_", "vllm:"))}
    assert serving_names == set(), summary
