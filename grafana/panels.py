"""Small builders for Grafana dashboard JSON (schemaVersion 39, Prometheus queries).

Plain functions that return JSON-ready dicts; :mod:`dashboards` composes them and
``build.py`` writes the files. Every query names its data source through the
``${datasource}`` template variable, so the same JSON works in a provisioned Grafana
(data source uid ``driftgate-prometheus``) and behind kube-prometheus-stack's sidecar.
"""

from __future__ import annotations

import re
from typing import Any

JSON = dict[str, Any]

SCHEMA_VERSION = 39
DATASOURCE: JSON = {"type": "prometheus", "uid": "${datasource}"}
#: Panel grid is 24 columns wide.
GRID_WIDTH = 24


def target(expr: str, legend: str = "__auto", ref: str = "A") -> JSON:
    """One Prometheus query of a panel."""
    return {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": True,
        "refId": ref,
    }


def _targets(queries: list[tuple[str, str]]) -> list[JSON]:
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(queries)]


def _thresholds(red_at: float | None) -> JSON:
    steps: list[JSON] = [{"color": "green", "value": None}]
    if red_at is not None:
        steps.append({"color": "red", "value": red_at})
    return {"mode": "absolute", "steps": steps}


def timeseries(
    title: str,
    queries: list[tuple[str, str]],
    *,
    unit: str = "short",
    description: str = "",
    red_at: float | None = None,
    stack: bool = False,
    min_value: float | None = None,
    max_value: float | None = None,
) -> JSON:
    """A time series panel; ``queries`` are (PromQL, legend format) pairs."""
    defaults: JSON = {
        "unit": unit,
        "color": {"mode": "palette-classic"},
        "thresholds": _thresholds(red_at),
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            "thresholdsStyle": {"mode": "off" if red_at is None else "dashed"},
        },
    }
    if min_value is not None:
        defaults["min"] = min_value
    if max_value is not None:
        defaults["max"] = max_value
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
                "calcs": ["lastNotNull", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": _targets(queries),
    }


def stat(
    title: str,
    queries: list[tuple[str, str]],
    *,
    unit: str = "short",
    description: str = "",
    red_at: float | None = None,
) -> JSON:
    """A single-value panel showing the last value of each series."""
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "color": {"mode": "thresholds"},
                "thresholds": _thresholds(red_at),
            },
            "overrides": [],
        },
        "options": {
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "percentChangeColorMode": "standard",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showPercentChange": False,
            "textMode": "auto",
            "wideLayout": True,
        },
        "targets": _targets(queries),
    }


def state_timeline(title: str, queries: list[tuple[str, str]], *, description: str = "") -> JSON:
    """A state timeline: one row per series, coloured by value (used for 1/0 state gauges)."""
    return {
        "type": "state-timeline",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {
            "defaults": {
                "color": {"mode": "thresholds"},
                "thresholds": {
                    "mode": "absolute",
                    "steps": [
                        {"color": "transparent", "value": None},
                        {"color": "blue", "value": 1},
                    ],
                },
                "custom": {"fillOpacity": 70, "lineWidth": 0},
            },
            "overrides": [],
        },
        "options": {
            "alignValue": "left",
            "mergeValues": True,
            "rowHeight": 0.9,
            "showValue": "never",
            "legend": {
                "displayMode": "list",
                "placement": "bottom",
                "showLegend": False,
                "calcs": [],
            },
            "tooltip": {"mode": "single", "sort": "none"},
        },
        "targets": _targets(queries),
    }


def row(title: str) -> JSON:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def layout(items: list[tuple[JSON, int, int]]) -> list[JSON]:
    """Place (panel, width, height) items left to right, wrapping at 24 columns; assign ids.

    A row always starts on a new line and spans the full width.
    """
    panels: list[JSON] = []
    x = y = line_height = 0
    for panel_id, (panel, width, height) in enumerate(items, start=1):
        if panel["type"] == "row":
            width, height = GRID_WIDTH, 1
        if panel["type"] == "row" or x + width > GRID_WIDTH:
            x, y, line_height = 0, y + line_height, 0
        placed = dict(panel, id=panel_id, gridPos={"h": height, "w": width, "x": x, "y": y})
        panels.append(placed)
        x += width
        line_height = max(line_height, height)
        if panel["type"] == "row":
            x, y, line_height = 0, y + 1, 0
    return panels


def datasource_variable() -> JSON:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {"selected": False, "text": "Prometheus", "value": "driftgate-prometheus"},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }


def query_variable(name: str, label: str, query: str, *, multi: bool = True) -> JSON:
    """A label_values() variable; "All" matches everything (``.*``)."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
        "regex": "",
        "options": [],
    }


def annotation(name: str, expr: str, color: str, title: str, text: str) -> JSON:
    """A Prometheus annotation: every sample of ``expr`` marks the graphs."""
    return {
        "name": name,
        "datasource": DATASOURCE,
        "enable": True,
        "hide": False,
        "iconColor": color,
        "expr": expr,
        "step": "60s",
        "titleFormat": title,
        "textFormat": text,
        "useValueForTime": False,
    }


def builtin_annotation() -> JSON:
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }


#: A driftgate or vLLM series name (recorded ``driftgate:`` ones too) and the brace after it.
_SERIES = re.compile(r"(?<![\w:$])((?:driftgate_|driftgate:|vllm:)[A-Za-z0-9_:]*)(\{\s*\}|\{)?")
IN_NAMESPACE = 'namespace=~"$namespace"'


def in_namespace(expr: str) -> str:
    """``expr`` with every driftgate and vLLM selector limited to the ``$namespace`` picked."""

    def scope(match: re.Match[str]) -> str:
        name, brace = match.group(1), match.group(2)
        if brace is None or brace != "{":
            return f"{name}{{{IN_NAMESPACE}}}"
        return f"{name}{{{IN_NAMESPACE}, "

    return _SERIES.sub(scope, expr)


def _scope_panels(panels: list[JSON]) -> list[JSON]:
    for panel in panels:
        for target in panel.get("targets", []):
            target["expr"] = in_namespace(target["expr"])
        _scope_panels(panel.get("panels", []))
    return panels


def _scope_variable(variable: JSON) -> JSON:
    variable["query"]["query"] = in_namespace(variable["query"]["query"])
    return variable


def dashboard(
    uid: str,
    title: str,
    description: str,
    variables: list[JSON],
    panels: list[JSON],
    annotations: list[JSON] | None = None,
    *,
    namespace_from: str,
) -> JSON:
    """A dashboard whose queries all follow a ``namespace`` variable (the Kubernetes
    namespace Prometheus labels every scraped series with; "All" where there is none),
    listed from the series ``namespace_from``."""
    scoped_annotations = [{**a, "expr": in_namespace(a["expr"])} for a in annotations or []]
    namespace = query_variable(
        "namespace", "Namespace", f"label_values({namespace_from}, namespace)"
    )
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["driftgate"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [
            {
                "title": "driftgate",
                "type": "dashboards",
                "tags": ["driftgate"],
                "asDropdown": True,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "annotations": {"list": [builtin_annotation(), *scoped_annotations]},
        "templating": {
            "list": [datasource_variable(), namespace, *map(_scope_variable, variables)]
        },
        "panels": _scope_panels(panels),
    }
