"""The drift service's background loops (retention, and the rollout controller mounted on
it) survive any exception, log it, and export their last success on its /metrics."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from drift.app import create_app
from drift.service import DriftService
from drift.settings import DriftSettings
from rollout.mount import with_rollouts
from rollout.settings import RolloutSettings
from rollout.store import RolloutStore
from tests.drift.test_drift_app import metric

LAST = "driftgate_loop_last_success_timestamp_seconds"
FAILURES = "driftgate_loop_failures_total"


def _until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_retention_and_rollout_loops_survive_any_exception(
    settings: DriftSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    purge = DriftService.purge
    active = RolloutStore.rollouts

    async def broken_purge(*_: object) -> None:
        raise LookupError("a bug in one step")

    def broken_read(*_: object, **__: object) -> None:
        raise LookupError("a bug in one step")

    monkeypatch.setattr(DriftService, "purge", broken_purge)
    monkeypatch.setattr(RolloutStore, "rollouts", broken_read)
    app = with_rollouts(
        create_app(settings.model_copy(update={"retention_interval_s": 0.05})),
        RolloutSettings(
            state_url=settings.state_url,
            admin_key=SecretStr("k"),
            gateway_url="http://127.0.0.1:9",  # never called: no rollout is active
            interval_s=0.05,
        ),
    )
    with TestClient(app) as c:
        loops = ("retention", "rollout_controller")
        _until(lambda: all(metric(c, FAILURES, loop=name) >= 3 for name in loops))
        started = {name: metric(c, LAST, loop=name) for name in loops}
        assert all(started.values())  # the start counts, so a never-succeeding loop alerts
        assert metric(c, "driftgate_loop_interval_seconds", loop="retention") == 0.05
        monkeypatch.setattr(DriftService, "purge", purge)
        monkeypatch.setattr(RolloutStore, "rollouts", active)
        _until(lambda: all(metric(c, LAST, loop=name) > started[name] for name in loops))
        assert c.get("/readyz").status_code == 200
    for name in loops:
        assert any(
            f"background loop {name}" in r.getMessage() and r.exc_info is not None
            for r in caplog.records
        )
