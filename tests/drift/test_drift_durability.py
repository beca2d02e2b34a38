"""``kill -9`` of the real service (uvicorn subprocess) loses no acknowledged feedback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from drift.store import DriftStore
from driftgate.core.events import EventBatch, RequestEvent
from tests.drift.conftest import AUTH, DRIFT_KEY

ROOT = Path(__file__).resolve().parents[2]


def start_service(state_url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = dict(
        os.environ,
        DRIFTGATE_STATE_URL=state_url,
        DRIFTGATE_DRIFT_TRIGGER_MODE="off",
        DRIFTGATE_INGEST_KEY=DRIFT_KEY,
        DRIFTGATE_ADMIN_KEY=DRIFT_KEY,
        PYTHONPATH=str(ROOT),
    )
    out = log.open("wb")
    proc = subprocess.Popen(
        [
            *(
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "driftgate.deployables.drift_service:app",
            ),
            *("--host", "127.0.0.1", "--port", "0", "--log-level", "info"),
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        m = re.search(rb"Uvicorn running on http://127\.0\.0\.1:(\d+)", log.read_bytes())
        if m:
            return proc, f"http://127.0.0.1:{int(m[1])}"
        if proc.poll() is not None:
            raise AssertionError(f"service exited: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("service did not start")


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def test_acknowledged_feedback_survives_kill_9(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    proc, base = start_service(url, tmp_path / "first.log")
    procs.append(proc)
    requests = [
        RequestEvent(request_id=f"req-{i}", tenant="acme", adapter="support", version=1)
        for i in range(40)
    ]
    acked: list[str] = []
    with httpx.Client(base_url=base, timeout=10, trust_env=False, headers=AUTH) as client:
        r = client.post(
            "/v1/events",
            content=EventBatch(events=requests[:20]).model_dump_json(),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 202
        for i in range(40):  # half of them before their request event arrives
            r = client.post(
                "/v1/feedback",
                json={"request_id": f"req-{i}", "tenant": "acme", "score": (i % 2) * 1.0},
            )
            assert r.status_code == 202
            acked.append(r.json()["feedback_id"])
    os.kill(proc.pid, signal.SIGKILL)  # right after the last acknowledgement
    proc.wait(10)
    store = DriftStore.from_url(url)
    try:
        assert store.counts()["drift_feedback"] == 40
    finally:
        store.close()
    # restarted, the service serves the same data and joins the late requests
    proc, base = start_service(url, tmp_path / "second.log")
    procs.append(proc)
    with httpx.Client(base_url=base, timeout=10, trust_env=False, headers=AUTH) as client:
        r = client.post(
            "/v1/events",
            content=EventBatch(events=requests[20:]).model_dump_json(),
            headers={"content-type": "application/json"},
        )
        assert r.json() == {"accepted": 20, "duplicates": 0}
        status = client.get("/v1/drift/status").json()
        # the deployed entry point also serves the retrain package's rollout API
        assert client.get("/v1/rollouts").status_code == 200
    version = status["versions"][0]
    assert version["feedback_count"] == 40 and version["negative_feedback_ratio"] == 0.5
    proc.terminate()
    proc.wait(20)
    store = DriftStore.from_url(url)
    try:
        joined = store.requests_with_feedback("support")
    finally:
        store.close()
    assert len(joined) == 40 and {x.request_id for x in joined} == {f"req-{i}" for i in range(40)}
