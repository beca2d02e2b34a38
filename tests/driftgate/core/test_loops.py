"""``run_forever``: any exception is logged and survived; the last success is exported."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prometheus_client import CollectorRegistry

from driftgate.core.loops import LoopMetrics, run_forever


def _sample(registry: CollectorRegistry, name: str, loop: str) -> float | None:
    return registry.get_sample_value(name, {"loop": loop})


async def test_a_loop_survives_any_exception_logs_it_and_counts_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    clock = iter(range(100, 10_000))
    metrics = LoopMetrics(registry, clock=lambda: float(next(clock)))
    calls: list[int] = []
    done = asyncio.Event()

    async def step() -> None:
        calls.append(1)
        if len(calls) == 6:
            done.set()
        if len(calls) in (2, 3):
            raise KeyError("a bug in one step")  # not an error the loop expects

    task = asyncio.create_task(run_forever("demo", step, 0.0, metrics=metrics, error_delay_s=0))
    await asyncio.wait_for(done.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _sample(registry, "driftgate_loop_failures_total", "demo") == 2
    assert _sample(registry, "driftgate_loop_interval_seconds", "demo") == 0.0
    # start + every successful step advanced the clock; the failed ones did not
    assert _sample(registry, "driftgate_loop_last_success_timestamp_seconds", "demo") >= 103
    failures = [r for r in caplog.records if "background loop demo" in r.getMessage()]
    assert len(failures) == 2 and all(r.exc_info is not None for r in failures)
    assert all(r.levelno == logging.ERROR for r in failures)


async def test_expected_errors_are_one_line_and_stop_the_last_success(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    now = [1000.0]
    metrics = LoopMetrics(registry, clock=lambda: now[0])
    calls: list[int] = []
    done = asyncio.Event()

    async def step() -> None:
        calls.append(1)
        if len(calls) == 3:
            done.set()
        now[0] += 10
        raise OSError("database is down")

    loop = run_forever(
        "refresh", step, 0.0, metrics=metrics, expected=(OSError,), period_s=2.5, error_delay_s=0
    )
    task = asyncio.create_task(loop)
    await asyncio.wait_for(done.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Only the start counts: a loop that never succeeds goes stale and alerts.
    assert _sample(registry, "driftgate_loop_last_success_timestamp_seconds", "refresh") == 1000
    assert _sample(registry, "driftgate_loop_interval_seconds", "refresh") == 2.5
    warned = [r for r in caplog.records if "database is down" in r.getMessage()]
    assert warned and all(r.exc_info is None and r.levelno == logging.WARNING for r in warned)


async def test_delay_first_waits_one_interval_before_the_first_step() -> None:
    calls: list[float] = []
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    async def step() -> None:
        calls.append(loop.time())
        done.set()

    t0 = loop.time()
    task = asyncio.create_task(run_forever("late", step, 0.05, delay_first=True))
    await asyncio.wait_for(done.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls[0] - t0 >= 0.045
