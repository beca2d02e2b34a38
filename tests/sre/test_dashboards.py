"""Dashboards: in sync with their source and the chart, type-checked against @grafana/schema,
built only on contract metric names, and laid out sanely."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sre.promql_names import (
    annotation_queries,
    base_metric,
    metric_names,
    panel_queries,
    variable_queries,
    variables_used,
)
from tests.sre.sre_helpers import (
    ALERTS,
    CHART,
    DASHBOARDS,
    GRAFANA,
    REPO,
    require_node_package,
    run_script,
)

DASHBOARD_FILES = sorted(DASHBOARDS.glob("*.json"))
BUILTIN_VARIABLES = {"__rate_interval", "__range", "__interval", "__all"}


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def contract_metrics() -> set[str]:
    """driftgate_* names declared in docs/CONTRACTS.md."""
    text = (REPO / "docs" / "CONTRACTS.md").read_text()
    return set(re.findall(r"`(driftgate_[a-z0-9_]+)", text))


def vllm_metrics() -> set[str]:
    """vllm:* families the installed vLLM registers (counters with their _total suffix)."""
    spec = importlib.util.find_spec("vllm")
    if spec is None or spec.submodule_search_locations is None:
        pytest.fail("vllm is not installed in this venv (the engine extra)", pytrace=False)
    source = Path(next(iter(spec.submodule_search_locations))) / "v1" / "metrics" / "loggers.py"
    text = source.read_text()
    names = set(re.findall(r'"(vllm:[a-z0-9_]+)"', text))
    counters = {n for n in names if re.search(rf'_counter_cls\(\s*name="{re.escape(n)}"', text)}
    return names | {f"{n}_total" for n in counters}


def all_queries() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for path in DASHBOARD_FILES:
        dash = _load(path)
        for title, expr in [
            *panel_queries(dash),
            *annotation_queries(dash),
            *variable_queries(dash),
        ]:
            out.append((f"{path.name}: {title}", expr))
    for path in sorted(ALERTS.glob("*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                out.append((f"{path.name}: {rule.get('alert', rule.get('record'))}", rule["expr"]))
    return out


def recorded_metrics() -> set[str]:
    """Series the recording rules write (``driftgate:...``), usable by panels and alerts."""
    return {
        rule["record"]
        for path in sorted(ALERTS.glob("*.yaml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def test_four_dashboards_exist() -> None:
    assert [p.name for p in DASHBOARD_FILES] == [
        "drift.json",
        "engine.json",
        "gateway.json",
        "lifecycle.json",
    ]


def test_generated_files_are_in_sync() -> None:
    proc = run_script(GRAFANA / "build.py", "--check")
    assert proc.returncode == 0, proc.stderr


def test_chart_copies_are_byte_for_byte() -> None:
    for folder, pattern in ((ALERTS, "*.yaml"), (DASHBOARDS, "*.json")):
        kind = "alerts" if folder == ALERTS else "dashboards"
        sources = {p.name: p.read_bytes() for p in folder.glob(pattern)}
        copies = {p.name: p.read_bytes() for p in (CHART / "files" / kind).glob(pattern)}
        assert sources == copies, f"{kind}: run python grafana/build.py"


def test_dashboards_type_check_against_grafana_schema() -> None:
    require_node_package("@grafana/schema")
    require_node_package("typescript")
    proc = run_script(GRAFANA / "schema_check.py", *map(str, DASHBOARD_FILES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


MUTATIONS = {
    "number given as a string": lambda d: d["panels"][1]["gridPos"].update(h="8"),
    "unknown dashboard key": lambda d: d.update(refreshInterval="30s"),
    "unknown timeseries option": lambda d: next(
        p for p in d["panels"] if p["type"] == "timeseries"
    )["options"].update(legnd={}),
    "bad enum value": lambda d: next(p for p in d["panels"] if p["type"] == "timeseries")[
        "fieldConfig"
    ]["defaults"]["custom"].update(drawStyle="curvy"),
    "target without expr": lambda d: next(p for p in d["panels"] if p["type"] == "stat")["targets"][
        0
    ].pop("expr"),
    "unknown panel type": lambda d: d["panels"][1].update(type="graph-ng"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_schema_check_rejects_broken_dashboards(mutation: str, tmp_path: Path) -> None:
    require_node_package("@grafana/schema")
    dash = _load(DASHBOARDS / "gateway.json")
    MUTATIONS[mutation](dash)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(dash))
    proc = run_script(GRAFANA / "schema_check.py", str(broken))
    assert proc.returncode == 1, f"{mutation} passed the schema check"
    assert "error TS" in proc.stdout + proc.stderr


def test_every_metric_name_is_in_the_contract_or_vllm() -> None:
    known = contract_metrics() | vllm_metrics() | recorded_metrics()
    assert "driftgate_gateway_requests_total" in known
    assert "vllm:generation_tokens_total" in known
    unknown = {
        (where, name)
        for where, expr in all_queries()
        for name in metric_names(expr)
        if base_metric(name) not in known and name not in known
    }
    assert not unknown, sorted(unknown)


@pytest.mark.parametrize(
    ("file", "required"),
    [
        (
            "gateway.json",
            {
                "driftgate_gateway_requests_total",
                "driftgate_gateway_request_duration_seconds",
                "driftgate_gateway_ttft_seconds",
                "driftgate_gateway_tokens_total",
                "driftgate_gateway_in_flight",
                "driftgate_gateway_upstream_up",
                "driftgate_gateway_events_dropped_total",
            },
        ),
        (
            "drift.json",
            {
                "driftgate_drift_score",
                "driftgate_drift_alarms_total",
                "driftgate_drift_feature_mean",
                "driftgate_drift_negative_feedback_ratio",
                "driftgate_drift_embedding_distance",
                "driftgate_drift_confirmed_total",
            },
        ),
        (
            "lifecycle.json",
            {
                "driftgate_retrain_runs_total",
                "driftgate_retrain_duration_seconds",
                "driftgate_retrain_eval_score",
                "driftgate_rollout_state",
                "driftgate_rollout_canary_weight",
                "driftgate_rollout_answer_confidence",
            },
        ),
        (
            "engine.json",
            {
                "vllm:num_requests_running",
                "vllm:num_requests_waiting",
                "vllm:kv_cache_usage_perc",
                "vllm:generation_tokens_total",
                "vllm:time_to_first_token_seconds",
            },
        ),
    ],
)
def test_dashboard_covers_its_metrics(file: str, required: set[str]) -> None:
    dash = _load(DASHBOARDS / file)
    used = {
        base_metric(n)
        for _, e in [*panel_queries(dash), *annotation_queries(dash)]
        for n in metric_names(e)
    }
    assert required <= used, required - used


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_variables_defined_ids_unique_and_grid_sane(path: Path) -> None:
    dash = _load(path)
    defined = {v["name"] for v in dash["templating"]["list"]} | BUILTIN_VARIABLES
    used = variables_used(
        json.dumps(dash["panels"])
        + json.dumps(dash["annotations"])
        + json.dumps(dash["templating"])
    )
    assert used <= defined, used - defined
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dash["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        cover = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
        assert not cover & cells, f"{panel['title']} overlaps another panel"
        cells |= cover
    assert dash["uid"].startswith("driftgate-") and len(dash["uid"]) <= 40
