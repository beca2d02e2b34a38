"""Shared parts of the training-governance tests (issue 15, parts 3 and 4).

:func:`admin_gateway`: the real gateway (uvicorn on a free port) in front of a fake vLLM
(the admin routes load adapters but generate nothing), on a SQLite state file that the
drift store and the retrain job's wiring open too, as the embedded stack does.
:func:`log_traffic`: request and feedback events written to that file the way the drift
service stores them (``drift.batch.request_rows``, ``drift.service.feedback_row``).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from drift.batch import request_rows
from drift.service import feedback_row
from drift.store import DriftStore
from driftgate.core.events import FeedbackEvent, RequestEvent
from gateway.app import create_app
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from retrain.examples import ChatExample
from tests.gateway.conftest import ADMIN_KEY, BASE, make_peft_dir, serve
from tests.gateway.fake_vllm import FakeVLLM

# fmt: off
WORDS = (
    "printer", "invoice", "password", "vpn", "battery", "quota", "calendar", "monitor",
    "keyboard", "refund", "parcel", "account", "license", "wifi", "disk", "boot", "phone",
    "badge", "desk", "expense", "payroll", "holiday", "parking", "coffee", "mouse", "headset",
    "webcam", "scanner", "projector", "dock", "router", "cable", "charger", "screen", "update",
    "backup", "folder", "mailbox", "meeting", "sensor", "speaker", "camera", "tablet",
    "ticket", "voucher", "order", "delivery",
)
# fmt: on


def prompts(n: int, seed: int) -> list[str]:
    """``n`` distinct prompts, far apart for the near-duplicate filter (seeded)."""
    rng = random.Random(seed)
    return [f"{' '.join(rng.sample(WORDS, 6))} case {seed}-{i}" for i in range(n)]


def assert_openai_error(r: httpx.Response, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body


@dataclass
class AdminGateway:
    url: str
    state_url: str
    tmp: Path
    client: httpx.AsyncClient

    async def admin(
        self, method: str, path: str, body: Any = None, *, key: str | None = ADMIN_KEY
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return await self.client.request(method, self.url + path, json=body, headers=headers)

    async def tenant(self, name: str, adapters: list[str]) -> str:
        r = await self.admin("POST", "/admin/tenants", {"name": name, "adapters": adapters})
        assert r.status_code == 201, r.text
        return str(r.json()["api_key"])

    async def version(self, adapter: str) -> None:
        path = make_peft_dir(self.tmp, f"{adapter}-v1")
        r = await self.admin("POST", f"/admin/adapters/{adapter}/versions", {"path": path})
        assert r.status_code == 201, r.text


@asynccontextmanager
async def admin_gateway(tmp_path: Path) -> AsyncIterator[AdminGateway]:
    fake = await FakeVLLM().start()
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    settings = GatewaySettings(
        upstreams=[fake.url],
        base_model=BASE,
        admin_key=ADMIN_KEY,
        state_url=state_url,
        health_interval_s=0.2,
        state_refresh_s=0.2,
        adapter_roots=[tmp_path],
    )
    server, task, port = await serve(create_app(settings, GatewayMetrics()))
    client = httpx.AsyncClient(timeout=30)
    try:
        yield AdminGateway(f"http://127.0.0.1:{port}", state_url, tmp_path, client)
    finally:
        await client.aclose()
        server.should_exit = True
        await task
        await fake.stop()


def log_traffic(
    store: DriftStore,
    tenant: str,
    items: Iterable[tuple[str, str, dict[str, Any]]],
    *,
    adapter: str = "support",
    ts0: float = 1000.0,
) -> None:
    """Requests ``(request_id, prompt, feedback)`` of ``tenant`` answered ``Q-OLD``, each
    with the feedback ``tenant`` gave on it (``{}``: none)."""
    events: list[RequestEvent] = []
    votes: list[FeedbackEvent] = []
    for i, (rid, prompt, fb) in enumerate(items):
        ts = ts0 + i
        events.append(
            RequestEvent(
                request_id=rid,
                ts=ts,
                tenant=tenant,
                adapter=adapter,
                version=1,
                prompt_text=prompt,
                completion_text="Q-OLD",
                prompt_tokens=8,
                completion_tokens=2,
                latency_ms=10.0,
                finish_reason="stop",
            )
        )
        if fb:
            votes.append(FeedbackEvent(request_id=rid, tenant=tenant, ts=ts + 0.5, **fb))
    # requests first, as the gateway's ids are used: the store refuses a vote on an id
    # it holds only under another tenant
    store.insert_requests(request_rows(events, lambda _a: "keep").rows)
    for vote in votes:
        store.write_feedback(feedback_row(vote))


def corrected(tenant: str, texts: Sequence[str], target: str = "Q-NEW") -> list[Any]:
    """``(request_id, prompt, feedback)`` items: each answer thumbed down and corrected."""
    return [(f"{tenant}-{i}", p, {"score": 0.0, "correction": target}) for i, p in enumerate(texts)]


class ScriptedEngine:
    """Stands in for vLLM at the evaluation gate: a loaded candidate answers every example
    with its expected completion, any other model answers nothing right. The tests that
    use it are about which evidence the gate demands, not about how well training works,
    so a candidate that wins on the held-out split is what they need; it also records
    which examples each model was asked."""

    beside_training = True

    def __init__(self) -> None:
        self.loaded: set[str] = set()
        self.asked: list[tuple[str, list[ChatExample]]] = []

    def load_lora(self, name: str, path: Path) -> None:
        self.loaded.add(name)

    def unload_lora(self, name: str) -> None:
        self.loaded.discard(name)

    def generate(self, model: str, examples: Sequence[ChatExample]) -> list[str]:
        self.asked.append((model, list(examples)))
        return [e.completion if model in self.loaded else "no idea" for e in examples]
