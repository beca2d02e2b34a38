"""Every setting a deployable needs in a cluster, checked against what the chart gives its pods
(``tests/driftgate/test_settings_inventory.py`` checks the converse: the chart sets only
what a deployable reads).

The settings list is ``driftgate.deployables.inventory`` (what each deployable reads from
its environment); the pods are the rendered chart's. A setting the chart leaves unset
keeps its code default, and some defaults only work on one machine (a loopback URL, a
SQLite file): those the chart must set.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from driftgate.core.settings import env_names
from driftgate.deployables.inventory import SETTINGS
from tests.sre.chart_render import PRODUCTION_VALUES, find, load_values, manifests

#: Defaults that name this machine: in a pod they point at the pod itself.
_LOCAL_ONLY = ("127.0.0.1", "localhost", "[::1]", "sqlite:")

#: Settings whose default is "off" in code but which the loop needs in a cluster.
NEEDED_IN_CLUSTER = {
    "gateway": {
        "DRIFTGATE_DRIFT_URL",
        "DRIFTGATE_INGEST_KEY",
        "DRIFTGATE_ENGINE_API_KEY",
        "DRIFTGATE_ADMIN_KEY",
    },
    "drift_service": {"DRIFTGATE_GATEWAY_URL", "DRIFTGATE_INGEST_KEY", "DRIFTGATE_ADMIN_KEY"},
    "retrain_job": {
        "DRIFTGATE_ENGINE_API_KEY",
        "DRIFTGATE_RETRAIN_SERVED_MODEL_NAME",
        # its default names the demo's small model in $DRIFTGATE_HOME
        "DRIFTGATE_RETRAIN_BASE_MODEL_DIR",
    },
}


def containers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The pod spec of each deployable, as the chart renders it."""
    job = yaml.safe_load(find(docs, "ConfigMap", "-retrain-job")["data"]["job.yaml"])
    return {
        "gateway": find(docs, "Deployment", "-gateway")["spec"]["template"]["spec"],
        "drift_service": find(docs, "Deployment", "-drift")["spec"]["template"]["spec"],
        "retrain_job": job["spec"]["template"]["spec"],
    }


def env_of(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in pod["containers"][0].get("env", [])}


def local_only_defaults(deployable: str) -> set[str]:
    """Variables whose default (factories called) names this machine."""
    found = set()
    for cls in SETTINGS[deployable]:
        for env, name in env_names(cls).items():
            default = cls.model_fields[name].get_default(call_default_factory=True)
            if any(marker in str(default) for marker in _LOCAL_ONLY):
                found.add(env)
    return found


def missing_settings(deployable: str, pod: dict[str, Any]) -> list[str]:
    """What ``deployable`` needs in a cluster that ``pod`` does not set."""
    needed = local_only_defaults(deployable) | NEEDED_IN_CLUSTER[deployable]
    return sorted(needed - set(env_of(pod)))


@pytest.fixture(scope="module", params=["default", "gpu-production"])
def pods(request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    values = load_values(PRODUCTION_VALUES if request.param == "gpu-production" else None)
    return containers(manifests(values))


@pytest.mark.parametrize("deployable", sorted(SETTINGS))
def test_no_machine_local_default_is_left_to_a_pod(
    pods: dict[str, dict[str, Any]], deployable: str
) -> None:
    missing = missing_settings(deployable, pods[deployable])
    assert missing == [], f"{deployable} would run with its one-machine default of {missing}"


def test_the_retrain_gate_generates_on_one_vllm_pod_under_the_engines_name(
    pods: dict[str, dict[str, Any]],
) -> None:
    env = env_of(pods["retrain_job"])
    url = env["DRIFTGATE_RETRAIN_ENGINE_URL"]["value"]
    assert url.startswith("http://dg-driftgate-vllm-0.dg-driftgate-vllm-headless.ml.svc:"), url
    gateway_env = env_of(pods["gateway"])
    assert url in gateway_env["DRIFTGATE_GATEWAY_UPSTREAMS"]["value"]
    served = env["DRIFTGATE_RETRAIN_SERVED_MODEL_NAME"]["value"]
    assert served == gateway_env["DRIFTGATE_GATEWAY_BASE_MODEL"]["value"]


def test_a_setting_left_to_its_local_default_is_caught() -> None:
    """The check can fail: the retrain pod without its engine URL (the chart before this
    test) would have generated against 127.0.0.1 inside its own pod."""
    job = containers(manifests({}))["retrain_job"]
    job["containers"][0]["env"] = [
        e for e in job["containers"][0]["env"] if e["name"] != "DRIFTGATE_RETRAIN_ENGINE_URL"
    ]
    assert missing_settings("retrain_job", job) == ["DRIFTGATE_RETRAIN_ENGINE_URL"]
