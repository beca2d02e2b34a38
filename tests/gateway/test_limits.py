"""Per-tenant limits in one replica's memory: tokens per minute, concurrency, the bucket.

Pure units on an explicit clock, then a real gateway (its default, in-memory limiter).
"""

from __future__ import annotations

import asyncio

import pytest

from driftgate.core import admin_api
from driftgate.core.client import AsyncClient
from driftgate.core.errors import RateLimited
from driftgate.core.state.models import TenantInfo
from gateway.limits import MemoryLimiter, TokenWindow
from tests.gateway.conftest import ADMIN_KEY, BASE, Stack, StackFactory
from tests.gateway.held_stream import hold_last_chunk, stream_outlives_its_lease, streamed_chat


def _tenant(**limits: float) -> TenantInfo:
    values: dict[str, float] = {"rate_limit_rps": 0, "burst": 0, **limits}
    return TenantInfo(1, "acme", (), max_tokens=8, **values)  # type: ignore[arg-type]


def _refused(lim: MemoryLimiter, t: TenantInfo, now: float) -> RateLimited:
    with pytest.raises(RateLimited) as info:
        lim.admit_now(t, "probe", now)
    return info.value


def test_token_window_forgets_after_a_minute() -> None:
    w = TokenWindow()
    w.charge(40, now=10.2)
    w.charge(40, now=10.9)  # same second: one slot
    w.charge(30, now=35.0)
    assert w.used(now=69.9) == 110
    assert w.retry_after(budget=100, now=69.9) == pytest.approx(0.1)  # the 80 at 10 s go
    assert w.retry_after(budget=200, now=69.9) == 0.0
    assert w.used(now=70.0) == 30
    assert w.used(now=95.0) == 0


def test_tokens_per_minute_refuses_while_the_window_is_spent() -> None:
    lim = MemoryLimiter(lease_ttl_s=300)
    t = _tenant(tokens_per_minute=100)
    first = lim.admit_now(t, "r1", now=0.0)
    second = lim.admit_now(t, "r2", now=0.0)  # nothing charged yet: both admitted
    lim.settle(first, 70, now=1.0)
    lim.settle(second, 70, now=2.0)  # in flight, it overshoots the budget by its size
    exc = _refused(lim, t, now=3.0)
    assert exc.code == "rate_limit_exceeded" and "100 tokens/minute" in exc.message
    assert exc.retry_after_s == pytest.approx(58.0)  # second 1's 70 leaves the window at 61
    assert exc.headers["Retry-After"] == "58"
    _refused(lim, t, now=60.9)
    assert lim.admit_now(t, "r3", now=61.0).charge


def test_unlimited_tenants_are_never_charged_or_leased() -> None:
    lim = MemoryLimiter(lease_ttl_s=300)
    lease = lim.admit_now(_tenant(), "r1", now=0.0)
    assert not lease.charge and not lease.slot
    for i in range(1000):
        lim.admit_now(_tenant(), f"r{i}", now=0.0)


def test_concurrency_cap_leases_release_and_age_out() -> None:
    lim = MemoryLimiter(lease_ttl_s=300)
    t = _tenant(max_concurrent=2)
    a = lim.admit_now(t, "a", now=0.0)
    lim.admit_now(t, "b", now=0.0)
    exc = _refused(lim, t, now=1.0)
    assert "2 concurrent" in exc.message and exc.headers["Retry-After"] == "1"
    lim.settle(a, 5, now=2.0)
    lim.admit_now(t, "c", now=2.0)
    _refused(lim, t, now=299.0)
    # "b" was never given back (its replica died): it ages out after the lease ttl
    lim.admit_now(t, "d", now=300.0)
    lim.settle(a, 0, now=301.0)  # settling twice gives back nothing else
    _refused(lim, t, now=301.0)


def test_a_request_refused_by_one_limit_costs_the_bucket_nothing() -> None:
    lim = MemoryLimiter(lease_ttl_s=300)
    t = _tenant(rate_limit_rps=1e-9, burst=1, max_concurrent=1)
    lease = lim.admit_now(t, "a", now=0.0)
    _refused(lim, t, now=0.0)  # over the cap; the bucket is empty anyway
    lim.settle(lease, 0, now=0.0)
    exc = _refused(lim, t, now=0.0)
    assert "requests/s" in exc.message  # now the bucket refuses


def test_forget_drops_deleted_tenants() -> None:
    lim = MemoryLimiter(lease_ttl_s=300)
    t = _tenant(max_concurrent=1, tokens_per_minute=10, rate_limit_rps=1e-9, burst=1)
    lease = lim.admit_now(t, "a", now=0.0)
    lim.settle(lease, 50, now=0.0, release=False)
    lim.forget(set())
    assert lim.admit_now(t, "b", now=0.0).slot  # a tenant re-created under the name starts anew


# -- a real gateway, in-memory limits -------------------------------------------------


async def test_gateway_refuses_over_tokens_per_minute(stack: Stack) -> None:
    key = await stack.tenant("acme", [], tokens_per_minute=10)
    # each call: 2 prompt + 4 completion tokens (the fake echoes model, ":" and the prompt)
    assert (await stack.chat(key, BASE)).status_code == 200  # 6 of 10
    assert (await stack.chat(key, BASE)).status_code == 200  # admitted at 6; now 12
    r = await stack.chat(key, BASE)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    labels = {"tenant": "acme", "adapter": "-", "version": "-", "endpoint": "chat"}
    assert stack.metric("driftgate_gateway_requests_total", **labels, status="429") == 1


async def test_gateway_caps_concurrent_requests_and_frees_the_slot(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await stack.tenant("acme", [], max_concurrent=1)
    release = asyncio.Event()
    hold_last_chunk(monkeypatch, release)
    first_chunk = asyncio.Event()

    streaming = asyncio.create_task(streamed_chat(stack.client, stack.url, key, BASE, first_chunk))
    await asyncio.wait_for(first_chunk.wait(), 10)
    r = await stack.chat(key, BASE)
    assert r.status_code == 429 and "1 concurrent" in r.json()["error"]["message"]
    assert r.headers["retry-after"] == "1"
    release.set()
    assert await streaming == 200
    assert (await stack.chat(key, BASE)).status_code == 200  # the stream's slot is back


async def test_a_stream_longer_than_the_lease_keeps_its_slot(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leases last ``request_timeout_s`` (1.5 s here) and are renewed every 0.5 s: a stream
    held open for 3 leases still holds the tenant's one slot; once it ends, the slot is back."""
    stack = await make_stack(request_timeout_s=1.5)
    await stream_outlives_its_lease(stack, stack, BASE, monkeypatch)


async def test_admin_sets_and_changes_limits(stack: Stack) -> None:
    async with AsyncClient(stack.url, ADMIN_KEY) as admin:
        created = await admin.send(
            admin_api.create_tenant("acme", adapters=[], tokens_per_minute=1000, max_concurrent=4)
        )
        key = created["api_key"]
        (acme,) = await admin.send(admin_api.list_tenants())
        assert acme["tokens_per_minute"] == 1000 and acme["max_concurrent"] == 4
        changed = await admin.send(admin_api.update_tenant("acme", max_concurrent=0, burst=3))
    assert changed["max_concurrent"] == 0 and changed["burst"] == 3
    assert changed["tokens_per_minute"] == 1000
    r = await stack.admin("PATCH", "/admin/tenants/acme", {"rate_limit_rps": 1e-6, "burst": 1})
    assert r.status_code == 200, r.text
    assert [(await stack.chat(key, BASE)).status_code for _ in range(2)] == [200, 429]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "param"),
    [
        ("POST", "/admin/tenants", {"name": "x", "tokens_per_minute": -1}, 422, None),
        ("POST", "/admin/tenants", {"name": "x", "max_concurrent": 1.5}, 422, None),
        ("PATCH", "/admin/tenants/acme", {"max_concurrent": -1}, 422, None),
        ("PATCH", "/admin/tenants/acme", {"nope": 1}, 422, None),
        ("PATCH", "/admin/tenants/acme", {}, 400, "body"),
        ("PATCH", "/admin/tenants/ghost", {"burst": 1}, 404, None),
    ],
)
async def test_admin_refuses_bad_limits(
    stack: Stack, method: str, path: str, body: dict[str, object], status: int, param: str | None
) -> None:
    await stack.tenant("acme", [])
    r = await stack.admin(method, path, body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"] and error["type"]
    if param:
        assert error["param"] == param


async def test_changing_limits_needs_the_admin_key(stack: Stack) -> None:
    key = await stack.tenant("acme", [])
    for headers in ({}, {"Authorization": f"Bearer {key}"}):
        r = await stack.client.patch(
            stack.url + "/admin/tenants/acme", json={"burst": 1}, headers=headers
        )
        assert r.status_code == 401 and r.json()["error"]["type"]
