"""Hot swap under load on the real stack: real vLLM, real gateway (with heartbeats), real
drift service running the rollout controller.

8 concurrent clients (streaming and not) call the logical adapter ``swap`` while
version 2 is loaded, canaried, promoted and version 1 drained and unloaded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from benchmarks.swap.load import run_swap
from driftgate.engine import EngineProcess
from driftgate.settings import EngineSettings, StackSettings
from driftgate.stack import Stack, create_tenant, stack_services
from tests.live import FixtureAdapter, free_port

pytestmark = pytest.mark.e2e


@dataclasses.dataclass
class SwapStack:
    gateway_url: str
    drift_url: str
    engine_url: str
    admin_key: str
    key: str


def swap_services(engine_url: str, home: Path) -> tuple[Stack, SwapStack]:
    """Drift (with the rollout controller) and gateway (with heartbeats) on free ports."""
    settings = StackSettings(
        home=home,
        start_engine=False,
        upstreams=[engine_url],
        drift_port=free_port(),
        gateway_port=free_port(),
    )
    env = {**os.environ, "DRIFTGATE_DRIFT_TRIGGER_MODE": "off"}
    config = stack_services(settings, EngineSettings(), base_env=env)
    specs = []
    for spec in config.services:
        extra = {}
        if spec.name == "drift":
            extra = {
                "DRIFTGATE_DRIFT_GATEWAY_URL": config.urls.gateway,
                "DRIFTGATE_DRIFT_ADMIN_KEY": config.admin_key,
                "DRIFTGATE_DRIFT_ROLLOUT_INTERVAL_S": "0.25",
                "DRIFTGATE_DRIFT_ROLLOUT_MAX_LOADED": "8",
            }
        specs.append(
            dataclasses.replace(
                spec,
                env={**(spec.env or {}), **extra},
            )
        )
    stack = Stack(specs, log_dir=config.log_dir)
    stack.start()
    try:
        _, key = create_tenant(config.urls.gateway, config.admin_key, "swapper", ["swap"])
    except BaseException:
        stack.stop()
        raise
    urls = config.urls
    return stack, SwapStack(urls.gateway, urls.drift, engine_url, config.admin_key, key)


@pytest.fixture
def swap_stack(engine: EngineProcess, tmp_path: Path) -> Iterator[SwapStack]:
    stack, live = swap_services(engine.base_url, tmp_path / "home")
    try:
        yield live
    finally:
        stack.stop()


def test_swap_under_load_drops_nothing_and_routes_exactly(
    swap_stack: SwapStack, fixture_adapters: dict[str, FixtureAdapter], tmp_path: Path
) -> None:
    s = swap_stack
    admin = httpx.Client(
        base_url=s.gateway_url, headers={"Authorization": f"Bearer {s.admin_key}"}, timeout=60
    )
    with admin:
        r = admin.post(
            "/admin/adapters/swap/versions",
            json={"path": str(fixture_adapters["support"].path), "version": 1},
        )
        assert r.status_code == 201, r.text
        assert admin.put("/admin/routes/swap", json={"weights": {"1": 1.0}}).status_code == 200
    report = asyncio.run(
        run_swap(
            gateway_url=s.gateway_url,
            drift_url=s.drift_url,
            admin_key=s.admin_key,
            tenant_key=s.key,
            adapter="swap",
            candidate_path=str(fixture_adapters["greeter"].path),
            clients=8,
        )
    )
    print(json.dumps({k: v for k, v in report.items() if k != "transitions"}, indent=2))
    if out := os.environ.get("DRIFTGATE_SWAP_REPORT"):  # keep the numbers of this run
        Path(out).write_text(json.dumps(report, indent=2) + "\n")
    assert report["failed"] == 0, report["failures"]
    assert report["ambiguous"] == 0
    assert report["misrouted"] == 0
    assert report["outcome"] == "promoted"
    assert report["canary_on_candidate"] > 0, "the canary got no traffic"
    assert report["by_version"].get("swap@1", 0) > 0 and report["by_version"].get("swap@2", 0) > 0
    assert report["promote_to_route_s"] <= 5.0
    models = httpx.get(f"{s.engine_url}/v1/models", timeout=10).json()["data"]
    loaded = {m["id"] for m in models}
    assert "swap--v2" in loaded and "swap--v1" not in loaded
    # A corrupt adapter (valid config, garbage weights) is refused by the real engine at
    # loading: the rollout fails with the engine's reason and serving is untouched.
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    shutil.copy(fixture_adapters["greeter"].path / "adapter_config.json", corrupt)
    (corrupt / "adapter_model.safetensors").write_bytes(b"this is not a safetensors file" * 64)
    with httpx.Client(timeout=60) as http:
        r = http.post(
            f"{s.drift_url}/v1/rollouts",
            json={"adapter": "swap", "path": str(corrupt)},
            headers={"Authorization": f"Bearer {s.admin_key}"},
        )
        assert r.status_code == 201, r.text
    reason = _wait_failed(s, int(r.json()["id"]))
    assert "refused" in reason, reason
    models = httpx.get(f"{s.engine_url}/v1/models", timeout=10).json()["data"]
    assert "swap--v3" not in {m["id"] for m in models}
    chat = httpx.post(
        f"{s.gateway_url}/v1/chat/completions",
        json={"model": "swap", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
        headers={"Authorization": f"Bearer {s.key}"},
        timeout=120,
    )
    assert chat.status_code == 200 and chat.json()["model"] == "swap@2"


def _wait_failed(s: SwapStack, rid: int) -> str:
    deadline = time.monotonic() + 60
    while True:
        info = httpx.get(f"{s.drift_url}/v1/rollouts/{rid}", timeout=10).json()
        if info["state"] == "failed":
            return str(info["reason"])
        assert info["state"] in ("candidate", "loading"), info
        assert time.monotonic() < deadline, info
        time.sleep(0.2)
