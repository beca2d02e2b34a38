"""The harness fails on each defect "The production path" found in the chart, put back.

The chart of that time cannot be rendered with today's values (its values schema refuses
them before any check runs), so each finding is put back into today's rendered manifests,
as it was then, one at a time. Each check below passes on today's chart and must fail on
the manifests with the finding back in; nothing starts.

1. The gateway pod did not mount the adapters volume (a registry path failed the gateway's
   own PEFT check): the registry path is on no volume of the gateway pod.
2. The drift Deployment got neither the gateway URL nor the admin key (the rollout
   controller never started): the drift service is left with machine-local defaults.
3. The retrain Job template set variables no settings class reads and left the engine URL
   at its loopback default (the gate could not generate).
4. The NetworkPolicies dropped drift -> gateway (rollouts) and retrain -> vLLM (the gate).
5. Rate limits were per replica under an HPA: the production gateways are not wired to
   the shared limits store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftgate.deployables.inventory import variables
from tests.deploy.cluster import External, LocalCluster
from tests.deploy.policy import Endpoint, evaluate
from tests.deploy.release import local_images
from tests.deploy.rendered import Rendered
from tests.deploy.test_wiring import PRODUCTION_SECRETS
from tests.sre.chart_render import NAMESPACE, PRODUCTION_VALUES, find, load_values, manifests
from tests.sre.test_chart_settings import containers, missing_settings

Docs = list[dict[str, Any]]
REGISTRY_VERSION = "/var/lib/driftgate/registry/support/1"
GATEWAY_POD = "dg-driftgate-gateway-pod0"
REDIS_SERVICE = "dg-driftgate-redis"


# ---- the checks (each raises AssertionError when its flow or setting is broken) ---------


def check_gateway_sees_the_registry(docs: Docs, root: Path) -> None:
    """The gateway reads a registered version where vLLM loads it from."""
    cluster = LocalCluster(Rendered.from_manifests(docs, NAMESPACE), root, local_images(root))
    try:
        try:
            on_gateway = cluster.host_path(GATEWAY_POD, REGISTRY_VERSION)
        except KeyError as exc:
            raise AssertionError(str(exc)) from exc
        assert cluster.host_path("dg-driftgate-vllm-0", REGISTRY_VERSION) == on_gateway
    finally:
        cluster.proxy.close()


def check_no_machine_local_default(deployable: str) -> Callable[[Docs, Path], None]:
    def check(docs: Docs, root: Path) -> None:
        missing = missing_settings(deployable, containers(docs)[deployable])
        assert missing == [], f"{deployable} runs with its one-machine default of {missing}"

    check.__name__ = f"check_no_machine_local_default({deployable!r})"
    return check


def check_retrain_job_settings(docs: Docs, root: Path) -> None:
    """Every variable the Job sets is read, and none is left at a machine-local default."""
    pod = containers(docs)["retrain_job"]
    env = {e["name"] for e in pod["containers"][0].get("env", [])}
    unread = {name for name in env if name.startswith("DRIFTGATE_")} - set(variables("retrain_job"))
    missing = missing_settings("retrain_job", pod)
    assert not unread and not missing, (
        f"the retrain job sets variables nothing reads: {sorted(unread)}; "
        f"runs with its one-machine default of {missing}"
    )


def check_loop_flows_are_allowed(docs: Docs, root: Path) -> None:
    """drift -> gateway (the rollout controller) and the retrain Job -> vLLM (the gate)."""
    rendered = Rendered.from_manifests(docs, NAMESPACE)
    pods = {
        p.labels["app.kubernetes.io/component"]: Endpoint(
            p.name, p.namespace, p.labels, p.named_ports
        )
        for p in rendered.pods
    }
    job = yaml.safe_load(rendered.config_maps["dg-driftgate-retrain-job"]["job.yaml"])
    retrain = Endpoint("retrain", NAMESPACE, job["spec"]["template"]["metadata"]["labels"])
    dropped = []
    for src, dst, port in ((pods["drift"], pods["gateway"], 8080), (retrain, pods["vllm"], 8000)):
        verdict = evaluate(rendered.policies, src, dst, port)
        if not verdict.allowed:
            dropped.append(f"{src.name} -> {dst.name}:{port} ({verdict.reason})")
    assert not dropped, f"dropped: {'; '.join(dropped)}"


def check_production_gateways_share_limits(docs: Docs, root: Path) -> None:
    """Every production gateway replica is wired to the chart's Redis."""
    rendered = Rendered.from_manifests(docs, NAMESPACE, PRODUCTION_SECRETS)
    cluster = LocalCluster(
        rendered,
        root,
        local_images(root, load_values(PRODUCTION_VALUES)),
        external=[External("postgresql", 5432, 5432)],
    )
    try:
        gateways = [name for name in cluster.runs if "-gateway-" in name]
        assert gateways
        for name in gateways:
            wired = {t.pod or t.service for t, _ in cluster.runs[name].plan.wired}
            assert REDIS_SERVICE in wired, f"{name} limits alone: not wired to {REDIS_SERVICE}"
    finally:
        cluster.proxy.close()


# ---- the findings, put back --------------------------------------------------------------


def _container(docs: Docs, kind: str, suffix: str) -> dict[str, Any]:
    container: dict[str, Any] = find(docs, kind, suffix)["spec"]["template"]["spec"]["containers"][
        0
    ]
    return container


def _drop_env(container: dict[str, Any], *names: str) -> None:
    before = len(container["env"])
    container["env"] = [e for e in container["env"] if e["name"] not in names]
    assert len(container["env"]) == before - len(names), f"not all of {names} were set"


def gateway_without_the_adapters_volume(docs: Docs) -> None:
    container = _container(docs, "Deployment", "-gateway")
    kept = [m for m in container["volumeMounts"] if not REGISTRY_VERSION.startswith(m["mountPath"])]
    assert len(kept) < len(container["volumeMounts"])
    container["volumeMounts"] = kept


def drift_without_gateway_url_and_admin_key(docs: Docs) -> None:
    _drop_env(
        _container(docs, "Deployment", "-drift"), "DRIFTGATE_GATEWAY_URL", "DRIFTGATE_ADMIN_KEY"
    )


def retrain_job_with_unread_variables_and_no_engine_url(docs: Docs) -> None:
    config_map = find(docs, "ConfigMap", "-retrain-job")
    job = yaml.safe_load(config_map["data"]["job.yaml"])
    container = job["spec"]["template"]["spec"]["containers"][0]
    _drop_env(container, "DRIFTGATE_RETRAIN_ENGINE_URL")
    container["env"] += [
        {"name": "DRIFTGATE_RETRAIN_GATEWAY_URL", "value": "http://dg-driftgate-gateway:8080"},
        {"name": "DRIFTGATE_RETRAIN_ADMIN_KEY", "value": "admin"},
    ]
    config_map["data"]["job.yaml"] = yaml.safe_dump(job)


def _drop_peer(docs: Docs, policy_suffix: str, label: str, value: str) -> None:
    policy = find(docs, "NetworkPolicy", policy_suffix)
    dropped = 0
    for rule in policy["spec"]["ingress"]:
        peers = rule["from"]
        rule["from"] = [
            p for p in peers if p.get("podSelector", {}).get("matchLabels", {}).get(label) != value
        ]
        dropped += len(peers) - len(rule["from"])
    assert dropped, f"no peer with {label}={value} in {policy_suffix}"


def policies_dropping_rollouts_and_the_gate(docs: Docs) -> None:
    _drop_peer(docs, "-gateway", "driftgate.io/admin", "true")
    _drop_peer(docs, "-vllm", "app.kubernetes.io/component", "retrain")


def gateways_without_the_shared_limits(docs: Docs) -> None:
    _drop_env(_container(docs, "Deployment", "-gateway"), "DRIFTGATE_GATEWAY_LIMITS_REDIS_URL")


FINDINGS: dict[str, tuple[Callable[[Docs], None], Callable[[Docs, Path], None], bool]] = {
    "1 gateway without the adapters volume": (
        gateway_without_the_adapters_volume,
        check_gateway_sees_the_registry,
        False,
    ),
    "2 drift without gateway URL and admin key": (
        drift_without_gateway_url_and_admin_key,
        check_no_machine_local_default("drift_service"),
        False,
    ),
    "3 retrain job with unread variables and no engine URL": (
        retrain_job_with_unread_variables_and_no_engine_url,
        check_retrain_job_settings,
        False,
    ),
    "4 policies dropping drift->gateway and retrain->vLLM": (
        policies_dropping_rollouts_and_the_gate,
        check_loop_flows_are_allowed,
        False,
    ),
    "5 production gateways limiting per replica": (
        gateways_without_the_shared_limits,
        check_production_gateways_share_limits,
        True,
    ),
}


@pytest.mark.parametrize("finding", sorted(FINDINGS))
def test_the_check_passes_on_the_chart_and_fails_with_the_finding_back(
    finding: str, tmp_path: Path
) -> None:
    put_back, check, production = FINDINGS[finding]
    values = load_values(PRODUCTION_VALUES) if production else {}
    check(manifests(values), tmp_path / "today")
    docs = manifests(values)
    put_back(docs)
    with pytest.raises(AssertionError) as caught:
        check(docs, tmp_path / "finding")
    print(f"[harness] finding {finding}: caught by {check.__name__}: {caught.value}")
