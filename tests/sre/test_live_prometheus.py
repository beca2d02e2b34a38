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
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from driftgate.core.paths import DEFAULT_BASE_MODEL_NAME
from driftgate.engine import EngineProcess
from driftgate.stack import create_tenant
from tests.live import start_services
from tests.sre.live_prometheus import (
    LiveReport,
    Prometheus,
    check_live,
    run_prometheus,
    substitute,
    wait_for_scrapes,
)
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


def _compressed_rule(alert: str, scale: dict[str, str], tmp_path: Path) -> Path:
    """One alert of the rule files in a file of its own, its windows and ``for:`` shortened
    (``scale`` maps a duration as written to the one to use) so it runs in seconds."""
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == alert:
                    for long, short in scale.items():
                        rule["expr"] = rule["expr"].replace(f"[{long}]", f"[{short}]")
                    rule["for"] = scale[rule["for"]]
                    out = tmp_path / f"{alert}.yaml"
                    out.write_text(yaml.safe_dump({"groups": [{"name": alert, "rules": [rule]}]}))
                    return out
    raise AssertionError(f"no alert {alert}")


def _alert_states(prom: Prometheus, alert: str) -> list[str]:
    return [a["state"] for a in prom.api("alerts")["alerts"] if a["labels"]["alertname"] == alert]


def test_machinery_drift_stalled_fires_when_the_drift_target_dies(tmp_path: Path) -> None:
    """The drift-stalled expression, windows shortened (10m -> 6s, for 5m -> 2s), on a real
    Prometheus: silent while the stand-in's drift target ingests, firing once it is killed
    while the gateway target keeps serving. The real stack's version is an e2e test."""
    prometheus = require_binary("prometheus")
    rule = _compressed_rule("DriftgateDriftStalled", {"10m": "6s", "5m": "2s"}, tmp_path)
    with (
        MetricsStandIn() as exporter,
        run_prometheus(prometheus, exporter.targets, [rule], interval_s=0.5) as prom,
    ):
        wait_for_scrapes(prom, list(exporter.targets), timeout_s=30)
        time.sleep(8)  # a full window of healthy ingestion
        assert _alert_states(prom, "DriftgateDriftStalled") == []
        exporter.kill("drift")
        deadline = time.monotonic() + 40
        while _alert_states(prom, "DriftgateDriftStalled") != ["firing"]:
            assert time.monotonic() < deadline, "drift stalled never fired"
            time.sleep(0.5)


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


#: The drift-stalled rule on the real stack, windows shortened so the test takes a minute:
#: the increase windows (10m) become 20 s and ``for:`` (5m) 10 s.
STALLED_SCALE = {"10m": "20s", "5m": "10s"}


@pytest.mark.e2e
def test_live_stack_drift_stalled_fires_when_the_drift_service_is_killed(
    engine: EngineProcess, tmp_path: Path
) -> None:
    """A gateway and drift service of its own (the shared stack keeps its drift service) in
    front of the session's vLLM: the alert is silent while both run, and fires within its
    window plus ``for:`` once the drift service is killed while the gateway keeps serving."""
    prometheus = require_binary("prometheus")
    rule = _compressed_rule("DriftgateDriftStalled", STALLED_SCALE, tmp_path)
    stack, config = start_services(
        [engine.base_url], tmp_path / "home", env={"DRIFTGATE_DRIFT_TRIGGER_MODE": "off"}
    )
    serving = threading.Event()
    try:
        _, key = create_tenant(config.urls.gateway, config.admin_key, "acme", ["*"])
        targets = {"gateway": config.urls.gateway, "drift": config.urls.drift}

        def serve() -> None:
            headers = {"Authorization": f"Bearer {key}"}
            body = {
                "model": DEFAULT_BASE_MODEL_NAME,
                "max_tokens": 4,
                "messages": [{"role": "user", "content": "my login fails"}],
            }
            with httpx.Client(base_url=config.urls.gateway, headers=headers, timeout=60) as c:
                while serving.is_set():
                    c.post("/v1/chat/completions", json=body).raise_for_status()
                    time.sleep(0.5)

        with run_prometheus(prometheus, targets, [rule], interval_s=1.0) as prom:
            wait_for_scrapes(prom, list(targets), timeout_s=60)
            serving.set()
            client = threading.Thread(target=serve, daemon=True)
            client.start()
            time.sleep(30)  # a full window of traffic the drift service ingests
            assert _alert_states(prom, "DriftgateDriftStalled") == []
            stack.processes["drift"].stop()
            killed = time.monotonic()
            # the window empties (20 s), then for: (10 s), plus scrape and evaluation steps
            while _alert_states(prom, "DriftgateDriftStalled") != ["firing"]:
                assert client.is_alive(), "the gateway stopped serving"
                assert time.monotonic() - killed < 60, "drift stalled did not fire"
                time.sleep(1)
    finally:
        serving.clear()
        stack.stop()
