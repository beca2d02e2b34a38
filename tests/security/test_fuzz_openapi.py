"""Schemathesis fuzzes every operation of the gateway's and the drift service's OpenAPI.

Both services run for real (uvicorn, SQLite state, the gateway in front of the fake
engine; the drift service with the rollout API mounted, as deployed). Every operation
is called with generated valid and invalid inputs, once with the credential its route
requires and once without any. Each answer must:

- never be a 500, nor any 5xx but the documented 502/503/504 (schemathesis'
  ``not_a_server_error`` check, plus our own narrower one);
- be in the OpenAI error shape whenever it is an error;
- without a credential, be 401 on every operation but the open probes and ``/metrics``
  (a method the path does not serve may answer 405 instead).

Deterministic (hypothesis ``derandomize``) and bounded: ``FUZZ_EXAMPLES`` generated
cases per operation with a credential, ``UNAUTH_EXAMPLES`` without, plus schemathesis'
explicit coverage cases (boundary values, methods a path does not serve). 21 gateway
and 13 drift operations, 62 tests, 4,790 requests (2,592 gateway, 2,198 drift; ``-s``
prints them). Measured on the 2-core dev machine with an end-to-end run beside it:
``PYTHONPATH=. .venv/bin/pytest -q -s -p no:cacheprovider tests/security/test_fuzz_openapi.py``
took 42-52 s (48-57 s wall with start-up).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.gateway.conftest import ADMIN_KEY, BASE, make_peft_dir, serve
from tests.gateway.fake_vllm import FakeVLLM
from tests.security.drift_service import drift_service
from tests.security.fuzz_schemas import drift_schema, gateway_schema
from tests.security.loop_thread import LoopThread

FUZZ_EXAMPLES = 100
UNAUTH_EXAMPLES = 10
INGEST_KEY = "ingest-fuzz-key"
ADAPTER = "support"
#: Routes anyone on the network may call (probes, Prometheus).
OPEN_PATHS = ["/metrics", "/healthz", "/readyz"]
#: The 5xx a route may answer: the engine or a dependency failed or timed out.
UPSTREAM_STATUSES = {502, 503, 504}

GATEWAY = schemathesis.openapi.from_dict(gateway_schema([BASE, ADAPTER, f"{ADAPTER}@1"]))
DRIFT = schemathesis.openapi.from_dict(drift_schema())

fuzz_settings = settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
unauth_settings = settings(fuzz_settings, max_examples=UNAUTH_EXAMPLES)


@dataclass
class Served:
    url: str
    #: Authorization header value per path prefix, longest prefix first.
    credentials: list[tuple[str, str]]
    session: requests.Session = field(default_factory=requests.Session)
    #: Requests sent (the docstring's counts; ``-s`` prints them).
    calls: int = 0

    def headers_for(self, path: str) -> dict[str, str]:
        for prefix, value in self.credentials:
            if path.startswith(prefix):
                return {"Authorization": value}
        return {}


@asynccontextmanager
async def _gateway(tmp: Path) -> AsyncIterator[Served]:
    # With a drift service behind it: routes that call it (feedback, the review queue)
    # answer as deployed, not 503.
    drift_dir = tmp / "drift"
    drift_dir.mkdir()
    async with (
        drift_service(drift_dir, drift={"ingest_key": INGEST_KEY}) as drift,
        _gateway_on(tmp, drift.url) as served,
    ):
        yield served


@asynccontextmanager
async def _gateway_on(tmp: Path, drift_url: str) -> AsyncIterator[Served]:
    engine = await FakeVLLM().start()
    settings_ = GatewaySettings(
        drift_url=drift_url,
        ingest_key=INGEST_KEY,
        upstreams=[engine.url],
        base_model=BASE,
        admin_key=ADMIN_KEY,
        state_url=f"sqlite:///{tmp / 'gateway.db'}",
        health_interval_s=0.2,
        state_refresh_s=0.05,
        drain_timeout_s=0.5,
        adapter_roots=[tmp],
    )
    server, task, port = await serve(create_app(settings_))
    url = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    try:
        async with httpx.AsyncClient(base_url=url, headers=admin, timeout=30) as client:
            path = make_peft_dir(tmp, f"{ADAPTER}-1")
            r = await client.post(f"/admin/adapters/{ADAPTER}/versions", json={"path": path})
            assert r.status_code == 201, r.text
            r = await client.put(f"/admin/routes/{ADAPTER}", json={"weights": {"1": 1.0}})
            assert r.status_code == 200, r.text
            tenant = {"name": "fuzz-tenant", "adapters": [ADAPTER], "rate_limit_rps": 1e4}
            r = await client.post("/admin/tenants", json={**tenant, "burst": 10_000})
            assert r.status_code == 201, r.text
            key = r.json()["api_key"]
        yield Served(url, [("/admin/", f"Bearer {ADMIN_KEY}"), ("/v1/", f"Bearer {key}")])
    finally:
        server.should_exit = True
        await task
        await engine.stop()


@asynccontextmanager
async def _drift(tmp: Path) -> AsyncIterator[Served]:
    async with drift_service(tmp, drift={"ingest_key": INGEST_KEY, "admin_key": ADMIN_KEY}) as d:
        admin, ingest = f"Bearer {ADMIN_KEY}", f"Bearer {INGEST_KEY}"
        yield Served(
            d.url,
            [
                ("/v1/events", ingest),
                ("/v1/feedback", ingest),
                ("/v1/review", ingest),
                ("/v1/", admin),
            ],
        )


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture(scope="module")
def gateway(loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    cm = _gateway(tmp_path_factory.mktemp("gateway"))
    served = loop.enter(cm)
    yield served
    loop.exit(cm)
    print(f"\nfuzz: {served.calls} requests to the gateway")


@pytest.fixture(scope="module")
def drift(loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    cm = _drift(tmp_path_factory.mktemp("drift"))
    served = loop.enter(cm)
    yield served
    loop.exit(cm)
    print(f"\nfuzz: {served.calls} requests to the drift service")


def is_openai_error(body: Any) -> bool:
    """``{"error": {"message": str, "type": str, "param": ..., "code": ...}}``."""
    if not isinstance(body, dict) or set(body) != {"error"}:
        return False
    error = body["error"]
    return (
        isinstance(error, dict)
        and {"message", "type", "param", "code"} <= set(error)
        and isinstance(error["message"], str)
        and isinstance(error["type"], str)
    )


def check(case: schemathesis.Case, served: Served, headers: dict[str, str]) -> int:
    # Sent with requests itself, not ``case.call``: schemathesis' transport counts the
    # pool's connections through urllib3 internals that urllib3-future (installed by
    # grafana-client's niquests, the sre extra) replaces, and fails before sending.
    kwargs = case.as_transport_kwargs(base_url=served.url, headers=headers)
    response = served.session.request(**kwargs, timeout=30, allow_redirects=False)
    served.calls += 1
    case.validate_response(response, checks=[not_a_server_error], headers=headers)
    status = response.status_code
    where = f"{case.method} {case.formatted_path} -> {status}: {response.text[:300]}"
    assert status < 500 or status in UPSTREAM_STATUSES, where
    if status >= 400:
        assert is_openai_error(response.json()), where
    return status


def _unauthenticated(case: schemathesis.Case, served: Served) -> None:
    # No Authorization header at all (the documents declare none, so none is generated).
    status = check(case, served, {})
    where = f"{case.method} {case.formatted_path} answered {status} without a key"
    if case.method.upper() == case.operation.method.upper():
        assert status == 401, where
    else:  # a method the path does not serve: the router may say so before auth
        assert status in (401, 405), where


@GATEWAY.parametrize()
@fuzz_settings
def test_gateway_operations_with_credentials(case: schemathesis.Case, gateway: Served) -> None:
    check(case, gateway, gateway.headers_for(case.path))


@GATEWAY.exclude(path=OPEN_PATHS).parametrize()
@unauth_settings
def test_gateway_operations_without_credentials(case: schemathesis.Case, gateway: Served) -> None:
    _unauthenticated(case, gateway)


@DRIFT.parametrize()
@fuzz_settings
def test_drift_operations_with_credentials(case: schemathesis.Case, drift: Served) -> None:
    check(case, drift, drift.headers_for(case.path))


@DRIFT.exclude(path=OPEN_PATHS).parametrize()
@unauth_settings
def test_drift_operations_without_credentials(case: schemathesis.Case, drift: Served) -> None:
    _unauthenticated(case, drift)
