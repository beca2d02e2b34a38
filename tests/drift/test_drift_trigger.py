"""Retrain triggers: a real subprocess, and a stand-in Kubernetes API server.

The Kubernetes API is an aiohttp stand-in (no cluster can be had here): it
checks the bearer token, records created Jobs and lists them by label.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from drift.metrics import DriftMetrics
from drift.store import DriftStore
from drift.trigger import KubernetesLauncher, SubprocessLauncher, TriggerManager

HERE = Path(__file__).parent


@pytest.fixture
def store(tmp_path: Path) -> DriftStore:
    s = DriftStore.from_url(f"sqlite:///{tmp_path / 's.db'}")
    s.create_all()
    return s


async def wait_done(launcher: SubprocessLauncher, adapter: str) -> None:
    for _ in range(200):
        if not await launcher.running(adapter):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("fake retrain did not finish")


async def test_subprocess_trigger_runs_once_dedups_and_cools_down(
    store: DriftStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_RETRAIN_OUT", str(out))
    monkeypatch.setenv("FAKE_RETRAIN_SLEEP", "1.0")
    launcher = SubprocessLauncher(
        [sys.executable, str(HERE / "fake_retrain_job.py")], tmp_path / "logs"
    )
    now = [1000.0]
    metrics = DriftMetrics()
    mgr = TriggerManager(launcher, store, metrics, cooldown_s=60, clock=lambda: now[0])
    first = await mgr.on_confirmed("support", 3, "latency_ms", "latency drift")
    second = await mgr.on_confirmed("support", 3, "refusal", "refusal drift")
    assert (first.outcome, second.outcome) == ("started", "running")
    await wait_done(launcher, "support")
    third = await mgr.on_confirmed("support", 3, "refusal", "refusal drift")
    assert third.outcome == "cooldown"
    now[0] += 61
    fourth = await mgr.on_confirmed("support", 3, "refusal", "refusal drift")
    assert fourth.outcome == "started"
    await wait_done(launcher, "support")
    calls = [json.loads(line) for line in out.read_text().splitlines()]
    assert calls == [
        ["run", "--adapter", "support", "--reason", "latency drift"],
        ["run", "--adapter", "support", "--reason", "refusal drift"],
    ]
    recorded = [t["outcome"] for t in reversed(store.triggers("support"))]
    assert recorded == ["started", "running", "cooldown", "started"]
    assert all(t["reason"] for t in store.triggers("support"))
    value = metrics.registry.get_sample_value(
        "driftgate_retrain_triggers_total", {"adapter": "support", "reason": "refusal"}
    )
    assert value == 1.0
    assert list((tmp_path / "logs").glob("retrain-support-*.log"))


async def test_cooldown_survives_a_restart_through_the_store(
    store: DriftStore, tmp_path: Path
) -> None:
    store.record_trigger(
        adapter="support", version=1, reason="r", mode="subprocess", outcome="started", detail=""
    )
    launcher = SubprocessLauncher([sys.executable, "-c", "pass"], tmp_path)
    mgr = TriggerManager(launcher, store, DriftMetrics(), cooldown_s=3600)
    assert (await mgr.on_confirmed("support", 1, "x", "y")).outcome == "cooldown"
    assert (await mgr.on_confirmed("base", 0, "x", "y")).outcome == "base"


async def test_unstartable_command_is_recorded_as_failed(store: DriftStore, tmp_path: Path) -> None:
    launcher = SubprocessLauncher([str(tmp_path / "does-not-exist")], tmp_path)
    mgr = TriggerManager(launcher, store, DriftMetrics(), cooldown_s=0)
    decision = await mgr.on_confirmed("support", 1, "x", "why")
    assert decision.outcome == "failed" and "cannot start" in decision.detail
    assert store.triggers()[0]["outcome"] == "failed"


class FakeKubeApi:
    """Stand-in for the Kubernetes API server: jobs in one namespace."""

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []
        self.auth: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/apis/batch/v1/namespaces/{ns}/jobs", self.create)
        app.router.add_get("/apis/batch/v1/namespaces/{ns}/jobs", self.list)
        return app

    async def create(self, request: web.Request) -> web.Response:
        self.auth.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != "Bearer sa-token":
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        job = await request.json()
        job["status"] = {"active": 1}
        self.jobs.append(job)
        return web.json_response(job, status=201)

    async def list(self, request: web.Request) -> web.Response:
        key, _, value = request.query["labelSelector"].partition("=")
        items = [j for j in self.jobs if j["metadata"]["labels"].get(key) == value]
        return web.json_response({"items": items})


@pytest_asyncio.fixture(loop_scope="function")  # the server must live in the test's loop
async def kube() -> AsyncIterator[tuple[FakeKubeApi, str]]:
    api = FakeKubeApi()
    runner = web.AppRunner(api.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield api, f"http://127.0.0.1:{port}"
    await runner.cleanup()


TEMPLATE = """
apiVersion: batch/v1
kind: Job
metadata:
  name: placeholder
  labels: {app.kubernetes.io/name: driftgate-retrain}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: retrain
          image: driftgate:latest
          args: [python, -m, retrain, run, --adapter, $ADAPTER, --reason, $REASON]
"""


async def test_kubernetes_trigger_creates_one_job_from_the_template(
    kube: tuple[FakeKubeApi, str], store: DriftStore, tmp_path: Path
) -> None:
    api, url = kube
    (tmp_path / "job.yaml").write_text(TEMPLATE)
    (tmp_path / "token").write_text("sa-token\n")
    launcher = KubernetesLauncher(url, "ml", tmp_path / "job.yaml", tmp_path / "token", None)
    mgr = TriggerManager(launcher, store, DriftMetrics(), cooldown_s=0)
    try:
        first = await mgr.on_confirmed("support", 2, "refusal", "refusals: up")
        second = await mgr.on_confirmed("support", 2, "refusal", "refusals: up")
        api.jobs[0]["status"] = {"completionTime": "2026-01-01T00:00:00Z", "succeeded": 1}
        third = await mgr.on_confirmed("support", 2, "refusal", "again")
    finally:
        await mgr.close()
    assert (first.outcome, second.outcome, third.outcome) == ("started", "running", "started")
    job = api.jobs[0]
    assert job["metadata"]["name"].startswith("retrain-support-")
    assert job["metadata"]["labels"]["driftgate.io/adapter"] == "support"
    assert job["metadata"]["labels"]["app.kubernetes.io/name"] == "driftgate-retrain"
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-4:] == ["--adapter", "support", "--reason", "refusals: up"]
    assert "job ml/retrain-support-" in first.detail


async def test_kubernetes_errors_are_recorded_not_raised(
    kube: tuple[FakeKubeApi, str], store: DriftStore, tmp_path: Path
) -> None:
    api, url = kube
    (tmp_path / "job.yaml").write_text(TEMPLATE)
    (tmp_path / "token").write_text("wrong")
    launcher = KubernetesLauncher(url, "ml", tmp_path / "job.yaml", tmp_path / "token", None)
    mgr = TriggerManager(launcher, store, DriftMetrics(), cooldown_s=0)
    try:
        decision = await mgr.on_confirmed("support", 2, "x", "y")
    finally:
        await mgr.close()
    assert decision.outcome == "failed" and "HTTP 401" in decision.detail
    assert api.jobs == [] and api.auth == ["Bearer wrong"]


async def test_closing_stops_a_running_retrain_and_its_children(tmp_path: Path) -> None:
    """Stopping the embedded stack must stop the retrain job it started (a stand-in job
    that sleeps, with a child of its own), unless configured to let it finish."""
    sleeper = tmp_path / "job.py"
    sleeper.write_text(
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "time.sleep(120)\n"
    )
    launcher = SubprocessLauncher([sys.executable, str(sleeper)], tmp_path / "logs")
    await launcher.start("support", 1, "test")
    proc = launcher.processes()["support"]
    await asyncio.sleep(1.0)  # the child is started
    await launcher.close(grace_s=5.0)
    assert proc.returncode is not None
    for _ in range(50):  # the child gets the signal too; give it a moment to exit
        if not _live_in_group(proc.pid):
            break
        await asyncio.sleep(0.1)
    assert _live_in_group(proc.pid) == []


def _live_in_group(pgid: int) -> list[int]:
    """Pids of running (not zombie) processes in a process group, from /proc."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(int(stat.parent.name))
    return live


async def test_closing_can_leave_a_running_retrain_to_finish(tmp_path: Path) -> None:
    launcher = SubprocessLauncher(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        tmp_path / "logs",
        stop_on_close=False,
    )
    await launcher.start("support", 1, "test")
    proc = launcher.processes()["support"]
    await launcher.close()
    assert proc.returncode is None
    proc.kill()
    await proc.wait()
