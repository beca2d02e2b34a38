"""Every address a rendered pod is given names a Service of the release (or the declared
outside PostgreSQL), for the default and the production values (nothing starts).

After the harness's rewriting, a cluster name that is left in an env value or argument
names nothing the release runs: in a cluster that is a DNS failure at run time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.cluster import External, LocalCluster
from tests.deploy.release import local_images, render_release
from tests.sre.chart_render import PRODUCTION_VALUES, load_values

# scheme://[user[:password]@]host  -- the host of any URL in a value.
_URL_HOST = re.compile(r"[a-z][a-z0-9+.-]*://(?:[^/@\s\"]*@)?([^/:\s\"\]]+)")
#: Secrets the production values name (state.existingSecret, gateway.adminKeySecret,
#: engine.hfTokenSecret), as an operator creates them before installing.
PRODUCTION_SECRETS = {
    "driftgate-postgres": {"url": "postgresql+psycopg://driftgate:pw@postgresql:5432/driftgate"},
    "driftgate-admin": {"key": "admin-key-of-the-operator"},
    "hf-token": {"token": "hf_stand_in"},
}


def _cluster(
    tmp_path: Path, values: dict[str, Any], secrets: dict[str, dict[str, str]]
) -> LocalCluster:
    return LocalCluster(
        render_release(values, secrets),
        tmp_path,
        local_images(tmp_path, values),
        external=[External("postgresql", 5432, 5432)],
    )


@pytest.mark.parametrize("which", ["default", "production"])
def test_every_address_in_every_pod_resolves_to_the_release(tmp_path: Path, which: str) -> None:
    if which == "default":
        values, secrets = {}, {}
    else:
        values, secrets = load_values(PRODUCTION_VALUES), PRODUCTION_SECRETS
    cluster = _cluster(tmp_path, values, secrets)
    try:
        unresolved = []
        for run in cluster.runs.values():
            texts = [*run.plan.argv, *(f"{k}={v}" for k, v in run.plan.env.items())]
            for text in texts:
                for host in _URL_HOST.findall(text):
                    if host != "127.0.0.1":
                        unresolved.append(f"{run.pod.name}: {text}")
        assert not unresolved, "\n".join(unresolved)
    finally:
        cluster.proxy.close()


def test_production_values_wire_every_gateway_to_every_engine_and_to_redis(tmp_path: Path) -> None:
    cluster = _cluster(tmp_path, load_values(PRODUCTION_VALUES), PRODUCTION_SECRETS)
    try:
        pods = sorted(cluster.runs)
        gateways = [p for p in pods if "-gateway-" in p]
        engines = [p for p in pods if "-vllm-" in p]
        assert len(gateways) == 3 and len(engines) == 3 and any("-redis-" in p for p in pods)
        for name in gateways:
            wired = {(t.pod or t.service, port) for t, port in cluster.runs[name].plan.wired}
            assert {(e, 8000) for e in engines} <= wired, wired
            assert ("dg-driftgate-redis", 6379) in wired, wired
            assert ("postgresql", 5432) in wired, wired
        engine = cluster.runs[engines[0]].plan
        assert "--dtype=float32" in engine.argv and "--enable-prefix-caching" in engine.argv
    finally:
        cluster.proxy.close()
