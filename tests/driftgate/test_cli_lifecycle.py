"""``driftgate engine`` and ``driftgate up`` run in the foreground and stop everything on
SIGINT/SIGTERM, and notice a crashed child.

The services are a stand-in: a fake ``python`` executable (set through
``DRIFTGATE_ENGINE_PYTHON`` / ``DRIFTGATE_STACK_PYTHON``) that answers vLLM's
``/health`` and ``/v1/models``, the services' ``/readyz`` and the gateway's
``POST /admin/tenants``, and records its pid. The real services run in the e2e tests
and were checked by hand with ``driftgate up`` (see the engine report).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

_FAKE_PYTHON = """#!{python}
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
argv = sys.argv[1:]
port = int(argv[argv.index("--port") + 1])
vllm = "vllm.entrypoints.openai.api_server" in argv
kind = "engine" if vllm else argv[argv.index("--factory") + 1]
name = argv[argv.index("--served-model-name") + 1] if kind == "engine" else ""
with open(os.path.join({piddir!r}, str(os.getpid())), "w") as f:
    f.write(kind)
class H(BaseHTTPRequestHandler):
    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        if self.path == "/v1/models":
            self._send(200, {{"data": [{{"id": name}}]}})
        elif self.path in ("/health", "/readyz"):
            self._send(200, {{}})
        else:
            self._send(404, {{}})
    def do_POST(self):
        n = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(n) or b"{{}}")
        if self.path == "/admin/tenants" and self.headers.get("authorization") == "Bearer adm":
            self._send(201, {{"tenant": body["name"], "api_key": "k-" + body["name"]}})
        else:
            self._send(401, {{}})
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    piddir = tmp_path / "pids"
    piddir.mkdir()
    fake = tmp_path / "fakepython"
    fake.write_text(_FAKE_PYTHON.format(python=sys.executable, piddir=str(piddir)))
    fake.chmod(0o755)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"x")
    (model / "tokenizer.json").write_text("{}")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DRIFTGATE_HOME": str(tmp_path / "home"),
        "DRIFTGATE_ENGINE_PYTHON": str(fake),
        "DRIFTGATE_STACK_PYTHON": str(fake),
        "DRIFTGATE_ENGINE_MODEL_DIR": str(model),
        "DRIFTGATE_ENGINE_STOP_GRACE_S": "5",
        "DRIFTGATE_ADMIN_KEY": "adm",
    }


def _pids(tmp_path: Path) -> dict[int, str]:
    return {int(p.name): p.read_text() for p in (tmp_path / "pids").iterdir()}


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "driftgate", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _read_until(proc: subprocess.Popen[str], marker: str) -> str:
    assert proc.stdout is not None
    out = ""
    for line in proc.stdout:
        out += line
        if marker in line:
            return out
    raise AssertionError(f"exited ({proc.wait()}) before {marker!r}: {out}")


def _finish(proc: subprocess.Popen[str], sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.stderr is not None
    return code, proc.stderr.read()


def _all_dead(pids: list[int], timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(_alive(p) for p in pids)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_engine_foreground_until_signal(tmp_path, env, sig, code):
    port = _free_port()
    proc = _start(["engine", "--port", str(port)], env)
    out = _read_until(proc, "Ctrl-C to stop")
    assert f"engine ready at http://127.0.0.1:{port}/v1 serving SmolLM2-135M-Instruct" in out
    pids = list(_pids(tmp_path))
    assert len(pids) == 1 and _alive(pids[0])
    rc, err = _finish(proc, sig)
    assert rc == code, err
    assert "Traceback" not in err
    assert _all_dead(pids)
    assert (tmp_path / "home" / "logs" / "engine.log").exists()


def test_up_prints_endpoints_and_stops_everything(tmp_path, env):
    ports = {k: _free_port() for k in ("engine", "gateway", "drift")}
    proc = _start(
        ["up", "--engine-port", str(ports["engine"]), "--gateway-port", str(ports["gateway"]),
         "--drift-port", str(ports["drift"]), "--tenant", "acme"],
        env,
    )  # fmt: skip
    out = _read_until(proc, "Ctrl-C to stop.")
    assert f"OpenAI API (gateway): http://127.0.0.1:{ports['gateway']}/v1" in out
    assert f"drift service:        http://127.0.0.1:{ports['drift']}" in out
    assert "admin key:            adm" in out
    assert "tenant 'acme' API key: k-acme" in out
    kinds = _pids(tmp_path)
    assert sorted(kinds.values()) == sorted(
        ["engine", "driftgate.deployables.drift_service:app", "driftgate.deployables.gateway:app"]
    )
    rc, err = _finish(proc, signal.SIGTERM)
    assert rc == 143, err
    assert [ln for ln in err.splitlines() if ln.startswith("stopping")] == [
        "stopping gateway", "stopping drift", "stopping engine",
    ]  # fmt: skip
    assert _all_dead(list(kinds))


def test_up_notices_a_crashed_child(tmp_path, env):
    proc = _start(
        ["up", "--engine-port", str(_free_port()), "--gateway-port", str(_free_port()),
         "--drift-port", str(_free_port())],
        env,
    )  # fmt: skip
    _read_until(proc, "Ctrl-C to stop.")
    kinds = _pids(tmp_path)
    drift = next(p for p, k in kinds.items() if k == "driftgate.deployables.drift_service:app")
    os.kill(drift, signal.SIGKILL)
    rc = proc.wait(timeout=30)
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert rc == 1
    assert "driftgate: error: drift exited unexpectedly; see " in err
    assert _all_dead(list(kinds))


def test_up_with_external_upstreams_starts_no_engine(tmp_path, env):
    eng = _free_port()
    proc = _start(
        ["up", "--upstream", f"http://127.0.0.1:{eng}", "--gateway-port", str(_free_port()),
         "--drift-port", str(_free_port())],
        {**env, "DRIFTGATE_ENGINE_MODEL_DIR": str(tmp_path / "no-model-needed")},
    )  # fmt: skip
    out = _read_until(proc, "Ctrl-C to stop.")
    assert f"vLLM engine(s):       http://127.0.0.1:{eng}" in out
    kinds = _pids(tmp_path)
    assert sorted(kinds.values()) == [
        "driftgate.deployables.drift_service:app", "driftgate.deployables.gateway:app",
    ]  # fmt: skip
    rc, _ = _finish(proc, signal.SIGINT)
    assert rc == 130
    assert _all_dead(list(kinds))
