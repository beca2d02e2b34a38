"""Per-tenant limits shared through Redis: two real gateways admit a tenant's limits once.

Each test runs two gateways (``make_stack`` twice: one state database, one Redis, a key
prefix of its own) and sends the tenant's requests to both in turn. Rates are ~0 and
token counts fixed, so every count is exact; where a write lands in the background
(tokens charged, a slot given back) the test waits for Redis to show it, not for time.
Then the shared store goes down: the gateway fails open to its own limits, counts it,
and shares the limits again once Redis is back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aredis

from tests.gateway.conftest import BASE, Stack, StackFactory
from tests.gateway.held_stream import hold_last_chunk, stream_outlives_its_lease, streamed_chat
from tests.gateway.redis_server import RedisProcess, shared_redis_url

#: Bound of the waits for a background write to show in Redis (reached only on failure).
_WAIT_BOUND_S = 10.0
_NEVER = 1e-6  # requests/s: the bucket never refills within a test


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + _WAIT_BOUND_S
    while not await check():
        assert time.monotonic() < deadline, "Redis never showed the write"
        await asyncio.sleep(0.01)


@pytest_asyncio.fixture(loop_scope="function")
async def shared(make_stack: StackFactory) -> AsyncIterator[tuple[Stack, Stack, str]]:
    """Two gateways sharing the state database and Redis; the key prefix they use."""
    url = shared_redis_url()
    prefix = f"test:{uuid.uuid4().hex}"
    a = await make_stack(limits_redis_url=url, limits_redis_prefix=prefix)
    b = await make_stack(limits_redis_url=url, limits_redis_prefix=prefix)
    yield a, b, prefix
    r = aredis.Redis.from_url(url)
    keys = [k async for k in r.scan_iter(f"{prefix}:*")]
    if keys:
        await r.delete(*keys)
    await r.aclose()


def _redis(s: Stack) -> aredis.Redis:
    """A client of the Redis ``s`` keeps its limits in."""
    url = s.settings.limits_redis_url
    assert url is not None
    return aredis.Redis.from_url(url.get_secret_value())


async def _tenant(a: Stack, b: Stack, **limits: float) -> str:
    key = await a.tenant("acme", [], **limits)
    assert (await b.admin("POST", "/admin/refresh")).status_code == 200  # b knows the key now
    return key


async def test_two_gateways_share_one_bucket(shared: tuple[Stack, Stack, str]) -> None:
    a, b, prefix = shared
    key = await _tenant(a, b, rate_limit_rps=_NEVER, burst=5)
    statuses = [(await (a, b)[i % 2].chat(key, BASE)).status_code for i in range(10)]
    assert statuses == [200] * 5 + [429] * 5  # per-replica buckets would pass all 10
    r = await b.chat(key, BASE)
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(r.headers["retry-after"]) > 1000
    for s in (a, b):
        assert s.metric("driftgate_gateway_limiter_errors_total", reason="connection") == 0
    redis = _redis(a)
    assert await redis.exists(f"{prefix}:{{acme}}:rate")
    await redis.aclose()


async def test_two_gateways_share_the_feedback_bucket(shared: tuple[Stack, Stack, str]) -> None:
    """Votes are bounded once across replicas, in a bucket apart from the requests'."""
    a, b, prefix = shared
    key = await _tenant(a, b, rate_limit_rps=_NEVER, burst=3)
    auth = {"Authorization": f"Bearer {key}"}
    body = {"request_id": "not-issued-to-anyone", "score": 0.0}
    statuses = [
        (await s.client.post(s.url + "/v1/feedback", json=body, headers=auth)).status_code
        for s in (a, b, a, b, a, b)
    ]
    # Charged before the request id is checked: 404 for the first three, then refused.
    assert statuses == [404] * 3 + [429] * 3  # per-replica buckets would let 6 through
    r = await a.client.post(a.url + "/v1/review/items/1", json={"label": "ok"}, headers=auth)
    assert r.status_code == 429 and "feedback rate limit" in r.json()["error"]["message"]
    assert (await b.chat(key, BASE)).status_code == 200  # the request bucket is untouched
    redis = _redis(a)
    assert await redis.exists(f"{prefix}:{{acme}}:feedback")
    await redis.aclose()


async def test_a_stream_longer_than_the_lease_keeps_its_shared_slot(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slot a stream through ``a`` holds in Redis (lease 1.5 s, renewed every 0.5 s)
    still refuses ``b`` after 3 leases; ``b`` gets it once the stream ends."""
    url = shared_redis_url()
    opts = {"limits_redis_url": url, "limits_redis_prefix": f"test:{uuid.uuid4().hex}"}
    a = await make_stack(request_timeout_s=1.5, **opts)
    b = await make_stack(request_timeout_s=1.5, **opts)
    await stream_outlives_its_lease(a, b, BASE, monkeypatch)
    assert a.metric("driftgate_loop_failures_total", loop="lease_renewal") == 0


async def test_two_gateways_share_tokens_per_minute(shared: tuple[Stack, Stack, str]) -> None:
    a, b, prefix = shared
    key = await _tenant(a, b, tokens_per_minute=10)
    redis = _redis(a)

    async def used() -> int:
        return sum(int(v) for v in (await redis.hgetall(f"{prefix}:{{acme}}:tpm")).values())

    assert (await a.chat(key, BASE)).status_code == 200  # 6 tokens charged when it ends
    await _until(lambda: _equals(used(), 6))
    assert (await b.chat(key, BASE)).status_code == 200  # 6 < 10: admitted, 12 after
    await _until(lambda: _equals(used(), 12))
    for s in (a, b):
        r = await s.chat(key, BASE)
        assert r.status_code == 429 and "10 tokens/minute" in r.json()["error"]["message"]
        assert 1 <= int(r.headers["retry-after"]) <= 60
    await redis.aclose()


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def test_two_gateways_share_the_concurrency_cap(
    shared: tuple[Stack, Stack, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, prefix = shared
    key = await _tenant(a, b, max_concurrent=1)
    release = asyncio.Event()
    hold_last_chunk(monkeypatch, release)
    first_chunk = asyncio.Event()

    streaming = asyncio.create_task(streamed_chat(a.client, a.url, key, BASE, first_chunk))
    await asyncio.wait_for(first_chunk.wait(), _WAIT_BOUND_S)
    for s in (b, a):
        r = await s.chat(key, BASE)
        assert r.status_code == 429 and "1 concurrent" in r.json()["error"]["message"]
    release.set()
    assert await streaming == 200
    redis = _redis(a)

    async def no_lease() -> bool:
        return await redis.zcard(f"{prefix}:{{acme}}:conc") == 0

    await _until(no_lease)
    assert (await b.chat(key, BASE)).status_code == 200  # the stream's slot is back
    await redis.aclose()


async def test_redis_down_fails_open_to_each_replicas_limits(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    server = RedisProcess(tmp_path).start()
    try:
        # A generous timeout: only the refused connections of a stopped Redis may fail a call
        # here (a call slower than the default 0.1 s on loaded cores would fail open too).
        opts = {
            "limits_redis_url": server.url,
            "limits_redis_retry_s": 0.05,
            "limits_redis_timeout_s": 2.0,
        }
        a = await make_stack(**opts)
        b = await make_stack(**opts)
        key = await _tenant(a, b, rate_limit_rps=_NEVER, burst=2)
        assert [(await s.chat(key, BASE)).status_code for s in (a, b, a)] == [200, 200, 429]

        server.stop()
        # fail open: a decides alone, with a bucket of its own (burst 2), and counts it
        assert (await a.chat(key, BASE)).status_code == 200
        assert a.metric("driftgate_gateway_limiter_errors_total", reason="connection") >= 1
        assert [(await a.chat(key, BASE)).status_code for _ in range(2)] == [200, 429]
        # feedback fails open the same way: a's own feedback bucket (burst 2), then 429
        auth = {"Authorization": f"Bearer {key}"}
        body = {"request_id": "not-issued-to-anyone", "score": 1.0}
        votes = [
            (await a.client.post(a.url + "/v1/feedback", json=body, headers=auth)).status_code
            for _ in range(3)
        ]
        assert votes == [404, 404, 429]

        server.start()  # empty: a new tenant's limits are shared again
        await asyncio.sleep(0.2)  # past limits_redis_retry_s: the next call tries Redis
        errors = a.metric("driftgate_gateway_limiter_errors_total", reason="connection")
        key2 = await _tenant_named(a, b, "beta", rate_limit_rps=_NEVER, burst=2)
        statuses = [(await (a, b)[i % 2].chat(key2, BASE)).status_code for i in range(6)]
        assert statuses == [200, 200, 429, 429, 429, 429]  # alone they would pass 4
        assert a.metric("driftgate_gateway_limiter_errors_total", reason="connection") == errors
    finally:
        server.stop()


async def _tenant_named(a: Stack, b: Stack, name: str, **limits: float) -> str:
    key = await a.tenant(name, [], **limits)
    assert (await b.admin("POST", "/admin/refresh")).status_code == 200
    return key


async def test_a_redis_that_never_answers_does_not_hold_requests(
    make_stack: StackFactory,
) -> None:
    """A black hole (accepts, never replies) costs a request one timeout, then none."""
    held: list[asyncio.StreamWriter] = []

    async def mute(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    hole = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = hole.sockets[0].getsockname()[1]
    try:
        s = await make_stack(
            limits_redis_url=f"redis://127.0.0.1:{port}/0",
            limits_redis_timeout_s=0.1,
            limits_redis_retry_s=60,
        )
        key = await s.tenant("acme", [], rate_limit_rps=_NEVER, burst=1)
        t0 = time.monotonic()
        assert (await s.chat(key, BASE)).status_code == 200
        assert time.monotonic() - t0 < 2.0  # one 0.1 s timeout, far below the bound
        assert s.metric("driftgate_gateway_limiter_errors_total", reason="timeout") == 1
        assert (await s.chat(key, BASE)).status_code == 429  # this replica's own bucket
        assert s.metric("driftgate_gateway_limiter_errors_total", reason="timeout") == 1
    finally:
        for w in held:
            w.close()
        hole.close()
