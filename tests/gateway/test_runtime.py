"""The gateway's background loops: they survive any error, export their last success,
and settle versions left ``loading`` by a gateway that went away."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from driftgate.core.state import StateStore, VersionState
from tests.gateway.conftest import Stack, StackFactory, make_peft_dir

LAST = "driftgate_loop_last_success_timestamp_seconds"
FAILURES = "driftgate_loop_failures_total"


async def _until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_every_loop_exports_its_last_success(make_stack: StackFactory) -> None:
    s: Stack = await make_stack(heartbeat_interval_s=0.2)
    t0 = time.time()
    loops = ("state_refresh", "replica_health", "heartbeat")
    await _until(lambda: all(s.metric(LAST, loop=name) > t0 for name in loops))
    for name in loops:
        assert s.metric("driftgate_loop_interval_seconds", loop=name) == 0.2
        assert s.metric(FAILURES, loop=name) == 0
    text = (await s.client.get(s.url + "/metrics")).text
    assert 'driftgate_loop_last_success_timestamp_seconds{loop="state_refresh"}' in text


async def test_the_state_refresh_loop_survives_any_exception(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    s: Stack = await make_stack()
    snapshot = StateStore.snapshot

    def broken(self: StateStore) -> object:
        raise ZeroDivisionError("a bug in the snapshot")

    monkeypatch.setattr(StateStore, "snapshot", broken)
    await _until(lambda: s.metric(FAILURES, loop="state_refresh") >= 3)
    stalled = s.metric(LAST, loop="state_refresh")
    await asyncio.sleep(0.5)
    assert s.metric(LAST, loop="state_refresh") == stalled  # no success while broken
    assert any(
        "background loop state_refresh" in r.getMessage() and r.exc_info is not None
        for r in caplog.records
    )
    monkeypatch.setattr(StateStore, "snapshot", snapshot)
    await _until(lambda: s.metric(LAST, loop="state_refresh") > stalled)
    # still serving: the snapshot is read again
    key = await s.tenant("acme", ["*"])
    assert (await s.chat(key, "SmolLM2-135M-Instruct")).status_code == 200


async def test_a_version_stuck_loading_is_failed_and_unloaded(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    s: Stack = await make_stack(loading_timeout_s=0.5)
    # A gateway recorded the version and loaded one replica, then died before "ready".
    path = make_peft_dir(tmp_path, "half-loaded")
    store = StateStore(s.settings.state_url)
    try:
        await asyncio.to_thread(store.create_version, "support", path)
    finally:
        store.dispose()
    s.replicas[0].loaded["support--v1"] = path

    async def state() -> str:
        data = (await s.admin("GET", "/admin/adapters?adapter=support")).json()["data"]
        return str(data[0]["state"])

    assert await state() == "loading"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while await state() != "failed":
        assert loop.time() < deadline
        await asyncio.sleep(0.1)
    await _until(lambda: "support--v1" not in s.replicas[0].loaded)
    data = (await s.admin("GET", "/admin/adapters?adapter=support")).json()["data"]
    assert "still loading after 0.5 s" in data[0]["error"]
    assert VersionState(data[0]["state"]) is VersionState.FAILED
