"""Two or more replicas: retries, a replica killed mid-run, adapters reloaded after a restart.

The replicas are fake vLLMs (``fake_vllm.py``): they can be killed, made to fail
with 5xx, or drop connections on purpose, which a real vLLM cannot do on demand.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.gateway.conftest import BASE, StackFactory


async def test_5xx_and_dropped_connections_are_retried(make_stack: StackFactory) -> None:
    s = await make_stack(replicas=2)
    key = await s.tenant("acme", ["*"])
    bad, good = s.replicas
    bad.fail_status = 503
    for _ in range(10):
        assert (await s.chat(key, BASE)).status_code == 200
    bad.fail_status, bad.drop_connection = None, True
    for _ in range(10):
        assert (await s.chat(key, BASE)).status_code == 200
    retries = sum(
        s.metric(
            "driftgate_gateway_upstream_retries_total",
            replica=f"127.0.0.1:{bad.port}",
            reason=reason,
        )
        for reason in ("5xx", "disconnect")
    )
    assert retries == len(bad.requests) > 0
    assert len(good.requests) == 20


@pytest.mark.timeout(120)
async def test_killing_a_replica_mid_run_fails_no_request(make_stack: StackFactory) -> None:
    s = await make_stack(replicas=2)
    key = await s.tenant("acme", ["support"], rate_limit_rps=0)
    await s.version("support")
    victim, survivor = s.replicas
    for f in s.replicas:
        f.delay_s = 0.02  # requests are in flight on both when the kill comes
    statuses: list[int] = []

    async def worker() -> None:
        for _ in range(40):
            r = await s.chat(key, "support")
            statuses.append(r.status_code)

    workers = [asyncio.create_task(worker()) for _ in range(8)]
    await asyncio.sleep(0.5)
    served_before = len(victim.requests)
    await victim.stop()  # killed: open connections dropped, new ones refused
    await asyncio.gather(*workers)
    assert len(statuses) == 320
    assert statuses.count(200) == 320, sorted(set(statuses))
    assert served_before > 0 and len(survivor.requests) > 160
    assert s.metric("driftgate_gateway_upstream_up", replica=f"127.0.0.1:{victim.port}") == 0


async def test_restarted_replica_gets_its_adapters_back(make_stack: StackFactory) -> None:
    s = await make_stack(replicas=1, health_interval_s=1.0)
    key = await s.tenant("acme", ["support"])
    v = await s.version("support")
    fake = s.replicas[0]
    fake.loaded.clear()  # as after an engine restart
    r = await s.chat(key, "support")
    assert r.status_code == 503  # 404 from the engine: not loaded anywhere now
    for _ in range(60):
        if f"support--v{v}" in fake.loaded:
            break
        await asyncio.sleep(0.05)
    assert f"support--v{v}" in fake.loaded  # the poller reloaded it
    assert (await s.chat(key, "support")).status_code == 200


async def test_load_outcomes_exist_at_zero_and_loaded_adapters_are_counted(
    make_stack: StackFactory,
) -> None:
    """Every replica's load counters exist at 0 before the first load, so an alert's
    increase() sees the first failure; the loaded-adapters gauge follows /v1/models."""
    s = await make_stack(replicas=2)
    for fake in s.replicas:
        replica = f"127.0.0.1:{fake.port}"
        for outcome in ("ok", "failed"):
            labels = {"replica": replica, "outcome": outcome}
            value = s.metrics.registry.get_sample_value(
                "driftgate_gateway_adapter_loads_total", labels
            )
            assert value is not None
    await s.version("support")
    for fake in s.replicas:
        replica = f"127.0.0.1:{fake.port}"
        assert s.metric("driftgate_gateway_upstream_adapters_loaded", replica=replica) >= 1
