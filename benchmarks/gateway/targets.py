"""The servers the gateway benchmark compares, started pinned and made ready.

- the trivial upstream plus event sink (``upstream.py``): the "direct" target;
- the gateway, every feature on (auth + rate limit, a routed logical adapter, metrics,
  request events to the sink);
- a minimal FastAPI + aiohttp pass-through (``passthrough.py``): the stack's floor;
- the LiteLLM proxy, one worker, master key, no database, routing the same model name
  to the same upstream (its own venv: ``setup_litellm.sh``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.gateway.procs import free_port, log, pinned, process, wait_http
from driftgate.core.state import migrate
from driftgate.core.state.engine import make_engine

HERE = Path(__file__).resolve().parent
BASE_MODEL = "SmolLM2-135M-Instruct"
ADMIN_KEY = "bench-admin-key"
ADAPTER = "bench"
SERVED = f"{ADAPTER}--v1"
LITELLM_KEY = "sk-bench-master-key"
LITELLM_VENV = Path(os.environ.get("LITELLM_VENV", HERE / ".venv-litellm"))
CHAT = "/v1/chat/completions"


@dataclass
class Target:
    name: str
    url: str  # the chat completions URL
    model: str  # the ``model`` field this target expects
    pid: int | None  # the server process (None: not on the measured core)
    key: str | None = None  # None: the tenant key


def start_upstream(stack: ExitStack, tmp: Path, core: int) -> tuple[str, str]:
    """The trivial upstream and the event sink: their base URLs."""
    port, sink_port = free_port(), free_port()
    argv = [sys.executable, str(HERE / "upstream.py"), "--port", str(port)]
    argv += ["--sink-port", str(sink_port), "--base-model", BASE_MODEL]
    up = stack.enter_context(process("upstream + sink", pinned(core, argv), tmp / "up.log"))
    upstream, sink = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sink_port}"
    wait_http(upstream + "/health", up, tmp / "up.log", 30)
    wait_http(sink + "/healthz", up, tmp / "up.log", 30)
    return upstream, sink


def start_gateway(
    stack: ExitStack, tmp: Path, core: int, upstream: str, sink: str
) -> tuple[Target, str]:
    """The gateway with every feature on: the target and the tenant's API key.

    The state database is migrated first, as a deployment's gateway replicas find it
    (the drift service, or the first replica, did it): a replica that ran the migration
    itself carries Alembic's import, about 11 MiB more.
    """
    port = free_port()
    state_url = f"sqlite:///{tmp / 'state.db'}"
    migrate.upgrade(make_engine(state_url))
    env = {
        **os.environ,
        "DRIFTGATE_GATEWAY_UPSTREAMS": json.dumps([upstream]),
        "DRIFTGATE_GATEWAY_BASE_MODEL": BASE_MODEL,
        "DRIFTGATE_ADMIN_KEY": ADMIN_KEY,
        "DRIFTGATE_STATE_URL": state_url,
        "DRIFTGATE_DRIFT_URL": sink,
        # _setup_gateway registers an adapter directory under tmp.
        "DRIFTGATE_ADAPTER_ROOTS": json.dumps([str(tmp)]),
    }
    argv = [sys.executable, "-m", "uvicorn", "--factory", "driftgate.deployables.gateway:app"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    argv += ["--no-access-log", "--loop", "uvloop", "--http", "httptools"]
    gw = stack.enter_context(process("gateway", pinned(core, argv), tmp / "gw.log", env))
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/readyz", gw, tmp / "gw.log", 60)
    key = _setup_gateway(url, tmp)
    log("tenant created, adapter 'bench' routed to version 1, events on")
    return Target("driftgate", url + CHAT, ADAPTER, gw.pid), key


def _setup_gateway(url: str, tmp: Path) -> str:
    """A tenant, and the logical adapter ``bench`` routed to its version 1: the API key."""
    peft = tmp / "adapter"
    peft.mkdir()
    config = {
        "peft_type": "LORA",
        "r": 8,
        "lora_alpha": 16,
        "target_modules": ["q_proj", "v_proj"],
        "base_model_name_or_path": f"/models/{BASE_MODEL}",
    }
    (peft / "adapter_config.json").write_text(json.dumps(config))
    (peft / "adapter_model.safetensors").write_bytes(b"\0" * 16)  # the upstream never reads it
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
        tenant = {
            "name": "bench",
            "adapters": ["*"],
            "max_tokens": 64,
            # on, but never binding: every request still goes through the token bucket
            "rate_limit_rps": 1_000_000,
            "burst": 1_000_000,
        }
        r = c.post("/admin/tenants", json=tenant)
        r.raise_for_status()
        key = str(r.json()["api_key"])
        r = c.post(f"/admin/adapters/{ADAPTER}/versions", json={"path": str(peft)}, timeout=30)
        r.raise_for_status()
        version = int(r.json()["version"])
        c.put(f"/admin/routes/{ADAPTER}", json={"weights": {str(version): 1.0}}).raise_for_status()
        r = c.post(
            CHAT,
            json={"model": ADAPTER, "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {key}"},
        )
        r.raise_for_status()
        if r.json()["model"] != f"{ADAPTER}@{version}":
            raise RuntimeError(f"not routed to {ADAPTER}@{version}: {r.text}")
    return key


def start_passthrough(stack: ExitStack, tmp: Path, core: int, upstream: str) -> Target:
    port = free_port()
    argv = [sys.executable, str(HERE / "passthrough.py"), "--port", str(port)]
    argv += ["--upstream", upstream]
    pt = stack.enter_context(process("pass-through", pinned(core, argv), tmp / "pt.log"))
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/docs", pt, tmp / "pt.log", 60)
    return Target("passthrough", url + CHAT, SERVED, pt.pid)


def litellm_installed() -> bool:
    return (LITELLM_VENV / "bin" / "litellm").exists()


def install_litellm() -> None:
    subprocess.run([str(HERE / "setup_litellm.sh")], check=True)


def start_litellm(stack: ExitStack, tmp: Path, core: int, upstream: str) -> Callable[[], Target]:
    """LiteLLM's proxy, one worker, routing model ``bench`` to the upstream's ``bench--v1``.

    Returns a function that waits until it is ready: its start takes many seconds, which
    the caller overlaps with starting the others.
    """
    port = free_port()
    config = tmp / "litellm.yaml"
    # JSON is YAML: no YAML writer needed here
    cfg = {
        "model_list": [
            {
                "model_name": ADAPTER,
                "litellm_params": {
                    "model": f"openai/{SERVED}",
                    "api_base": upstream + "/v1",
                    "api_key": "none",
                },
            }
        ],
        "general_settings": {"master_key": LITELLM_KEY},
        "litellm_settings": {"telemetry": False},
    }
    config.write_text(json.dumps(cfg))
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network fetch at start
        "LITELLM_LOG": "ERROR",
        "DISABLE_SCHEMA_UPDATE": "True",
    }
    env.pop("DATABASE_URL", None)
    argv = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    proc = stack.enter_context(process("litellm", pinned(core, argv), tmp / "litellm.log", env))
    url = f"http://127.0.0.1:{port}"

    def ready() -> Target:
        wait_http(url + "/health/liveliness", proc, tmp / "litellm.log", 180)
        r = httpx.post(
            url + CHAT,
            json={"model": ADAPTER, "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {LITELLM_KEY}"},
            timeout=30,
        )
        if r.status_code != 200:
            raise RuntimeError(f"litellm: HTTP {r.status_code}: {r.text}")
        return Target("litellm", url + CHAT, ADAPTER, proc.pid, key=LITELLM_KEY)

    return ready
