"""Ingest throughput of the drift service: events/s validated, stored and run through detectors.

Two ways, both on one core:

- ``inprocess``: ``EventBatch.model_validate_json`` + ``DriftService.ingest`` on a
  fresh SQLite store (what one HTTP request does, minus HTTP);
- ``http``: the real service under uvicorn pinned to core 0 (``taskset``),
  loaded from core 1 by an aiohttp client posting pre-serialized batches.

Run: ``.venv/bin/python benchmarks/drift/throughput.py [--events N] [--batch B]``
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

from drift.metrics import DriftMetrics
from drift.service import DriftService
from drift.settings import DriftSettings
from drift.store import DriftStore
from drift.trigger import TriggerManager
from driftgate.events import EventBatch, RequestEvent

ROOT = Path(__file__).resolve().parents[2]


def make_batches(n_events: int, batch: int, seed: int = 0) -> list[bytes]:
    """Realistic events over 4 adapters x 2 versions, serialized as the gateway sends them."""
    rng = random.Random(seed)
    bodies = []
    for start in range(0, n_events, batch):
        events = []
        for i in range(start, min(n_events, start + batch)):
            adapter = rng.choice(["support", "billing", "hr", "legal"])
            events.append(
                RequestEvent(
                    request_id=f"req-{seed}-{i}",
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
        t0, c0 = time.perf_counter(), cpu_seconds()
        for body in bodies:
            await service.ingest(EventBatch.model_validate_json(body))
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
        DRIFTGATE_DRIFT_STATE_URL=f"sqlite:///{tmp / 'state.db'}",
        DRIFTGATE_DRIFT_TRIGGER_MODE="off",
        DRIFTGATE_DRIFT_SQLITE_SYNCHRONOUS=synchronous,
        DRIFTGATE_DRIFT_RETENTION_DAYS="0",
        PYTHONPATH=str(ROOT),
    )
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 (started once, before the measurement)
            [
                *pin,
                *(sys.executable, "-m", "uvicorn", "--factory", "drift.app:create_app_from_env"),
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
        headers = {"content-type": "application/json"}
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
        store = DriftStore.from_url(env["DRIFTGATE_DRIFT_STATE_URL"])
        assert store.counts()["drift_requests"] == n_events
        store.close()
        return n_events / elapsed, n_events / cpu
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def breakdown(bodies: list[bytes], n_events: int) -> None:
    """CPU time per event of each ingest step, measured separately."""
    from drift.features import request_features
    from drift.service import monitor_config, request_row
    from drift.versions import DriftMonitor

    clock = time.process_time
    t0 = clock()
    batches = [EventBatch.model_validate_json(b) for b in bodies]
    t1 = clock()
    feats = [[request_features(e) for e in b.events] for b in batches]
    t2 = clock()
    rows = [
        [request_row(e, f, "keep") for e, f in zip(b.events, fs, strict=True)]
        for b, fs in zip(batches, feats, strict=True)
    ]
    t3 = clock()
    tmp = Path(tempfile.mkdtemp(prefix="drift-bench-"))
    store = DriftStore.from_url(f"sqlite:///{tmp / 'state.db'}")
    store.create_all()
    t4 = clock()
    for r in rows:
        store.insert_requests(r)
    t5 = clock()
    store.close()
    shutil.rmtree(tmp, ignore_errors=True)
    monitor = DriftMonitor(monitor_config(settings_for("sqlite://", "FULL")))
    t6 = clock()
    for b, fs in zip(batches, feats, strict=True):
        columns: dict[tuple[str, int], dict[str, list[float | str]]] = {}
        for e, f in zip(b.events, fs, strict=True):
            cols = columns.setdefault((e.adapter or "base", e.version or 0), {})
            for name, value in f.signals():
                cols.setdefault(name, []).append(value)
        for (adapter, version), cols in columns.items():
            monitor.observe_many(adapter, version, cols)
    t7 = clock()
    us = 1e6 / n_events
    print("| step | CPU us/event |\n|---|---|")
    print(f"| validation (EventBatch.model_validate_json) | {(t1 - t0) * us:.1f} |")
    print(f"| features | {(t2 - t1) * us:.1f} |")
    print(f"| rows | {(t3 - t2) * us:.1f} |")
    print(f"| SQLite insert | {(t5 - t4) * us:.1f} |")
    print(f"| grouping + detectors | {(t7 - t6) * us:.1f} |")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--mode", choices=["inprocess", "http", "both", "breakdown"], default="both")
    args = ap.parse_args()
    if shutil.which("taskset") and args.mode != "http":
        os.sched_setaffinity(0, {0})
    bodies = make_batches(args.events, args.batch)
    if args.mode == "breakdown":
        breakdown(bodies, args.events)
        return
    print(f"{args.events} events in batches of {args.batch}; one core for the service")
    for sync in ("FULL", "NORMAL"):
        if args.mode in ("inprocess", "both"):
            rate, per_cpu = await inprocess(bodies, args.events, sync)
            print(
                f"| in-process | synchronous={sync} | {rate:,.0f} events/s wall "
                f"| {per_cpu:,.0f} events per CPU-second |",
                flush=True,
            )
        if args.mode in ("http", "both"):
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
            rate, per_cpu = await http(bodies, args.events, sync, args.concurrency)
            print(
                f"| HTTP (uvicorn) | synchronous={sync} | {rate:,.0f} events/s wall "
                f"| {per_cpu:,.0f} events per server CPU-second |",
                flush=True,
            )
            if shutil.which("taskset") and args.mode == "both":
                os.sched_setaffinity(0, {0})


if __name__ == "__main__":
    asyncio.run(main())
