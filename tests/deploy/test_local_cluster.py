"""The process runner on a tiny hand-written release: probes, endpoints, flows, failures.

Two small Python processes stand in for pods (about a second); no chart, no vLLM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.cluster import LocalCluster
from tests.deploy.images import LocalImage
from tests.deploy.rendered import Rendered

SERVE = (
    "import http.server, sys; http.server.test("
    "HandlerClass=http.server.SimpleHTTPRequestHandler, port=int(sys.argv[2]), bind='127.0.0.1')"
)
IMAGE = "local/python"


def _deployment(name: str, command: list[str], probe_path: str = "/") -> dict[str, Any]:
    labels = {"app": name}
    container = {
        "name": name,
        "image": f"{IMAGE}:1",
        "command": command,
        "ports": [{"name": "http", "containerPort": 8000}],
        "readinessProbe": {"httpGet": {"path": probe_path, "port": "http"}, "periodSeconds": 1},
    }
    return {
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def _service(name: str) -> dict[str, Any]:
    return {
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}]},
    }


WEB_ONLY_FROM_ML = {
    "kind": "NetworkPolicy",
    "metadata": {"name": "web"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "web"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ml"}}}
                ]
            }
        ],
    },
}


def _cluster(tmp_path: Path, docs: list[dict[str, Any]]) -> LocalCluster:
    return LocalCluster(Rendered.from_manifests(docs, "ml"), tmp_path, [LocalImage(IMAGE)])


def test_a_served_pod_gets_ready_and_flows_are_checked(tmp_path: Path) -> None:
    web = _deployment("web", ["python3", "-c", SERVE, "--port", "8000"])
    cluster = _cluster(tmp_path, [web, _service("web"), WEB_ONLY_FROM_ML])
    try:
        assert cluster.backends_of("web", 80) == []  # not started, not an endpoint
        cluster.start()
        cluster.wait_ready(30)
        (backend,) = cluster.backends_of("web", 80)
        assert backend.container_port == 8000 and backend.local_port != 8000
        inside = cluster.client("job", "ml").url("web", 80)
        assert httpx.get(inside, timeout=5).status_code == 200
        outside = cluster.client("app", "default").url("web", 80)
        with pytest.raises(httpx.HTTPError):
            httpx.get(outside, timeout=5)
    finally:
        cluster.stop()
    assert [(f.caller, f.allowed) for f in cluster.flows.flows()] == [("job", True), ("app", False)]
    assert "web-pod0" in cluster.summary() and "DROPPED" in cluster.summary()


def test_a_pod_that_exits_fails_with_its_log_tail(tmp_path: Path) -> None:
    broken = _deployment(
        "broken", ["python3", "-c", "print('no config, giving up'); raise SystemExit(3)"]
    )
    cluster = _cluster(tmp_path, [broken])
    try:
        cluster.start()
        with pytest.raises(AssertionError, match=r"(?s)exited with code 3.*no config, giving up"):
            cluster.wait_ready(30)
    finally:
        cluster.stop()


def test_a_pod_that_never_gets_ready_fails_at_the_deadline(tmp_path: Path) -> None:
    never = _deployment("never", ["python3", "-c", SERVE, "--port", "8000"], probe_path="/missing")
    cluster = _cluster(tmp_path, [never])
    try:
        cluster.start()
        with pytest.raises(AssertionError, match="never-pod0: not ready"):
            cluster.wait_ready(3)
    finally:
        cluster.stop()
