"""Two replicas: killing one while it holds requests in flight fails no request.

The second replica is a relay in front of the shared vLLM (``relay_replica.py``). It
serves normally until the test switches it to *hold*: from then on it accepts
inference requests and never answers them. The test kills it (SIGKILL) only once it
holds at least one, so those requests are in flight on the killed replica by
construction, not by timing. What proves the failover:

- every one of the 40 requests answers 200, the held ones included: the dead relay
  never answered them, so the gateway must have re-sent them to the other replica;
- the gateway saw them in flight on the relay before the kill (``/admin/replicas``),
  counted at least one ``disconnect`` retry per held request on the relay
  (``driftgate_gateway_upstream_retries_total``), and marked the relay down while the
  engine stays up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from driftgate.engine import EngineProcess
from driftgate.stack import create_tenant
from tests.live import BASE_MODEL, free_port, start_services

pytestmark = pytest.mark.e2e

#: Longest wait for a state the test drives (a hang guard, not a timing claim).
PATIENCE_S = 120.0


def _wait_for(what: str, probe: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + PATIENCE_S
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {PATIENCE_S:.0f} s for {what}")
        time.sleep(0.05)
    return value


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _replicas(gateway_url: str, admin_key: str) -> dict[str, dict[str, Any]]:
    r = httpx.get(
        f"{gateway_url}/admin/replicas",
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=10,
    )
    r.raise_for_status()
    return {rep["url"]: rep for rep in r.json()["data"]}


def _retries(gateway_url: str, replica: str, reason: str) -> float:
    """``driftgate_gateway_upstream_retries_total{replica, reason}`` on the gateway now."""
    text = httpx.get(f"{gateway_url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "driftgate_gateway_upstream_retries_total"
                and sample.labels.get("replica") == replica
                and sample.labels.get("reason") == reason
            ):
                return float(sample.value)
    return 0.0


def _relay_state(relay_url: str) -> dict[str, Any]:
    state: dict[str, Any] = httpx.get(f"{relay_url}/_relay/state", timeout=10).json()
    return state


def test_killing_a_replica_with_requests_in_flight_fails_no_request(
    engine: EngineProcess, tmp_path: Path
) -> None:
    relay_port = free_port()
    relay_url = f"http://127.0.0.1:{relay_port}"
    relay_name = f"127.0.0.1:{relay_port}"  # the gateway's replica label (its netloc)
    relay = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.relay_replica", engine.base_url, str(relay_port)],
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        _wait_for("the relay", lambda: _up(relay_url))
        stack, config = start_services([engine.base_url, relay_url], tmp_path, with_drift=False)
        try:
            gw, admin_key = config.urls.gateway, config.admin_key
            _, key = create_tenant(gw, admin_key, "failover", ["*"])
            _wait_for(
                "both replicas healthy",
                lambda: all(r["healthy"] for r in _replicas(gw, admin_key).values()),
            )
            assert set(_replicas(gw, admin_key)) == {engine.base_url, relay_url}
            retries_before = _retries(gw, relay_name, "disconnect")

            def one(i: int) -> httpx.Response:
                return httpx.post(
                    f"{gw}/v1/completions",
                    headers={"Authorization": f"Bearer {key}"},
                    json={"model": BASE_MODEL, "prompt": f"Count to {i}:", "max_tokens": 6},
                    timeout=PATIENCE_S,
                )

            with ThreadPoolExecutor(max_workers=4) as pool:
                futures = [pool.submit(one, i) for i in range(40)]
                # The relay is a working replica first: it answered some requests in full.
                _wait_for("an answer through the relay", lambda: _relay_state(relay_url)["relayed"])
                httpx.post(f"{relay_url}/_relay/hold", timeout=10).raise_for_status()
                held = _wait_for("a request held", lambda: _relay_state(relay_url)["held"])
                # The gateway, too, has them in flight on the relay (held ones never finish).
                in_flight = _replicas(gw, admin_key)[relay_url]["in_flight"]
                assert in_flight >= len(held), (in_flight, held)
                os.kill(relay.pid, signal.SIGKILL)
                relay.wait()
                responses = [f.result() for f in futures]

            statuses = [r.status_code for r in responses]
            assert statuses == [200] * 40, [r.text for r in responses if r.status_code != 200]
            # The held requests were answered although the relay never answered them:
            # the gateway re-sent each to the engine.
            prompts = [f"Count to {i}:" for i in range(40)]
            for h in held:
                answer = responses[prompts.index(h["prompt"])].json()
                assert answer["choices"] and answer["usage"]["completion_tokens"] > 0, answer
            retried = _retries(gw, relay_name, "disconnect") - retries_before
            assert retried >= len(held), (retried, held)

            def relay_down() -> dict[str, dict[str, Any]] | None:
                reps = _replicas(gw, admin_key)
                return None if reps[relay_url]["healthy"] else reps

            # The relay is marked down (by the failed retries' connects or the health
            # poller), the engine stays up, and the in-flight accounting came back to 0.
            reps = _wait_for("the relay marked down", relay_down)
            assert reps[relay_url]["last_error"], reps[relay_url]
            assert reps[relay_url]["in_flight"] == 0, reps[relay_url]
            assert reps[engine.base_url]["healthy"], reps[engine.base_url]
        finally:
            stack.stop()
    finally:
        if relay.poll() is None:
            relay.kill()
        relay.wait()
