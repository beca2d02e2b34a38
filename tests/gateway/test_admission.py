"""A full engine pool is back-pressure, never a replica outage (``gateway/admission.py``).

The fake vLLM holds its streams open (``held_stream``): a real vLLM cannot be made to keep
a stream waiting on cue, and these tests need the pool full for a known time.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import httpx
import pytest

from tests.gateway.conftest import Stack, StackFactory
from tests.gateway.held_stream import hold_last_chunk, streamed_chat

SLOTS = 4


async def open_streams(stack: Stack, key: str, n: int) -> list[asyncio.Task[int]]:
    """``n`` streaming chats the fake holds open; returns when the gateway holds them all."""
    tasks = [
        asyncio.create_task(streamed_chat(stack.client, stack.url, key, "support"))
        for _ in range(n)
    ]
    deadline = time.monotonic() + 5
    while stack.metric("driftgate_gateway_upstream_slots_in_use") < n:
        assert time.monotonic() < deadline, "the streams never all reached the engine"
        await asyncio.sleep(0.01)
    return tasks


async def test_a_full_pool_refuses_the_excess_with_retry_after_and_keeps_the_replica_up(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await make_stack(
        upstream_connections=SLOTS,
        upstream_queue_timeout_s=0.3,
        health_interval_s=0.05,
        health_timeout_s=0.2,
    )
    key = await stack.tenant("acme", ["support"])
    await stack.version("support")
    release = asyncio.Event()
    hold_last_chunk(monkeypatch, release)
    streams = await open_streams(stack, key, SLOTS)
    try:
        t0 = time.monotonic()
        r = await stack.chat(key, "support")
        waited = time.monotonic() - t0
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "1"
        err = r.json()["error"]
        assert err["code"] == "gateway_saturated" and err["type"] == "service_unavailable"
        assert waited >= 0.3  # it queued for the deadline before it was refused
        # Many health polls ran while every inference connection was busy: all passed.
        await asyncio.sleep(0.5)
        assert (
            stack.metric(
                "driftgate_gateway_upstream_up", replica=f"127.0.0.1:{stack.replicas[0].port}"
            )
            == 1
        )
        ready = await stack.client.get(stack.url + "/readyz")
        assert ready.status_code == 200, ready.text
        # Admin calls that reach the engine (a LoRA load) do not wait behind the streams.
        v2 = await asyncio.wait_for(stack.version("support", route=False), 2.0)
        assert v2 >= 2
    finally:
        release.set()
    assert await asyncio.gather(*streams) == [200] * SLOTS
    assert stack.metric("driftgate_gateway_upstream_slots_in_use") == 0
    r = await stack.chat(key, "support")
    assert r.status_code == 200, r.text


async def test_a_request_queued_within_the_deadline_is_served(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await make_stack(upstream_connections=SLOTS, upstream_queue_timeout_s=5.0)
    key = await stack.tenant("acme", ["support"])
    await stack.version("support")
    release = asyncio.Event()
    hold_last_chunk(monkeypatch, release)
    streams = await open_streams(stack, key, SLOTS)
    queued = asyncio.create_task(stack.chat(key, "support"))
    deadline = time.monotonic() + 5
    while stack.metric("driftgate_gateway_upstream_queued") < 1:
        assert time.monotonic() < deadline, "the request never queued"
        await asyncio.sleep(0.01)
    release.set()
    r = await queued
    assert r.status_code == 200, r.text
    assert await asyncio.gather(*streams) == [200] * SLOTS
    assert stack.metric("driftgate_gateway_upstream_queued") == 0


async def test_a_client_gone_before_its_stream_started_frees_its_slot(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await make_stack(upstream_connections=1, upstream_queue_timeout_s=0.5)
    key = await stack.tenant("acme", ["support"])
    await stack.version("support")
    release = asyncio.Event()
    hold_last_chunk(monkeypatch, release)
    async with AsyncExitStack() as stack_ctx:
        client = await stack_ctx.enter_async_context(httpx.AsyncClient(timeout=5))
        body = {"model": "support", "stream": True, "messages": [{"role": "user", "content": "a"}]}
        async with client.stream(
            "POST",
            stack.url + "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        ) as r:
            assert r.status_code == 200
        # The client hung up mid-stream: the slot comes back without the engine finishing.
    deadline = time.monotonic() + 5
    while stack.metric("driftgate_gateway_upstream_slots_in_use") != 0:
        assert time.monotonic() < deadline, "the abandoned stream kept its slot"
        await asyncio.sleep(0.01)
    release.set()
    r = await stack.chat(key, "support")
    assert r.status_code == 200, r.text
