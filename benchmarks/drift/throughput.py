"""Ingest throughput of the drift service: events/s validated, stored and run through detectors.

Two ways, both on one core:

- ``inprocess``: ``drift.batch.parse_batch`` + ``DriftService.ingest`` on a
  fresh SQLite store (what one HTTP request does, minus HTTP);
- ``http``: the real service under uvicorn pinned to core 0 (``taskset``),
  loaded from core 1 by an aiohttp client posting pre-serialized batches.

Run: ``.venv/bin/python -m benchmarks.drift.throughput [--events N] [--mode M]``
(``--mode breakdown``: CPU time per ingest step).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from drift.batch import parse_batch
from drift.metrics import DriftMetrics
from drift.service import DriftService
from drift.settings import DriftSettings
from drift.store import DriftStore
from drift.trigger import TriggerManager
from driftgate.core.events import EventBatch, RequestEvent
from driftgate.core.gc_tuning import tuned_for_service
from driftgate.core.ids import time_ordered_id

ROOT = Path(__file__).resolve().parents[2]


def make_batches(n_events: int, batch: int, seed: int = 0) -> list[bytes]:
    """Realistic events over 4 adapters x 2 versions, serialized as the gateway sends them.

    Request and event ids are time-ordered, as the gateway makes them (driftgate.core.ids).
    """
    rng = random.Random(seed)
    bodies = []
    for start in range(0, n_events, batch):
        events = []
        for i in range(start, min(n_events, start + batch)):
            adapter = rng.choice(["support", "billing", "hr", "legal"])
            events.append(
                RequestEvent(
                    request_id=f"chatcmpl-{time_ordered_id()}",  # as the gateway makes them
                    tenant="acme",
                    adapter=adapter,
                    version=rng.choice([1, 2]),
                    prompt_text=f"Customer question number {i} about the {adapter} topic?",
                    completion_text="Thanks for asking; here is what to do next.",
                    prompt_tokens=rng.randint(20, 200),
                    completion_tokens=rng.randint(10, 120),
                    latency_ms=rng.gauss(400, 50),
                    ttft_ms=rng.gauss(80, 10),
                    finish_reason="stop" if rng.random() < 0.95 else "length",
                    stream=True,
                )
            )
        bodies.append(EventBatch(events=events).model_dump_json().encode())
    return bodies


#: The gateway's credential toward the service, as a deployment sets it.
INGEST_KEY = "benchmark-ingest-key"


def settings_for(url: str, synchronous: str) -> DriftSettings:
    return DriftSettings.model_validate(
        {
            "state_url": url,
            "trigger_mode": "off",
            "sqlite_synchronous": synchronous,
            "retention_days": 0,
        }
    )


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (this one by default), children excluded."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def inprocess(bodies: list[bytes], n_events: int, synchronous: str) -> tuple[float, float]:
    tmp = Path(tempfile.mkdtemp(prefix="drift-bench-"))
    try:
        settings = settings_for(f"sqlite:///{tmp / 'state.db'}", synchronous)
        store = DriftStore.from_url(settings.state_url, sqlite_synchronous=synchronous)
        store.create_all()
        metrics = DriftMetrics()
        service = DriftService(settings, store, metrics, TriggerManager(None, store, metrics, 0))
        with tuned_for_service(settings.gc_gen0_threshold):  # as the service's lifespan
            t0, c0 = time.perf_counter(), cpu_seconds()
            for body in bodies:
                await service.ingest(parse_batch(body))
            elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        assert store.counts()["drift_requests"] == n_events
        store.close()
        return n_events / elapsed, n_events / cpu
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def http(
    bodies: list[bytes], n_events: int, synchronous: str, concurrency: int
) -> tuple[float, float]:
    tmp = Path(tempfile.mkdtemp(prefix="drift-bench-"))
    log = tmp / "uvicorn.log"
    env = dict(
        os.environ,
        DRIFTGATE_STATE_URL=f"sqlite:///{tmp / 'state.db'}",
        DRIFTGATE_DRIFT_TRIGGER_MODE="off",
        DRIFTGATE_DRIFT_SQLITE_SYNCHRONOUS=synchronous,
        DRIFTGATE_DRIFT_RETENTION_DAYS="0",
        DRIFTGATE_INGEST_KEY=INGEST_KEY,
        PYTHONPATH=str(ROOT),
    )
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 (started once, before the measurement)
            [
                *pin,
                *(sys.executable, "-m", "uvicorn", "--factory"),
                "driftgate.deployables.drift_service:app",
                *("--host", "127.0.0.1", "--port", "0", "--log-level", "warning"),
                *("--no-access-log", "--log-level", "info"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    try:
        port = 0
        for _ in range(600):
            m = re.search(rb"running on http://127\.0\.0\.1:(\d+)", log.read_bytes())
            if m:
                port = int(m[1])
                break
            await asyncio.sleep(0.1)
        assert port, log.read_text()
        if pin:
            os.sched_setaffinity(0, {1})
        url = f"http://127.0.0.1:{port}/v1/events"
        headers = {"content-type": "application/json", "authorization": f"Bearer {INGEST_KEY}"}
        queue = list(reversed(bodies))
        async with aiohttp.ClientSession() as session:

            async def worker() -> None:
                while queue:
                    body = queue.pop()
                    async with session.post(url, data=body, headers=headers) as resp:
                        assert resp.status == 202, await resp.text()
                        await resp.read()

            server = proc.pid
            t0, c0 = time.perf_counter(), cpu_seconds(server)
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed, cpu = time.perf_counter() - t0, cpu_seconds(server) - c0
        store = DriftStore.from_url(env["DRIFTGATE_STATE_URL"])
        assert store.counts()["drift_requests"] == n_events
        store.close()
        return n_events / elapsed, n_events / cpu
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def breakdown(bodies: list[bytes], n_events: int) -> dict[str, float]:
    """CPU time per event (us) of each ingest step, measured separately."""
    with tuned_for_service(DriftSettings().gc_gen0_threshold):  # as the service's lifespan
        return _steps(bodies, n_events)


def _steps(bodies: list[bytes], n_events: int) -> dict[str, float]:
    from drift.batch import request_rows, signal_columns
    from drift.service import monitor_config
    from drift.versions import DriftMonitor

    clock = time.process_time
    t0 = clock()
    batches = [parse_batch(b) for b in bodies]
    t1 = clock()
    built = [request_rows(b.events, lambda _a: "keep") for b in batches]
    t2 = clock()
    tmp = Path(tempfile.mkdtemp(prefix="drift-bench-"))
    store = DriftStore.from_url(f"sqlite:///{tmp / 'state.db'}")
    store.create_all()
    t3 = clock()
    for b in built:
        store.insert_requests(b.rows)
    t4 = clock()
    store.close()
    shutil.rmtree(tmp, ignore_errors=True)
    monitor = DriftMonitor(monitor_config(settings_for("sqlite://", "FULL")))
    t5 = clock()
    columns = [
        signal_columns(b.events, r.keys, r.empties, r.refusals)
        for b, r in zip(batches, built, strict=True)
    ]
    t6 = clock()
    for cols in columns:
        for (adapter, version), c in cols.items():
            monitor.observe_many(adapter, version, c)
    t7 = clock()
    us = 1e6 / n_events
    return {
        "validation (parse_batch: EventBatch, strict then lax)": (t1 - t0) * us,
        "rows + empty/refusal flags (request_rows)": (t2 - t1) * us,
        "SQLite insert (executemany, one transaction)": (t4 - t3) * us,
        "signal columns per version (signal_columns)": (t6 - t5) * us,
        "detectors (DriftMonitor.observe_many)": (t7 - t6) * us,
    }


async def measure(
    bodies: list[bytes], n_events: int, mode: str, synchronous: str, concurrency: int = 4
) -> tuple[float, float]:
    """(events/s wall clock, events per CPU-second of the service) of one ``mode``.

    The service runs on core 0 (this process in-process, the uvicorn process over HTTP),
    the HTTP load generator on core 1, when ``taskset`` and two cores are there.
    """
    every = set(range(os.cpu_count() or 1))
    pin = shutil.which("taskset") is not None and len(every) >= 2
    try:
        if mode == "inprocess":
            if pin:
                os.sched_setaffinity(0, {0})
            return await inprocess(bodies, n_events, synchronous)
        return await http(bodies, n_events, synchronous, concurrency)
    finally:
        if pin:
            os.sched_setaffinity(0, every)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--mode", choices=["inprocess", "http", "both", "breakdown"], default="both")
    args = ap.parse_args()
    bodies = make_batches(args.events, args.batch)
    if args.mode == "breakdown":
        if shutil.which("taskset"):
            os.sched_setaffinity(0, {0})
        print("| step | CPU us/event |\n|---|---|")
        for step, us in breakdown(bodies, args.events).items():
            print(f"| {step} | {us:.1f} |")
        return
    print(f"{args.events} events in batches of {args.batch}; one core for the service")
    modes = ["inprocess", "http"] if args.mode == "both" else [args.mode]
    for sync in ("FULL", "NORMAL"):
        for mode in modes:
            rate, per_cpu = await measure(bodies, args.events, mode, sync, args.concurrency)
            print(
                f"| {mode} | synchronous={sync} | {rate:,.0f} events/s wall "
                f"| {per_cpu:,.0f} events per CPU-second of the service |",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
