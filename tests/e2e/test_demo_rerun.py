"""``driftgate demo`` as a user runs it: again on the same home, piped and interrupted.

Both tests use the session's shared vLLM and start their own gateway and drift service
(real processes, free ports), so they cost no second engine start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from driftgate.core import paths
from driftgate.demo.runner import set_up_v1
from driftgate.demo.settings import DemoSettings
from driftgate.demo.timeline import Timeline
from driftgate.engine import EngineProcess
from tests.live import free_port, start_services

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def _route(gateway_url: str, admin_key: str, adapter: str) -> dict[str, float]:
    r = httpx.get(
        f"{gateway_url}/admin/routes", headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
    )
    r.raise_for_status()
    return dict(r.json()["routes"][adapter])


def test_demo_set_up_runs_twice_on_one_state_store(engine: EngineProcess, tmp_path: Path) -> None:
    """A second run's set-up (tenant, v1, route) against the state store of a first one
    succeeds, and both runs' keys serve v1."""
    stack, config = start_services([engine.base_url], tmp_path / "home")
    try:
        settings = DemoSettings(adapter="rerun")
        gw = config.urls.gateway
        keys = [
            set_up_v1(settings, gw, config.admin_key, tmp_path / "home", Timeline())
            for _ in range(2)
        ]
        assert keys[0] != keys[1]
        assert _route(gw, config.admin_key, "rerun") == {"1": 1.0}
        for key in keys:
            api = OpenAI(base_url=f"{gw}/v1", api_key=key, max_retries=0, timeout=120)
            raw = api.chat.completions.with_raw_response.create(
                model="rerun", max_tokens=4, temperature=0,
                messages=[{"role": "user", "content": "Where is my parcel?"}],
            )  # fmt: skip
            assert raw.headers["x-driftgate-version"] == "rerun@1"
    finally:
        stack.stop()


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        children = {p for p, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _requests_answered(gateway_url: str) -> float:
    try:
        text = httpx.get(f"{gateway_url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("driftgate_gateway_requests_total")
    )


def test_demo_with_closed_stdout_then_ctrl_c_stops_every_process(
    engine: EngineProcess, tmp_path: Path
) -> None:
    """``driftgate demo | tee log`` and Ctrl-C: the reader goes first, the demo writes into
    the closed pipe, then SIGINT reaches its process group as a terminal sends it. Every
    process the demo started is gone afterwards (by pid), the exit status is 130, there is
    no traceback, and the report was still written."""
    home = tmp_path / "home"
    home.mkdir()
    # The prepared model and the cached v1 of this machine; everything else is new.
    (home / "models").symlink_to(paths.models_dir())
    (home / "demo-cache").symlink_to(paths.home() / "demo-cache")
    gateway_port = free_port()
    env = {
        **os.environ,
        "DRIFTGATE_HOME": str(home),
        "DRIFTGATE_STACK_START_ENGINE": "false",
        "DRIFTGATE_STACK_UPSTREAMS": json.dumps([engine.base_url]),
        "DRIFTGATE_DEMO_ADAPTER": "piped",
        "DRIFTGATE_DEMO_GATEWAY_PORT": str(gateway_port),
        "DRIFTGATE_DEMO_DRIFT_PORT": str(free_port()),
        "DRIFTGATE_DEMO_RESULTS_DIR": str(tmp_path / "results"),
        "DRIFTGATE_DEMO_EVAL_TICKETS": "4",
        "DRIFTGATE_DEMO_STABLE_SET_TICKETS": "4",
    }
    demo = subprocess.Popen(
        [sys.executable, "-m", "driftgate", "demo"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert demo.stdout is not None and demo.stderr is not None
    stderr_lines: list[str] = []
    drain = threading.Thread(target=lambda: stderr_lines.extend(demo.stderr), daemon=True)
    drain.start()
    children: set[int] = set()
    try:
        seen: list[str] = []
        for line in demo.stdout:
            seen.append(line)
            if "v1 serving" in line:
                break
        assert any("v1 serving" in line for line in seen), (seen, stderr_lines)
        children = _descendants(demo.pid)
        assert len(children) >= 2, children  # at least the drift service and the gateway
        demo.stdout.close()  # the reader is gone: the demo's next print meets a closed pipe
        # The base model's and v1's baseline (8 requests) ends with a printed milestone;
        # stable traffic only starts after it, so its requests prove the print happened.
        deadline = time.monotonic() + 300
        while _requests_answered(f"http://127.0.0.1:{gateway_port}") < 12:
            assert demo.poll() is None, stderr_lines
            assert time.monotonic() < deadline, "stable traffic never started"
            time.sleep(0.5)
        children |= _descendants(demo.pid)
        os.killpg(demo.pid, signal.SIGINT)
        code = demo.wait(timeout=120)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        drain.join(timeout=10)
    left = sorted(p for p in children if _alive(p))
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    stderr = "".join(stderr_lines)
    assert left == [], (left, stderr)
    assert code == 130, stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert list((tmp_path / "results").glob("demo-*/report.md")), stderr
