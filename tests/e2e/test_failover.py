"""Two replicas: killing one during a run of non-streaming requests fails no request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from driftgate.engine import EngineProcess
from driftgate.stack import create_tenant
from tests.live import BASE_MODEL, free_port, start_services

pytestmark = pytest.mark.e2e


def _wait_up(url: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def _replicas_up(gateway_url: str, admin_key: str) -> int:
    r = httpx.get(f"{gateway_url}/admin/replicas", headers={"Authorization": f"Bearer {admin_key}"})
    r.raise_for_status()
    return sum(1 for rep in r.json()["data"] if rep.get("healthy"))


def test_killing_a_replica_mid_run_fails_no_request(engine: EngineProcess, tmp_path: Path) -> None:
    relay_port = free_port()
    relay_url = f"http://127.0.0.1:{relay_port}"
    relay = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.relay_replica", engine.base_url, str(relay_port)],
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        _wait_up(relay_url)
        stack, config = start_services([engine.base_url, relay_url], tmp_path, with_drift=False)
        try:
            gw = config.urls.gateway
            _, key = create_tenant(gw, config.admin_key, "failover", ["*"])
            deadline = time.monotonic() + 15
            while _replicas_up(gw, config.admin_key) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _replicas_up(gw, config.admin_key) == 2

            def one(i: int) -> int:
                r = httpx.post(
                    f"{gw}/v1/completions",
                    headers={"Authorization": f"Bearer {key}"},
                    json={"model": BASE_MODEL, "prompt": f"Count to {i}:", "max_tokens": 6},
                    timeout=120,
                )
                return r.status_code

            with ThreadPoolExecutor(max_workers=4) as pool:
                futures = [pool.submit(one, i) for i in range(40)]
                time.sleep(1.5)  # requests are now in flight on both replicas
                os.kill(relay.pid, signal.SIGKILL)
                statuses = [f.result() for f in futures]
            assert statuses == [200] * 40, statuses
        finally:
            stack.stop()
    finally:
        if relay.poll() is None:
            relay.kill()
        relay.wait()
