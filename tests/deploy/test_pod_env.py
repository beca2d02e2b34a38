"""Env, volume and address resolution of the rendered pods (pure: nothing starts)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.cluster import RO_WRAPPER, can_mount_read_only
from tests.deploy.dns import Target, dns_table
from tests.deploy.launch import plan_launch
from tests.deploy.release import local_images, render_release
from tests.deploy.rendered import Pod, PodConfigError, Rendered, resolve_env
from tests.deploy.volumes import materialize, plan_mounts
from tests.real_parts import require


def _pod(rendered: Rendered, component: str) -> Pod:
    pods = [p for p in rendered.pods if p.labels["app.kubernetes.io/component"] == component]
    return pods[0]


def test_default_values_run_two_gateways_one_drift_service_and_one_vllm() -> None:
    rendered = render_release()
    names = sorted(p.name for p in rendered.pods)
    assert names == [
        "dg-driftgate-drift-pod0",
        "dg-driftgate-gateway-pod0",
        "dg-driftgate-gateway-pod1",  # the HPA's minReplicas, the Deployment sets none
        "dg-driftgate-vllm-0",
    ]


def test_env_comes_from_the_rendered_secrets() -> None:
    rendered = render_release({"state": {"url": "postgresql+psycopg://u@postgresql:5432/d"}})
    env = resolve_env(_pod(rendered, "gateway"), rendered)
    keys = rendered.secrets["dg-driftgate-service-keys"]
    assert len(keys["ingest-key"]) == 40
    assert env["DRIFTGATE_INGEST_KEY"] == keys["ingest-key"]
    assert env["DRIFTGATE_ADMIN_KEY"] == keys["admin-key"]
    assert env["DRIFTGATE_STATE_URL"] == "postgresql+psycopg://u@postgresql:5432/d"
    drift_env = resolve_env(_pod(rendered, "drift"), rendered)
    assert drift_env["DRIFTGATE_DRIFT_K8S_NAMESPACE"] == "ml"  # fieldRef
    assert resolve_env(_pod(rendered, "vllm"), rendered)["VLLM_API_KEY"] == keys["engine-api-key"]


def test_env_from_and_missing_references() -> None:
    rendered = render_release()
    pod = _pod(rendered, "gateway")
    container = dict(pod.container)
    container["envFrom"] = [{"configMapRef": {"name": "dg-driftgate-retrain-job"}, "prefix": "T_"}]
    container["env"] = [
        {"name": "A", "value": "x"},
        {"name": "B", "value": "$(A)-y $$(A)"},
        {
            "name": "C",
            "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}},
        },
    ]
    changed = Pod(
        pod.name, pod.namespace, pod.workload, pod.labels, {**pod.spec, "containers": [container]}
    )
    env = resolve_env(changed, rendered)
    assert env["T_job.yaml"].startswith("apiVersion: batch/v1")
    assert env["B"] == "x-y $(A)" and "C" not in env
    container["env"] = [
        {
            "name": "D",
            "valueFrom": {"secretKeyRef": {"name": "dg-driftgate-service-keys", "key": "nope"}},
        }
    ]
    with pytest.raises(PodConfigError, match="has no key 'nope'"):
        resolve_env(changed, rendered)


def test_volumes_map_to_directories_shared_by_claim_and_private_per_pod(tmp_path: Path) -> None:
    rendered = render_release()
    gw0, gw1 = [p for p in rendered.pods if "gateway" in p.name]
    drift = _pod(rendered, "drift")
    m0, m1, md = (plan_mounts(p, rendered, tmp_path) for p in (gw0, gw1, drift))
    by_path = {
        p: {m.mount_path: m for m in ms} for p, ms in (("gw0", m0), ("gw1", m1), ("drift", md))
    }
    adapters = "/var/lib/driftgate"
    assert by_path["gw0"][adapters].host_dir == by_path["drift"][adapters].host_dir  # one PVC
    assert by_path["gw0"][adapters].read_only and not by_path["drift"][adapters].read_only
    assert by_path["gw0"]["/tmp"].host_dir != by_path["gw1"]["/tmp"].host_dir  # emptyDir
    template = by_path["drift"]["/etc/driftgate/retrain"]
    assert template.read_only and template.source == "configMap/dg-driftgate-retrain-job"
    materialize(drift, rendered, md)
    assert (template.host_dir / "job.yaml").read_text().startswith("apiVersion: batch/v1")


def test_launch_plan_rewrites_names_ports_and_paths(tmp_path: Path) -> None:
    rendered = render_release()
    pods_by_subdomain = {"dg-driftgate-vllm-headless": ["dg-driftgate-vllm-0"]}
    dns = dns_table("ml", rendered.services, pods_by_subdomain)
    routes: dict[tuple[str, Target, int], str] = {}

    def route_for(pod: Pod, target: Target, port: int) -> str:
        return routes.setdefault((pod.name, target, port), f"127.0.0.1:{40000 + len(routes)}")

    gateway = _pod(rendered, "gateway")
    mounts = plan_mounts(gateway, rendered, tmp_path)
    plan = plan_launch(
        gateway, rendered, mounts, {8080: 31000}, dns, route_for, local_images(tmp_path)
    )
    assert plan.argv[plan.argv.index("--port") + 1] == "31000"
    assert plan.argv[plan.argv.index("--host") + 1] == "127.0.0.1"
    vllm0 = Target("dg-driftgate-vllm-headless", "dg-driftgate-vllm-0")
    drift = Target("dg-driftgate-drift")
    assert (
        plan.env["DRIFTGATE_GATEWAY_UPSTREAMS"]
        == f'["http://{routes[(gateway.name, vllm0, 8000)]}"]'
    )
    assert plan.env["DRIFTGATE_DRIFT_URL"] == f"http://{routes[(gateway.name, drift, 8090)]}"
    assert plan.env["DRIFTGATE_HOME"] == str(tmp_path / "pvc" / "dg-driftgate-adapters")
    assert plan.env["HOME"] == str(tmp_path / "pods" / gateway.name / "tmp")
    assert plan.read_only_dirs == [tmp_path / "pvc" / "dg-driftgate-adapters"]

    vllm = _pod(rendered, "vllm")
    plan = plan_launch(
        vllm,
        rendered,
        plan_mounts(vllm, rendered, tmp_path),
        {8000: 32000},
        dns,
        route_for,
        local_images(tmp_path),
    )
    assert f"--model={tmp_path}" in plan.argv and "--dtype=float32" in plan.argv
    assert "--port=32000" in plan.argv and "--enable-lora" in plan.argv
    assert plan.env["HF_HOME"] == str(tmp_path / "pods" / vllm.name / "cache" / "huggingface")


def test_a_read_only_mount_refuses_writes_in_the_process(tmp_path: Path) -> None:
    """The wrapper the cluster starts processes under: the directory stays writable here
    and is read-only inside the process's own mount namespace."""
    require(can_mount_read_only(), "read-only mounts need root and `unshare -m`")
    ro = tmp_path / "ro"
    ro.mkdir()
    script = f"touch {ro}/x"
    argv = ["unshare", "-m", "sh", "-c", RO_WRAPPER, "sh", "1", str(ro), "sh", "-c", script]
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode != 0 and "Read-only file system" in result.stderr, result
    (ro / "y").write_text("the host side stays writable")
