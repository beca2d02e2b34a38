"""A leaked tenant key is revoked alone, and a key can expire (issue "Trust boundary", 5).

Attacks on the tenant routes with an expired or a revoked key: every route refuses it
with 401 in the OpenAI shape, on the gateway that revoked it at once and on another
replica of the same state store within its state refresh; the tenant's other key keeps
working throughout.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.gateway.conftest import BASE, Stack, StackFactory


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def _every_tenant_route(stack: Stack, key: str) -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {key}"}
    chat: dict[str, Any] = {"model": BASE, "messages": [{"role": "user", "content": "hi"}]}
    url = stack.url
    return [
        await stack.client.post(url + "/v1/chat/completions", json=chat, headers=headers),
        await stack.client.post(
            url + "/v1/chat/completions", json={**chat, "stream": True}, headers=headers
        ),
        await stack.client.post(
            url + "/v1/completions", json={"model": BASE, "prompt": "hi"}, headers=headers
        ),
        await stack.client.get(url + "/v1/models", headers=headers),
        await stack.client.post(
            url + "/v1/feedback", json={"request_id": "chatcmpl-x", "score": 1}, headers=headers
        ),
    ]


def _all_refused(answers: list[httpx.Response], says: str) -> None:
    for r in answers:
        assert r.status_code == 401, (r.request.url, r.text)
        err = r.json()["error"]
        assert err["type"] == "authentication_error" and err["code"] == "invalid_api_key"
        assert says in err["message"]


async def test_an_expired_key_is_refused_on_every_tenant_route(make_stack: StackFactory) -> None:
    clock = Clock()
    stack = await make_stack(clock=clock)
    await stack.tenant("acme", ["*"], rate_limit_rps=0)
    r = await stack.admin("POST", "/admin/tenants/acme/keys", {"expires_in_s": 5})
    short = r.json()["api_key"]
    # used (and so remembered by the key index) before it expires
    assert [a.status_code for a in await _every_tenant_route(stack, short)][:4] == [200] * 4
    served = len(stack.replicas[0].requests)
    clock.now += 5
    _all_refused(await _every_tenant_route(stack, short), "expired")
    await stack.admin("POST", "/admin/refresh")  # a new key index: still refused
    _all_refused(await _every_tenant_route(stack, short), "expired")
    assert len(stack.replicas[0].requests) == served  # nothing reached the engine


async def test_a_revoked_key_is_refused_here_at_once_and_elsewhere_within_a_refresh(
    make_stack: StackFactory,
) -> None:
    here = await make_stack()
    refresh_s = 0.5
    there = await make_stack(state_refresh_s=refresh_s)  # another replica, same state store
    kept = await here.tenant("acme", ["*"], rate_limit_rps=0)
    r = await here.admin("POST", "/admin/tenants/acme/keys")
    leaked, leaked_id = r.json()["api_key"], r.json()["key_id"]
    await there.admin("POST", "/admin/refresh")
    for gw in (here, there):
        assert (await gw.chat(leaked, BASE)).status_code == 200  # both know the key

    assert (await here.admin("DELETE", f"/admin/tenants/acme/keys/{leaked_id}")).status_code == 204
    _all_refused(await _every_tenant_route(here, leaked), "invalid API key")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while (await there.chat(leaked, BASE)).status_code != 401:
        # the bound is one refresh plus one state read; 1 s of slack for a loaded machine
        assert loop.time() - t0 < refresh_s + 1.0
        await asyncio.sleep(0.02)
    _all_refused(await _every_tenant_route(there, leaked), "invalid API key")
    for gw in (here, there):
        assert (await gw.chat(kept, BASE)).status_code == 200
