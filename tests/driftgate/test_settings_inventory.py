"""Every setting each deployable reads, and who sets them: the stack, the chart, the docs.

A variable nobody reads (a typo, a renamed field, a service prefix on a shared fact) is
silently ignored by pydantic-settings; these tests make it fail here instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from driftgate.core.settings import (
    ADMIN_KEY_ENV,
    DRIFT_URL_ENV,
    ENGINE_API_KEY_ENV,
    GATEWAY_URL_ENV,
    HOME_ENV,
    INGEST_KEY_ENV,
    STATE_URL_ENV,
    env_names,
)
from driftgate.deployables.inventory import SETTINGS, settings_table, variables
from driftgate.settings import EngineSettings, StackSettings
from driftgate.stack import StackKeys, service_env, stack_urls

ROOT = Path(__file__).resolve().parents[2]
SHARED = {
    "state_url": STATE_URL_ENV,
    "admin_key": ADMIN_KEY_ENV,
    "gateway_url": GATEWAY_URL_ENV,
    "drift_url": DRIFT_URL_ENV,
}


def test_a_shared_fact_is_one_variable_everywhere() -> None:
    for classes in SETTINGS.values():
        for cls in classes:
            for env, name in env_names(cls).items():
                if name in SHARED:
                    assert env == SHARED[name], f"{cls.__name__}.{name} reads {env}"
    assert variables("gateway")[STATE_URL_ENV] == "GatewaySettings.state_url"
    assert {STATE_URL_ENV, HOME_ENV} <= set(variables("retrain_job"))


def test_the_docs_list_every_setting() -> None:
    docs = (ROOT / "docs" / "SETTINGS.md").read_text()
    assert docs.endswith(settings_table()), "regenerate: python -m driftgate.deployables.inventory"


def test_the_stack_sets_only_what_each_deployable_reads(tmp_path: Path) -> None:
    settings = StackSettings(home=tmp_path)
    keys = StackKeys("admin", "ingest", "engine")
    envs = service_env(settings, EngineSettings(), stack_urls(settings, EngineSettings()), keys)
    ours = {name: {k for k in env if k.startswith("DRIFTGATE_")} for name, env in envs.items()}
    assert ours["gateway"] - set(variables("gateway")) == set()
    # The retrain job is the drift service's child process: it inherits that environment.
    readers = set(variables("drift_service")) | set(variables("retrain_job"))
    assert ours["drift"] - readers == set()
    assert {STATE_URL_ENV, ADMIN_KEY_ENV, DRIFT_URL_ENV, INGEST_KEY_ENV} <= ours["gateway"]
    assert {STATE_URL_ENV, ADMIN_KEY_ENV, GATEWAY_URL_ENV, INGEST_KEY_ENV} <= ours["drift"]
    assert ENGINE_API_KEY_ENV in ours["gateway"] & set(variables("retrain_job"))
    assert {"DRIFTGATE_RETRAIN_ENGINE_URL", "DRIFTGATE_RETRAIN_BASE_MODEL_DIR"} <= ours["drift"]


def _container_env(container: dict[str, Any]) -> set[str]:
    return {e["name"] for e in container.get("env", []) if e["name"].startswith("DRIFTGATE_")}


@pytest.mark.parametrize("values_file", [None, "values-gpu-production.yaml"])
def test_the_chart_sets_only_what_each_deployable_reads(values_file: str | None) -> None:
    from tests.sre.chart_render import CHART, find, load_values, manifests

    values = load_values(CHART / values_file if values_file else None)
    values.setdefault("drift", {})["rolloutEnv"] = {
        "MIN_FEEDBACK": "100",
        "CONFIDENCE_MIN_REQUESTS": "200",
        "CONFIDENCE_MAX_DROP": "0.1",
    }
    docs = manifests(values)
    gateway = find(docs, "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    drift = find(docs, "Deployment", "-drift")["spec"]["template"]["spec"]["containers"][0]
    template = find(docs, "ConfigMap", "-retrain-job")["data"]["job.yaml"]
    retrain = yaml.safe_load(template)["spec"]["template"]["spec"]["containers"][0]
    assert _container_env(gateway) - set(variables("gateway")) == set()
    assert _container_env(drift) - set(variables("drift_service")) == set()
    assert _container_env(retrain) - set(variables("retrain_job")) == set()
    assert {STATE_URL_ENV, DRIFT_URL_ENV} <= _container_env(gateway)
    assert {
        STATE_URL_ENV,
        GATEWAY_URL_ENV,
        "DRIFTGATE_ROLLOUT_MIN_FEEDBACK",
        "DRIFTGATE_ROLLOUT_CONFIDENCE_MIN_REQUESTS",
        "DRIFTGATE_ROLLOUT_CONFIDENCE_MAX_DROP",
    } <= _container_env(drift)
    # the rollout controller presents the key the gateway checks (a generated one by default)
    assert ADMIN_KEY_ENV in _container_env(gateway) & _container_env(drift)
