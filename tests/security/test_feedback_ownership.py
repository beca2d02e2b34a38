"""Feedback is the tenant's own (issue 15, part 2): attacks on ``POST /v1/feedback``.

Over real sockets: the real gateway and the real drift service run under uvicorn on
one SQLite state database, so each refusal is checked at the client and in the drift
store. The vLLM replica is the gateway tests' fake (``tests/gateway/fake_vllm.py``):
these attacks need request ids and request events, not generated text.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import select

from drift.app import create_app as create_drift_app
from drift.settings import DriftSettings
from drift.store import DriftStore
from driftgate.core.ids import time_ordered_id
from driftgate.core.state.schema.drift import feedback, requests
from gateway.app import create_app as create_gateway_app
from gateway.request_ids import TAG_HEX
from gateway.settings import GatewaySettings
from tests.gateway.conftest import ADMIN_KEY, BASE, make_peft_dir, serve
from tests.gateway.fake_vllm import FakeVLLM

NOT_FOUND = {
    "message": "no request with this id",
    "type": "invalid_request_error",
    "param": "request_id",
    "code": "not_found",
}


@dataclass
class Loop:
    """Gateway + drift service + fake engine, and a client."""

    gateway: str
    store: DriftStore
    client: httpx.AsyncClient
    tmp: Path

    async def admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        r = await self.client.request(
            method, self.gateway + path, json=body, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        assert r.status_code < 300, r.text
        return r

    async def tenant(self, name: str, rate_limit_rps: float = 1000, burst: int = 1000) -> str:
        r = await self.admin(
            "POST",
            "/admin/tenants",
            {"name": name, "adapters": ["*"], "rate_limit_rps": rate_limit_rps, "burst": burst},
        )
        return str(r.json()["api_key"])

    async def version(self, route: bool) -> int:
        n = len(list(self.tmp.glob("support-*")))
        path = make_peft_dir(self.tmp, f"support-{n}")
        r = await self.admin("POST", "/admin/adapters/support/versions", {"path": path})
        v = int(r.json()["version"])
        if route:
            await self.admin("PUT", "/admin/routes/support", {"weights": {str(v): 1.0}})
        return v

    async def chat(self, key: str, model: str = BASE) -> str:
        r = await self.client.post(
            self.gateway + "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hello"}]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 200, r.text
        return str(r.json()["id"])

    async def feedback(self, key: str, request_id: str, **body: Any) -> httpx.Response:
        return await self.client.post(
            self.gateway + "/v1/feedback",
            json={"request_id": request_id, **body},
            headers={"Authorization": f"Bearer {key}"},
        )

    def votes(self) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(feedback))]

    async def stored_request(self, request_id: str) -> dict[str, Any]:
        """The request's event in the drift store, once the gateway's batch arrived."""
        deadline = time.monotonic() + 10
        while True:
            with self.store.engine.connect() as conn:
                row = conn.execute(
                    select(requests).where(requests.c.request_id == request_id)
                ).first()
            if row is not None:
                return dict(row._mapping)
            assert time.monotonic() < deadline, "the request event never reached the drift store"
            await asyncio.sleep(0.05)


@pytest_asyncio.fixture(loop_scope="function")
async def loop(tmp_path: Path) -> AsyncIterator[Loop]:
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = await FakeVLLM().start()
    ingest = SecretStr("feedback-ownership-ingest-key")
    drift_server, drift_task, drift_port = await serve(
        create_drift_app(DriftSettings(state_url=state_url, trigger_mode="off", ingest_key=ingest))
    )
    settings = GatewaySettings(
        upstreams=[engine.url],
        base_model=BASE,
        admin_key=SecretStr(ADMIN_KEY),
        state_url=state_url,
        drift_url=f"http://127.0.0.1:{drift_port}",
        ingest_key=ingest,
        request_id_secret=SecretStr(os.urandom(24).hex()),
        health_interval_s=0.2,
        state_refresh_s=0.2,
        event_flush_interval_s=0.05,
        heartbeat_interval_s=0,
        adapter_roots=[tmp_path],
    )
    gw_server, gw_task, gw_port = await serve(create_gateway_app(settings))
    store = DriftStore.from_url(state_url)
    async with httpx.AsyncClient(timeout=30) as client:
        yield Loop(f"http://127.0.0.1:{gw_port}", store, client, tmp_path)
    store.close()
    for server, task in ((gw_server, gw_task), (drift_server, drift_task)):
        server.should_exit = True
        await task
    await engine.stop()


def _refused_as_unknown(r: httpx.Response) -> None:
    assert r.status_code == 404, r.text
    assert r.json() == {"error": NOT_FOUND}


async def test_feedback_on_another_tenants_request_is_404_and_stores_nothing(loop: Loop) -> None:
    acme, globex = await loop.tenant("acme"), await loop.tenant("globex")
    rid = await loop.chat(acme)
    # before the request event reached the drift service (no lookup can tell) ...
    _refused_as_unknown(await loop.feedback(globex, rid, score=0.0, correction="hijacked"))
    # ... and after: the same answer as for an id that never existed
    assert (await loop.stored_request(rid))["tenant"] == "acme"
    _refused_as_unknown(await loop.feedback(globex, rid, score=0.0, correction="hijacked"))
    assert loop.votes() == []
    # the owner's feedback on it is taken (the refusal was about the tenant, not the id)
    assert (await loop.feedback(acme, rid, score=1.0)).status_code == 202
    assert [(v["tenant"], v["score"]) for v in loop.votes()] == [("acme", 1.0)]


async def test_a_forged_request_id_is_404_and_stores_nothing(loop: Loop) -> None:
    acme = await loop.tenant("acme")
    rid = await loop.chat(acme)
    head, tag = rid[:-TAG_HEX], rid[-TAG_HEX:]
    flipped = tag[:-1] + ("0" if tag[-1] != "0" else "1")
    forged = [
        "chatcmpl-" + time_ordered_id() + os.urandom(TAG_HEX // 2).hex(),  # well-formed, unissued
        head + flipped,  # a real id with one digit of its tag changed
        head,  # the id without its tag (the format before ids were bound)
        head + tag.upper(),
        "x",
    ]
    for request_id in forged:
        _refused_as_unknown(await loop.feedback(acme, request_id, score=0.0))
    await loop.stored_request(rid)
    assert loop.votes() == []


async def test_a_hundred_votes_on_one_request_count_once(loop: Loop) -> None:
    acme = await loop.tenant("acme")
    v = await loop.version(route=True)
    since = time.time() - 1
    rid = await loop.chat(acme, "support")
    await loop.stored_request(rid)
    for i in range(100):
        r = await loop.feedback(acme, rid, score=1.0, label=f"vote-{i}")
        assert r.status_code == 202, r.text
    votes = loop.votes()
    assert len(votes) == 1  # one vote per request and tenant: the latest replaced the others
    assert (votes[0]["request_id"], votes[0]["score"], votes[0]["label"]) == (rid, 1.0, "vote-99")
    stats = loop.store.version_window("support", [v], since, max_tenant_share=1.0)[v]
    assert (stats.requests, stats.feedback, stats.negative, stats.voters) == (1, 1, 0, 1)


async def test_feedback_over_the_rate_limit_is_429(loop: Loop) -> None:
    acme = await loop.tenant("acme", rate_limit_rps=0.01, burst=2)
    rid = await loop.chat(acme)
    for _ in range(2):
        assert (await loop.feedback(acme, rid, score=1.0)).status_code == 202
    r = await loop.feedback(acme, rid, score=0.0, correction="flood")
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1
    err = r.json()["error"]
    assert (err["type"], err["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert set(err) == {"message", "type", "param", "code"}
    # the refused vote did not replace the stored one
    assert [(v["score"], v["correction"]) for v in loop.votes()] == [(1.0, None)]
    # feedback has buckets of its own: the tenant's inference budget is untouched
    await loop.chat(acme)


async def test_traffic_pinned_to_a_version_is_not_judged(loop: Loop) -> None:
    """A tenant pins the canary (``support@2``) and rates it up: none of it reaches the judge."""
    acme = await loop.tenant("acme")
    mallory = await loop.tenant("mallory")
    serving = await loop.version(route=True)
    canary = await loop.version(route=False)
    since = time.time() - 1
    pinned = [await loop.chat(mallory, f"support@{canary}") for _ in range(5)]
    routed = await loop.chat(acme, "support")
    for rid in pinned:
        assert (await loop.feedback(mallory, rid, score=1.0)).status_code == 202
    assert (await loop.feedback(acme, routed, score=1.0)).status_code == 202
    for rid in pinned:
        assert (await loop.stored_request(rid))["pinned"]
    assert not (await loop.stored_request(routed))["pinned"]
    stats = loop.store.version_window("support", [serving, canary], since, max_tenant_share=1.0)
    assert (stats[canary].requests, stats[canary].feedback) == (0, 0)
    assert (stats[serving].requests, stats[serving].feedback) == (1, 1)
    assert len(loop.votes()) == 6  # stored (drift detection sees all traffic), not judged
