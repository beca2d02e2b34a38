"""The embedded-stack supervisor: its derived configuration, and the process lifecycle.

Lifecycle tests run stand-in services (``python -m http.server``), not the
engine, drift service and gateway: they only need something that listens,
answers a probe and can be killed. The real stack runs in the e2e tests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from driftgate.process import ProcessStartError, http_probe
from driftgate.settings import EngineSettings, StackSettings
from driftgate.stack import (
    ServiceSpec,
    Stack,
    StackError,
    StackKeys,
    create_tenant,
    service_env,
    stack_services,
    stack_urls,
)


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


def _wait_dead(pids: list[int], timeout_s: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _standin(name: str, tmp_path: Path, port: int | None = None) -> ServiceSpec:
    """A stand-in service: ``python -m http.server`` on a free port."""
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
            "--directory", str(tmp_path), str(port)]  # fmt: skip
    return ServiceSpec(name=name, argv=argv, url=url, probe=http_probe(url + "/"),
                       ready_timeout_s=20, stop_grace_s=5)  # fmt: skip


# --- configuration (pure) ------------------------------------------------------------------


def _settings(tmp_path: Path, **kw: object) -> StackSettings:
    return StackSettings(home=tmp_path, engine_port=18000, drift_port=18090,
                         gateway_port=18080, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_services_in_start_order_with_their_commands(tmp_path):
    config = stack_services(_settings(tmp_path), EngineSettings(python="/py"), base_env={})
    assert [s.name for s in config.services] == ["engine", "drift", "gateway"]
    engine, drift, gateway = config.services
    assert engine.argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert engine.argv[engine.argv.index("--port") + 1] == "18000"
    assert engine.url == "http://127.0.0.1:18000"
    assert engine.env is not None and engine.env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert "driftgate.deployables.drift_service:app" in drift.argv and "--factory" in drift.argv
    assert drift.argv[drift.argv.index("--port") + 1] == "18090"
    assert "driftgate.deployables.gateway:app" in gateway.argv
    assert gateway.argv[gateway.argv.index("--port") + 1] == "18080"
    assert (config.urls.gateway, config.urls.drift) == (gateway.url, drift.url)
    assert config.log_dir == tmp_path / "logs"


def test_env_mapping_wires_gateway_to_engine_and_drift(tmp_path):
    config = stack_services(_settings(tmp_path, admin_key="k3y"), EngineSettings(),
                            base_env={"PATH": "/bin"})  # fmt: skip
    gw = {s.name: s for s in config.services}["gateway"].env
    drift = {s.name: s for s in config.services}["drift"].env
    assert gw is not None and drift is not None
    assert json.loads(gw["DRIFTGATE_GATEWAY_UPSTREAMS"]) == ["http://127.0.0.1:18000"]
    assert gw["DRIFTGATE_DRIFT_URL"] == "http://127.0.0.1:18090"
    assert gw["DRIFTGATE_ADMIN_KEY"] == "k3y" == config.admin_key
    assert gw["DRIFTGATE_GATEWAY_BASE_MODEL"] == "SmolLM2-135M-Instruct"
    state = f"sqlite:///{tmp_path / 'state.db'}"
    assert gw["DRIFTGATE_STATE_URL"] == drift["DRIFTGATE_STATE_URL"] == state
    assert drift["DRIFTGATE_STATE_URL"] == state == config.state_url
    assert gw["DRIFTGATE_HOME"] == drift["DRIFTGATE_HOME"] == str(tmp_path)
    assert gw["PATH"] == "/bin"  # the inherited environment is kept


def test_env_mapping_is_the_one_place(tmp_path):
    urls = stack_urls(_settings(tmp_path), EngineSettings())
    envs = service_env(_settings(tmp_path), EngineSettings(), urls, StackKeys("a", "i", "e"))
    assert set(envs) == {"drift", "gateway"}
    assert all(k.startswith(("DRIFTGATE_", "PYTHON")) for e in envs.values() for k in e)


def test_admin_key_generated_when_not_given(tmp_path):
    a = stack_services(_settings(tmp_path), EngineSettings(), base_env={}).admin_key
    b = stack_services(_settings(tmp_path), EngineSettings(), base_env={}).admin_key
    assert len(a) >= 32 and a != b


def test_every_service_credential_reaches_its_peers_by_environment_only(tmp_path):
    """The stack generates the ingest and engine keys; vLLM gets its key as VLLM_API_KEY,
    the gateway both keys, the drift service (and the retrain job it starts) both; no key
    is ever on a command line, where ``ps`` shows it to every local user."""
    settings = _settings(tmp_path, ingest_key="", engine_api_key="")
    config = stack_services(settings, EngineSettings(), base_env={"VLLM_API_KEY": "stale"})
    keys = config.keys
    assert len(keys.ingest) >= 32 and len(keys.engine) >= 32
    assert len({keys.admin, keys.ingest, keys.engine, keys.request_id}) == 4
    env = {s.name: s.env or {} for s in config.services}
    assert env["engine"]["VLLM_API_KEY"] == keys.engine  # not the inherited one
    assert len(keys.request_id) >= 32
    assert env["gateway"]["DRIFTGATE_GATEWAY_REQUEST_ID_SECRET"] == keys.request_id
    for name in ("gateway", "drift"):
        assert env[name]["DRIFTGATE_INGEST_KEY"] == keys.ingest
        assert env[name]["DRIFTGATE_ENGINE_API_KEY"] == keys.engine
    for spec in config.services:
        secret = {keys.admin, keys.ingest, keys.engine, keys.request_id}
        assert not secret & set(" ".join(spec.argv).split())
    external = _settings(tmp_path, start_engine=False, upstreams=["http://a:1"],
                         engine_api_key="")  # fmt: skip
    # engines the stack did not start keep the key they were given: none here
    assert stack_services(external, EngineSettings(), base_env={}).keys.engine == ""


def test_external_upstreams_instead_of_an_engine(tmp_path):
    s = _settings(tmp_path, start_engine=False, upstreams=["http://a:1/", "http://b:2"])
    config = stack_services(s, EngineSettings(), base_env={})
    assert [x.name for x in config.services] == ["drift", "gateway"]
    gw = config.services[1].env or {}
    assert json.loads(gw["DRIFTGATE_GATEWAY_UPSTREAMS"]) == ["http://a:1", "http://b:2"]
    with pytest.raises(StackError, match="no upstreams"):
        stack_services(_settings(tmp_path, start_engine=False), EngineSettings(), base_env={})


def test_stack_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DRIFTGATE_STACK_GATEWAY_PORT", "9999")
    monkeypatch.setenv("DRIFTGATE_STACK_UPSTREAMS", '["http://x:1"]')
    monkeypatch.setenv("DRIFTGATE_HOME", str(tmp_path))
    s = StackSettings()
    assert (s.gateway_port, s.upstreams, s.home) == (9999, ["http://x:1"], tmp_path)
    monkeypatch.setenv("DRIFTGATE_STACK_DRIFT_PORT", "-1")
    with pytest.raises(ValueError, match="drift_port"):
        StackSettings()


# --- lifecycle (stand-in services) ---------------------------------------------------------


def test_starts_in_order_and_stops_everything(tmp_path):
    specs = [_standin(n, tmp_path) for n in ("a", "b", "c")]
    with Stack(specs, log_dir=tmp_path / "logs") as stack:
        assert list(stack.processes) == ["a", "b", "c"]
        pids = [p.pid for p in stack.processes.values()]
        assert all(p is not None and _alive(p) for p in pids)
        assert stack.first_exited() is None
    assert stack.processes == {}
    assert _wait_dead([p for p in pids if p is not None]) == []
    assert {p.name for p in (tmp_path / "logs").iterdir()} == {"a.log", "b.log", "c.log"}


def test_a_signal_while_stopping_still_stops_everything(tmp_path, monkeypatch):
    """Ctrl-C that lands while the stack is stopping (the first one, turned into
    KeyboardInterrupt) is raised only after every process was stopped."""
    from driftgate.process import ManagedProcess

    original = ManagedProcess.stop
    interrupted: list[str] = []

    def stop_interrupted_once(self: ManagedProcess) -> int | None:
        if not interrupted:
            interrupted.append(self.name)
            raise KeyboardInterrupt  # as if SIGINT arrived while waiting for the process
        return original(self)

    specs = [_standin(n, tmp_path) for n in ("a", "b", "c")]
    stack = Stack(specs, log_dir=tmp_path / "logs")
    stack.start()
    pids = [p.pid for p in stack.processes.values() if p.pid is not None]
    monkeypatch.setattr(ManagedProcess, "stop", stop_interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        stack.stop()
    assert interrupted == ["c"]
    assert stack.processes == {}
    assert _wait_dead(pids) == []


def test_failed_service_stops_those_already_started(tmp_path):
    good = _standin("good", tmp_path)
    bad = ServiceSpec(name="bad", url="http://127.0.0.1:1",
                      argv=[sys.executable, "-c", "print('cannot bind'); raise SystemExit(2)"],
                      probe=lambda: False)  # fmt: skip
    after = _standin("after", tmp_path)
    stack = Stack([good, bad, after], log_dir=tmp_path)
    with pytest.raises(ProcessStartError, match="bad exited with code 2") as info:
        stack.start()
    assert "cannot bind" in str(info.value)
    assert stack.processes == {}
    # "good" was started and must be gone; "after" was never started.
    assert "--- driftgate: starting good" in (tmp_path / "good.log").read_text()
    assert not good.probe()
    assert not (tmp_path / "after.log").exists()


def test_wait_reports_a_crashed_service(tmp_path):
    with Stack([_standin("x", tmp_path), _standin("y", tmp_path)], log_dir=tmp_path) as stack:
        pid = stack.processes["y"].pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert stack.wait(poll_s=0.05) == "y"


def test_duplicate_names_rejected(tmp_path):
    with pytest.raises(StackError, match="unique"):
        Stack([_standin("x", tmp_path), _standin("x", tmp_path)], log_dir=tmp_path)


_SUPERVISOR = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from driftgate.process import http_probe
    from driftgate.stack import ServiceSpec, Stack, exit_on_signals

    ports, root = json.loads(sys.argv[1]), Path(sys.argv[2])
    specs = [
        ServiceSpec(name=f"s{p}", url=f"http://127.0.0.1:{p}",
                    argv=[sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                          "--directory", str(root), str(p)],
                    probe=http_probe(f"http://127.0.0.1:{p}/"))
        for p in ports
    ]
    try:
        with exit_on_signals(), Stack(specs, log_dir=root / "logs") as stack:
            print(json.dumps([p.pid for p in stack.processes.values()]), flush=True)
            stack.wait(poll_s=0.1)
    except KeyboardInterrupt:
        raise SystemExit(130)
    """
)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_supervisor_signal_stops_every_child(tmp_path, sig, code):
    ports = [_free_port(), _free_port()]
    sup = subprocess.Popen(
        [sys.executable, "-c", _SUPERVISOR, json.dumps(ports), str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert sup.stdout is not None
        pids = json.loads(sup.stdout.readline())
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        sup.send_signal(sig)
        assert sup.wait(timeout=30) == code
        assert _wait_dead(pids) == []
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()


def test_create_tenant_error_is_clear():
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(StackError, match="creating tenant 'demo' failed"):
        create_tenant(url, "key", "demo")
