"""Alert rules: promtool check and unit tests, runbooks, and coverage of every alert."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import yaml

from tests.sre.sre_helpers import ALERTS, GRAFANA, require_binary

RULE_FILES = sorted(ALERTS.glob("*.yaml"))
TEST_FILES = sorted((ALERTS / "tests").glob("*.test.yaml"))
#: The alerts the issue asks for, by what they watch.
REQUIRED = {
    "DriftgateDriftConfirmed",
    "DriftgateFeedbackDegrading",
    "DriftgateDriftStalled",
    "DriftgateAvailabilityBudgetBurnFast",
    "DriftgateAvailabilityBudgetBurnSlow",
    "DriftgateLatencyBudgetBurnFast",
    "DriftgateLatencyBudgetBurnSlow",
    "DriftgateHighLatency",
    "DriftgateUpstreamReplicaDown",
    "DriftgateAllUpstreamReplicasDown",
    "DriftgateEventsDropped",
    "DriftgateFeedbackServerErrors",
    "DriftgateEngineKVCacheFull",
    "DriftgateEngineRequestsWaiting",
    "DriftgateEnginePreempting",
    "DriftgateEngineLoRASlotsFull",
    "DriftgateRetrainFailing",
    "DriftgateRetrainRunOrphaned",
    "DriftgateRetrainTriggerFailing",
    "DriftgateCanaryRolledBack",
    "DriftgateRolloutFailed",
    "DriftgateRolloutStuck",
    "DriftgateAdapterLoadFailures",
    "DriftgateLoopStalled",
}
#: Alerts on a labelled counter's increase: each must fire on a series that starts absent
#: and appears at 1 (its first event), not only on one that starts at 0.
FIRST_EVENT = {
    "DriftgateDriftConfirmed",
    "DriftgateAdapterLoadFailures",
    "DriftgateRetrainFailing",
    "DriftgateRetrainTriggerFailing",
    "DriftgateCanaryRolledBack",
    "DriftgateRolloutFailed",
}


def _rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def test_promtool_check_rules() -> None:
    promtool = require_binary("promtool")
    assert RULE_FILES, "no rule files"
    proc = subprocess.run(
        [promtool, "check", "rules", *map(str, RULE_FILES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_unit_tests_pass() -> None:
    promtool = require_binary("promtool")
    assert TEST_FILES, "no promtool test files"
    proc = subprocess.run(
        [promtool, "test", "rules", *map(str, TEST_FILES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_unit_tests_catch_a_broken_rule(tmp_path: Any) -> None:
    """The unit tests are not vacuous: dropping the page's minimum traffic makes them fail
    (2 errors at 1 request a minute would page)."""
    promtool = require_binary("promtool")
    (tmp_path / "tests").mkdir()
    for path in RULE_FILES:
        text = path.read_text().replace("increase1h >= 100", "increase1h >= 1")
        (tmp_path / path.name).write_text(text)
    for path in TEST_FILES:
        (tmp_path / "tests" / path.name).write_text(path.read_text())
    proc = subprocess.run(
        [promtool, "test", "rules", *(str(tmp_path / "tests" / p.name) for p in TEST_FILES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "DriftgateAvailabilityBudgetBurnFast" in proc.stdout + proc.stderr


def test_every_required_alert_exists_with_runbook_and_severity() -> None:
    rules = {r["alert"]: r for r in _rules() if "alert" in r}
    assert set(rules) >= REQUIRED, f"missing alerts: {REQUIRED - set(rules)}"
    runbook = (GRAFANA / "RUNBOOKS.md").read_text()
    anchors = {h.strip().lower() for h in re.findall(r"^## (\S+)", runbook, re.M)}
    assert not any("annotations" in r for r in _rules() if "record" in r)
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        ann = rule["annotations"]
        assert ann.get("summary") and ann.get("description"), name
        url = ann["runbook_url"]
        assert url.startswith("grafana/RUNBOOKS.md#"), name
        assert url.split("#", 1)[1] in anchors, f"{name}: no runbook section {url}"


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = {r["alert"] for r in _rules() if "alert" in r}
    assert alerts <= fired, f"never tested firing: {alerts - fired}"
    assert alerts <= silent, f"never tested silent: {alerts - silent}"


def _cases() -> list[dict[str, Any]]:
    return [case for path in TEST_FILES for case in yaml.safe_load(path.read_text())["tests"]]


def test_counter_alerts_fire_on_a_series_that_starts_absent() -> None:
    """A first event whose series appears at 1 (increase() = 0 over it) still fires."""
    covered: set[str] = set()
    for case in _cases():
        born_at_one = {
            s["series"].split("{")[0]
            for s in case["input_series"]
            if s["values"].split()[0].startswith("_")
        }
        if not born_at_one:
            continue
        for check in case.get("alert_rule_test", []):
            if check.get("exp_alerts"):
                covered.add(check["alertname"])
    assert covered >= FIRST_EVENT, FIRST_EVENT - covered


def test_every_rule_keeps_namespace() -> None:
    for rule in _rules():
        for clause in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", rule["expr"]):
            labels = {label.strip() for label in clause.split(",")}
            assert "namespace" in labels or labels <= {"le"}, (rule.get("alert"), clause)
