"""Run every dashboard query and alert rule against a real Prometheus scraping real targets.

:func:`check_live` is the whole check: given scrape targets (name -> base URL) and a
Prometheus binary it writes a config (the alert rules loaded as rule files), starts
Prometheus on 127.0.0.1 on a free port, waits until every target was scraped, fills each
dashboard's template variables from label values, runs every panel and annotation query and
every alert expression, and returns a :class:`LiveReport` saying which returned no data,
which failed, which metric names no target exports, and how each rule evaluated.
"""

from __future__ import annotations

import json
import math
import re
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.sre.promql_names import (
    annotation_queries,
    base_metric,
    metric_names,
    panel_queries,
    variable_queries,
)


class PrometheusError(RuntimeError):
    """Prometheus did not start, or answered a query with an error."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _get_json(url: str, timeout: float = 10.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as err:
        body = err.read().decode(errors="replace")
        raise PrometheusError(f"{url}: HTTP {err.code}: {body[:500]}") from err


#: prometheus_client 0.26 turns ``vllm:x`` into ``vllm_x`` in OpenMetrics sample lines (its
#: issue 1177), and Prometheus asks for OpenMetrics: restore the names at ingestion. The chart's
#: vLLM ServiceMonitor carries the same relabeling.
VLLM_NAME_REPAIR = {
    "source_labels": ["__name__"],
    "regex": "vllm_(.+)",
    "target_label": "__name__",
    "replacement": "vllm:${1}",
    "action": "replace",
}


def prometheus_config(targets: dict[str, str], rule_files: list[Path], interval_s: float) -> str:
    scrape_configs = []
    for job, base_url in targets.items():
        parsed = urllib.parse.urlsplit(base_url)
        scrape_configs.append(
            {
                "job_name": job,
                "scheme": parsed.scheme or "http",
                "metrics_path": (parsed.path.rstrip("/") or "") + "/metrics",
                "static_configs": [{"targets": [parsed.netloc]}],
                "metric_relabel_configs": [VLLM_NAME_REPAIR],
            }
        )
    every = f"{round(interval_s * 1000)}ms"
    config = {
        "global": {"scrape_interval": every, "evaluation_interval": every, "scrape_timeout": every},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": scrape_configs,
    }
    text: str = yaml.safe_dump(config, sort_keys=False)
    return text


@dataclass
class Prometheus:
    """A running Prometheus; query it with :meth:`query`."""

    url: str
    process: subprocess.Popen[bytes]

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        data = _get_json(f"{self.url}/api/v1/{path}?{query}")
        if data.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {data}")
        return data["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = (
            data["result"]
            if data["resultType"] == "vector"
            else [{"metric": {}, "value": data["result"]}]
        )
        return result

    def label_values(self, label: str, selector: str) -> list[str]:
        values: list[str] = self.api(f"label/{label}/values", **{"match[]": selector})
        return values

    def targets_scraped(self) -> dict[str, bool]:
        active = self.api("targets")["activeTargets"]
        return {t["labels"]["job"]: t["health"] == "up" for t in active}

    def rules(self) -> list[dict[str, Any]]:
        return [r for g in self.api("rules")["groups"] for r in g["rules"]]


@contextmanager
def run_prometheus(
    binary: str,
    targets: dict[str, str],
    rule_files: list[Path],
    interval_s: float = 1.0,
    start_timeout_s: float = 30.0,
) -> Iterator[Prometheus]:
    """Start Prometheus on 127.0.0.1:<free port> with its own config and storage; stop it after."""
    with tempfile.TemporaryDirectory(prefix="sre-prom-") as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text(prometheus_config(targets, rule_files, interval_s))
        port = free_port()
        log = open(Path(tmp) / "prometheus.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        prom = Prometheus(f"http://127.0.0.1:{port}", proc)
        try:
            deadline = time.monotonic() + start_timeout_s
            while True:
                if proc.poll() is not None:
                    raise PrometheusError(
                        "prometheus exited: " + (Path(tmp) / "prometheus.log").read_text()[-2000:]
                    )
                try:
                    urllib.request.urlopen(f"{prom.url}/-/ready", timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise PrometheusError("prometheus not ready in time") from None
                    time.sleep(0.1)
            yield prom
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


# --- template variables and query text --------------------------------------------------

_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)


def substitute(expr: str, variables: dict[str, str], rate_interval: str, range_: str) -> str:
    """Replace Grafana's variables the way Grafana would for one selected value each."""
    builtins = {"__rate_interval": rate_interval, "__range": range_, "__interval": rate_interval}
    values = {**builtins, **variables}

    def repl(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return re.sub(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))", repl, expr)


def fill_variables(
    prom: Prometheus,
    dashboard: dict[str, Any],
    rate_interval: str,
    range_: str,
    prefer: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Each query variable gets the first value its label_values() query finds (in order, so
    later variables see earlier ones; the placeholder ``-`` last), or the ``prefer`` value
    for ``"<dashboard uid>.<name>"`` or else ``name`` when that is among them (as an SRE
    picks the adapter under watch); ``.*`` (Grafana's "All") when there is none."""
    prefer = prefer or {}
    variables: dict[str, str] = {}
    for name, query in variable_queries(dashboard):
        wanted = prefer.get(f"{dashboard.get('uid')}.{name}", prefer.get(name))
        match = _LABEL_VALUES.match(substitute(query, variables, rate_interval, range_))
        if match is None:
            raise PrometheusError(f"variable {name}: unsupported query {query!r}")
        selector, label = match.group(1), match.group(2)
        # "-" is the gateway's label for requests refused before their tenant or model was
        # known (401, 403, 429): a real value but never what an SRE picks first.
        found = sorted(prom.label_values(label, selector), key=lambda v: (v != wanted, v == "-"))
        # A regex inside a PromQL double-quoted string: backslashes doubled, as Grafana does.
        variables[name] = re.escape(found[0]).replace("\\", "\\\\") if found else ".*"
    return variables


# --- the check -------------------------------------------------------------------------------


@dataclass
class QueryOutcome:
    where: str
    expr: str
    series: int = 0
    error: str | None = None

    @property
    def has_data(self) -> bool:
        return self.error is None and self.series > 0


@dataclass
class LiveReport:
    variables: dict[str, dict[str, str]] = field(default_factory=dict)
    panels: list[QueryOutcome] = field(default_factory=list)
    annotations: list[QueryOutcome] = field(default_factory=list)
    alerts: list[QueryOutcome] = field(default_factory=list)
    rule_health: dict[str, str] = field(default_factory=dict)
    unexported: set[str] = field(default_factory=set)

    def panels_without_data(self) -> list[str]:
        return [f"{q.where}: {q.error or 'no data'}" for q in self.panels if not q.has_data]

    def save_summary(self, name: str, **extra: Any) -> dict[str, Any]:
        """What an SRE would read first, written to ``results/<name>.json`` and returned."""
        summary = {
            **extra,
            "without_data": self.panels_without_data(),
            "unexported": sorted(self.unexported),
            "failed": self.failed(),
            "variables": self.variables,
        }
        out = Path(__file__).resolve().parents[2] / "results"
        out.mkdir(exist_ok=True)
        (out / f"{name}.json").write_text(json.dumps(summary, indent=2))
        return summary

    def failed(self) -> list[str]:
        """Queries Prometheus refused (any kind) and rules that did not evaluate cleanly."""
        bad = [
            f"{q.where}: {q.error}"
            for q in [*self.panels, *self.annotations, *self.alerts]
            if q.error
        ]
        bad += [
            f"rule {name}: {health}" for name, health in self.rule_health.items() if health != "ok"
        ]
        return bad


def _finite_series(result: list[dict[str, Any]]) -> int:
    count = 0
    for sample in result:
        value = float(sample["value"][1])
        if math.isfinite(value):
            count += 1
    return count


def run_query(prom: Prometheus, where: str, expr: str) -> QueryOutcome:
    outcome = QueryOutcome(where, expr)
    try:
        outcome.series = _finite_series(prom.query(expr))
    except PrometheusError as err:
        outcome.error = str(err)
    return outcome


def exported_names(base_urls: list[str]) -> set[str]:
    """Every sample name the targets' /metrics expositions declare (from TYPE lines)."""
    names: set[str] = set()
    suffixes = {
        "counter": ["_total", "_created"],
        "histogram": ["_bucket", "_sum", "_count"],
        "summary": ["_sum", "_count"],
    }
    for base in base_urls:
        with urllib.request.urlopen(f"{base.rstrip('/')}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[:2] == ["#", "TYPE"]:
                name, kind = parts[2], parts[3]
                names.add(name)
                names.update(name + s for s in suffixes.get(kind, []))
            elif line and not line.startswith("#"):
                names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def wait_for_scrapes(prom: Prometheus, jobs: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        health = prom.targets_scraped()
        if all(health.get(job) for job in jobs):
            return
        if time.monotonic() > deadline:
            raise PrometheusError(f"targets not scraped in time: {health}")
        time.sleep(0.25)


def check_live(
    binary: str,
    targets: dict[str, str],
    dashboards: list[dict[str, Any]],
    rule_files: list[Path],
    *,
    interval_s: float = 1.0,
    rate_interval: str = "15s",
    range_: str = "5m",
    settle_s: float = 4.0,
    during: Callable[[], None] | None = None,
    prefer: Mapping[str, str] | None = None,
) -> LiveReport:
    """Scrape ``targets`` with a fresh Prometheus and run every query; see the module doc.

    ``during`` is called once the targets are up (drive traffic there); queries run after
    it returns and ``settle_s`` more seconds of scrapes.
    """
    report = LiveReport()
    wanted = set()
    for dash in dashboards:
        for _, expr in [*panel_queries(dash), *annotation_queries(dash)]:
            wanted |= metric_names(expr)
    recorded: set[str] = set()
    for path in rule_files:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                wanted |= metric_names(rule["expr"])
                if "record" in rule:
                    recorded.add(rule["record"])
    wanted -= recorded  # series the rules write, not the targets
    with run_prometheus(binary, targets, rule_files, interval_s) as prom:
        wait_for_scrapes(prom, list(targets), timeout_s=30)
        if during is not None:
            during()
        time.sleep(settle_s)
        # After the traffic: labelled series exist only once something was counted.
        exported = exported_names(list(targets.values()))
        report.unexported = {
            n for n in wanted if n not in exported and base_metric(n) not in exported
        }
        for dash in dashboards:
            variables = fill_variables(prom, dash, rate_interval, range_, prefer)
            report.variables[dash["uid"]] = variables
            for title, expr in panel_queries(dash):
                report.panels.append(
                    run_query(
                        prom,
                        f"{dash['uid']} / {title}",
                        substitute(expr, variables, rate_interval, range_),
                    )
                )
            for name, expr in annotation_queries(dash):
                report.annotations.append(
                    run_query(
                        prom,
                        f"{dash['uid']} / annotation {name}",
                        substitute(expr, variables, rate_interval, range_),
                    )
                )
        for path in rule_files:
            for group in yaml.safe_load(path.read_text())["groups"]:
                for rule in group["rules"]:
                    kind = "alert" if "alert" in rule else "record"
                    where = f"{kind} {rule[kind]}"
                    report.alerts.append(run_query(prom, where, rule["expr"]))
        deadline = time.monotonic() + 10 * interval_s + 5
        while True:
            rules = prom.rules()
            report.rule_health = {
                r["name"]: r.get("health", "unknown")
                + (f" {r['lastError']}" if r.get("lastError") else "")
                for r in rules
            }
            if rules and all(h != "unknown" for h in report.rule_health.values()):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(interval_s)
    return report
