"""Pull metric names and template variables out of dashboards and rules (for the tests).

Pure functions over the JSON/YAML text; no PromQL parser is needed for our queries: a metric
name is an identifier (``vllm:`` names included) that is not followed by ``(`` and is not a
PromQL keyword, label name or function.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_NAME = re.compile(r"(?<![\w:$\"'])([a-zA-Z_:][a-zA-Z0-9_:]*)(?=\s*[{\[)\s]|$)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BY = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "le",
    "inf",
    "nan",
}
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def metric_names(expr: str) -> set[str]:
    """Metric names referenced in a PromQL expression."""
    text = _STRING.sub('""', expr)
    # Grafana's label_values(selector, label): the last argument is a label name.
    text = re.sub(r"^\s*label_values\((.*),\s*\w+\s*\)\s*$", r"\1", text, flags=re.S)
    text = _BY.sub("", text)
    text = re.sub(r"\{[^}]*\}", "{}", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # ranges
    names = set()
    for match in _NAME.finditer(text):
        name = match.group(1)
        after = text[match.end() :].lstrip()
        if after.startswith("(") or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def base_metric(name: str) -> str:
    """The exported family name of a sample name (histogram series suffixes removed)."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def variables_used(text: str) -> set[str]:
    return {a or b for a, b in _VARIABLE.findall(text)}


def panel_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, expr) for every query of every panel, rows' nested panels included."""
    for panel in dashboard.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                yield inner.get("title", "?"), target["expr"]


def annotation_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for ann in dashboard.get("annotations", {}).get("list", []):
        if "expr" in ann:
            yield ann["name"], ann["expr"]


def variable_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(variable name, label_values(...) query) for query variables, in dashboard order."""
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]
            yield var["name"], query["query"] if isinstance(query, dict) else query
