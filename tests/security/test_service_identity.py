"""Service identity: only the gateway feeds the loop, only operators read or steer it.

Attacks from a process that reaches the drift service's port (a pod in the cluster, a
tenant's sidecar): invent request events or feedback (training data), pin a reference
window that hides real drift, read every tenant's adapters and rollouts. Each is refused
with 401 in the OpenAI error shape, and nothing is stored or changed. The drift service,
the rollout API and the gateway are the real apps over real sockets; the gateway's vLLM is
the fake engine (no attack here needs generation).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from drift.settings import DriftSettings
from drift.store import DriftStore
from driftgate.core.events import EventBatch, FeedbackEvent, RequestEvent
from driftgate.deployables import drift_service
from rollout.settings import RolloutSettings
from tests.gateway.conftest import StackFactory, serve

INGEST_KEY = "the-gateway-ingest-key"
ADMIN_KEY = "the-operators-admin-key"
#: Credentials an attacker might present: none, a guess, and the wrong service's key.
WRONG: dict[str, dict[str, str]] = {
    "none": {},
    "guess": {"Authorization": "Bearer let-me-in"},
    "not a bearer": {"Authorization": f"Basic {INGEST_KEY}"},
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Drift:
    url: str
    state_url: str
    client: httpx.AsyncClient

    def counts(self) -> dict[str, int]:
        store = DriftStore.from_url(self.state_url)
        try:
            return store.counts()
        finally:
            store.close()

    async def status(self) -> dict[str, object]:
        r = await self.client.get(self.url + "/v1/drift/status", headers=bearer(ADMIN_KEY))
        assert r.status_code == 200, r.text
        body: dict[str, object] = r.json()
        return body


@pytest_asyncio.fixture(loop_scope="function")
async def drift(tmp_path: Path) -> AsyncIterator[Drift]:
    """The deployed drift service (rollout API included) with both keys configured."""
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    app = drift_service.app(
        DriftSettings(
            state_url=state_url,
            trigger_mode="off",
            reference_size=20,
            ingest_key=SecretStr(INGEST_KEY),
            admin_key=SecretStr(ADMIN_KEY),
        ),
        RolloutSettings(state_url=state_url, admin_key=SecretStr(ADMIN_KEY), gateway_url=None),
    )
    server, task, port = await serve(app)
    async with httpx.AsyncClient(timeout=30) as client:
        yield Drift(f"http://127.0.0.1:{port}", state_url, client)
    server.should_exit = True
    await task


def request_event(i: int) -> RequestEvent:
    return RequestEvent(
        request_id=f"forged-{i}",
        tenant="victim",
        adapter="support",
        version=1,
        prompt_text="ignore the queue rules",
        completion_text="billing",
        latency_ms=100.0 + i,
    )


def assert_unauthorized(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    error = r.json()["error"]
    assert error["type"] == "authentication_error" and error["message"], error


@pytest.mark.parametrize("credential", sorted(WRONG))
async def test_events_without_the_ingest_key_are_refused_and_not_stored(
    drift: Drift, credential: str
) -> None:
    body = EventBatch(events=[request_event(i) for i in range(3)]).model_dump_json()
    for headers in (WRONG[credential], bearer(ADMIN_KEY)):  # the admin key is not the ingest key
        r = await drift.client.post(drift.url + "/v1/events", content=body, headers=headers)
        assert_unauthorized(r)
    assert drift.counts()["drift_requests"] == 0
    metrics = (await drift.client.get(drift.url + "/metrics")).text
    assert 'driftgate_drift_events_rejected_total{reason="unauthorized"} 2.0' in metrics
    r = await drift.client.post(drift.url + "/v1/events", content=body, headers=bearer(INGEST_KEY))
    assert r.status_code == 202 and r.json()["accepted"] == 3  # the gateway's key is accepted
    assert drift.counts()["drift_requests"] == 3


@pytest.mark.parametrize("credential", sorted(WRONG))
async def test_feedback_without_the_ingest_key_is_refused_and_not_stored(
    drift: Drift, credential: str
) -> None:
    """A correction is a training target: a forged one must never reach the store."""
    vote = FeedbackEvent(request_id="forged-1", tenant="victim", correction="billing")
    body = vote.model_dump_json()
    for headers in (WRONG[credential], bearer(ADMIN_KEY)):
        r = await drift.client.post(drift.url + "/v1/feedback", content=body, headers=headers)
        assert_unauthorized(r)
    assert drift.counts()["drift_feedback"] == 0
    r = await drift.client.post(
        drift.url + "/v1/feedback", content=body, headers=bearer(INGEST_KEY)
    )
    assert r.status_code == 202, r.text
    assert drift.counts()["drift_feedback"] == 1


async def test_a_reference_pin_needs_the_admin_key(drift: Drift) -> None:
    """A pin makes a chosen window the reference: it could hide real drift."""
    now = time.time()
    events = EventBatch(events=[request_event(i) for i in range(30)]).model_dump_json()
    r = await drift.client.post(
        drift.url + "/v1/events", content=events, headers=bearer(INGEST_KEY)
    )
    assert r.status_code == 202
    before = await drift.status()
    pin = {"adapter": "support", "version": 1, "since": now - 60}
    for headers in (*WRONG.values(), bearer(INGEST_KEY)):  # the gateway may not pin either
        assert_unauthorized(
            await drift.client.post(drift.url + "/v1/drift/reference", json=pin, headers=headers)
        )
    assert await drift.status() == before
    r = await drift.client.post(
        drift.url + "/v1/drift/reference", json=pin, headers=bearer(ADMIN_KEY)
    )
    assert r.status_code == 200 and "latency_ms" in r.json()["signals"], r.text
    assert await drift.status() != before  # the operator's pin did change the reference


async def test_reads_of_the_loop_need_the_admin_key_but_scrapes_stay_open(
    drift: Drift,
) -> None:
    """Drift status names every tenant's adapters and triggers, rollouts their registry
    paths and canary evidence: operators only. Prometheus and the kubelet need no key."""
    for path in ("/v1/drift/status", "/v1/rollouts"):
        for headers in (*WRONG.values(), bearer(INGEST_KEY)):
            assert_unauthorized(await drift.client.get(drift.url + path, headers=headers))
        assert (await drift.client.get(drift.url + path, headers=bearer(ADMIN_KEY))).is_success
    for path in ("/metrics", "/healthz", "/readyz"):
        assert (await drift.client.get(drift.url + path)).status_code == 200, path


async def test_the_gateway_feeds_the_loop_with_its_key_and_nothing_without_it(
    drift: Drift, make_stack: StackFactory
) -> None:
    """The same tenant traffic through a gateway with the ingest key is stored; through a
    gateway with another key, feedback is refused (503, so the app retries) and the
    events are dropped and counted, never stored."""
    good = await make_stack(
        drift_url=drift.url, ingest_key=SecretStr(INGEST_KEY), event_flush_interval_s=0.05
    )
    key = await good.tenant("acme", ["support"])
    await good.version("support")
    chat = await good.chat(key, "support")
    assert chat.status_code == 200, chat.text
    fb = await good.client.post(
        good.url + "/v1/feedback",
        json={"request_id": chat.json()["id"], "score": 1.0},
        headers=bearer(key),
    )
    assert fb.status_code == 202, fb.text
    for _ in range(100):  # the event batch is flushed every 0.05 s
        if drift.counts()["drift_requests"] == 1:
            break
        await asyncio.sleep(0.05)
    assert (drift.counts()["drift_requests"], drift.counts()["drift_feedback"]) == (1, 1)

    bad = await make_stack(
        drift_url=drift.url, ingest_key=SecretStr("stolen-guess"), event_flush_interval_s=0.05
    )
    bad_key = await bad.tenant("initech", ["support"])
    chat = await bad.chat(bad_key, "support")
    assert chat.status_code == 200  # inference does not depend on the loop
    fb = await bad.client.post(
        bad.url + "/v1/feedback",
        json={"request_id": chat.json()["id"], "score": 0.0},
        headers=bearer(bad_key),
    )
    assert fb.status_code == 503 and fb.json()["error"]["code"] == "drift_unavailable", fb.text
    for _ in range(100):
        if bad.metric("driftgate_gateway_events_dropped_total", reason="rejected") >= 1:
            break
        await asyncio.sleep(0.05)
    assert bad.metric("driftgate_gateway_events_dropped_total", reason="rejected") >= 1
    assert (drift.counts()["drift_requests"], drift.counts()["drift_feedback"]) == (1, 1)


async def test_a_drift_service_without_an_ingest_key_accepts_no_events(tmp_path: Path) -> None:
    """Unconfigured is closed: a deployment that forgot the secret loses events (counted at
    the gateway) rather than taking them from anyone."""
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    app = drift_service.app(
        DriftSettings(state_url=state_url, trigger_mode="off"),
        RolloutSettings(state_url=state_url, gateway_url=None),
    )
    server, task, port = await serve(app)
    try:
        body = EventBatch(events=[request_event(0)]).model_dump_json()
        async with httpx.AsyncClient(timeout=30) as client:
            for headers in ({}, bearer("anything")):
                r = await client.post(
                    f"http://127.0.0.1:{port}/v1/events", content=body, headers=headers
                )
                assert_unauthorized(r)
                assert "no ingest key" in r.json()["error"]["message"]
        store = DriftStore.from_url(state_url)
        try:
            assert store.counts()["drift_requests"] == 0
        finally:
            store.close()
    finally:
        server.should_exit = True
        await task


async def test_a_malformed_rollout_body_without_the_key_is_401_not_422(drift: Drift) -> None:
    """Found by the fuzz run: FastAPI parsed the body before the route checked the key."""
    for headers in (*WRONG.values(), bearer(INGEST_KEY)):
        assert_unauthorized(
            await drift.client.post(
                drift.url + "/v1/rollouts", content=b"{not json", headers=headers
            )
        )
    r = await drift.client.get(drift.url + f"/v1/rollouts/{2**63}", headers=bearer(ADMIN_KEY))
    assert r.status_code == 422, r.text  # past the column's range: refused, not a 500
