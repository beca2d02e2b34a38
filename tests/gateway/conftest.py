"""Fixtures: a real gateway (uvicorn, random port) in front of fake vLLM replicas."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import uvicorn

from driftgate.core.state import StateStore
from gateway.app import create_app
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from tests.database import wipe
from tests.gateway.fake_vllm import FakeVLLM

ADMIN_KEY = "admin-test-key"
#: Set to run the gateway tests on PostgreSQL instead of a SQLite file.
PG_URL = os.environ.get("DRIFTGATE_TEST_POSTGRES_URL")
BASE = "SmolLM2-135M-Instruct"


def make_peft_dir(root: Path, name: str, **config: Any) -> str:
    """A directory in the PEFT layout (weights are placeholder bytes: the fake never reads them)."""
    d = root / name
    d.mkdir(parents=True)
    cfg = {
        "peft_type": "LORA",
        "r": 8,
        "lora_alpha": 16,
        "target_modules": ["q_proj", "v_proj"],
        "base_model_name_or_path": f"/models/{BASE}",
        **config,
    }
    (d / "adapter_config.json").write_text(json.dumps(cfg))
    (d / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    return str(d)


async def serve(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY on accepted connections only
    # when the listening socket says TCP, and without it every response waited ~40 ms
    # (Nagle's algorithm against the client's delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, task, port


@dataclass
class Stack:
    url: str
    replicas: list[FakeVLLM]
    metrics: GatewayMetrics
    settings: GatewaySettings
    tmp: Path
    client: httpx.AsyncClient
    admin_headers: dict[str, str] = field(
        default_factory=lambda: {"Authorization": f"Bearer {ADMIN_KEY}"}
    )

    async def admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return await self.client.request(
            method, self.url + path, json=body, headers=self.admin_headers
        )

    async def tenant(self, name: str, adapters: list[str], **kw: Any) -> str:
        r = await self.admin("POST", "/admin/tenants", {"name": name, "adapters": adapters, **kw})
        assert r.status_code == 201, r.text
        return str(r.json()["api_key"])

    async def version(self, adapter: str, route: bool = True, **config: Any) -> int:
        """Register a new version of ``adapter`` (and route 100% to it)."""
        n = len(list(self.tmp.glob(f"{adapter}-*")))
        path = make_peft_dir(self.tmp, f"{adapter}-{n}", **config)
        r = await self.admin("POST", f"/admin/adapters/{adapter}/versions", {"path": path})
        assert r.status_code == 201, r.text
        v = int(r.json()["version"])
        if route:
            r = await self.admin("PUT", f"/admin/routes/{adapter}", {"weights": {str(v): 1.0}})
            assert r.status_code == 200, r.text
        return v

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    async def chat(self, key: str, model: str, **kw: Any) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "hello there"}], **kw}
        return await self.client.post(
            self.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )


StackFactory = Callable[..., Awaitable[Stack]]


@pytest_asyncio.fixture(loop_scope="function")
async def make_stack(tmp_path: Path) -> AsyncIterator[StackFactory]:
    started: list[tuple[uvicorn.Server, asyncio.Task[None], list[FakeVLLM], httpx.AsyncClient]] = []

    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    if PG_URL:  # the whole gateway suite on PostgreSQL: a fresh schema per test
        state_url = PG_URL
        store = StateStore(PG_URL)
        wipe(store.engine)
        store.dispose()

    async def factory(
        replicas: int = 1, clock: Callable[[], float] = time.time, **overrides: Any
    ) -> Stack:
        fakes = [await FakeVLLM().start() for _ in range(replicas)]
        options: dict[str, Any] = {
            "upstreams": [f.url for f in fakes],
            "base_model": BASE,
            "admin_key": ADMIN_KEY,
            "state_url": state_url,
            "health_interval_s": 0.2,
            "state_refresh_s": 0.2,
            "adapter_roots": [tmp_path],
            **overrides,
        }
        settings = GatewaySettings(**options)
        metrics = GatewayMetrics()
        server, task, port = await serve(create_app(settings, metrics, clock=clock))
        client = httpx.AsyncClient(timeout=30)
        started.append((server, task, fakes, client))
        return Stack(
            url=f"http://127.0.0.1:{port}",
            replicas=fakes,
            metrics=metrics,
            settings=settings,
            tmp=tmp_path,
            client=client,
        )

    yield factory
    for server, task, fakes, client in started:
        await client.aclose()
        server.should_exit = True
        await task
        for f in fakes:
            await f.stop()


@pytest_asyncio.fixture(loop_scope="function")
async def stack(make_stack: StackFactory) -> Stack:
    return await make_stack()
