"""The rollout controller against a real gateway and a real drift service (in-process uvicorn).

The vLLM replicas are the gateway tests' fake (``tests/gateway/fake_vllm.py``): a real
vLLM takes a minute to start and belongs to ``tests/e2e/test_swap.py``; the fake is
also what injects an engine-side refusal on load. Everything else is real: HTTP
admin API, SQLite state store, drift tables, heartbeats, feedback through the gateway.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from pydantic import SecretStr

from drift.app import create_app as create_drift_app
from drift.settings import DriftSettings
from drift.store import DriftStore
from driftgate.core.client import AsyncClient
from driftgate.core.state.heartbeats import read_beats, routes_hash
from gateway.app import create_app as create_gateway_app
from gateway.runtime import Gateway
from gateway.settings import GatewaySettings
from rollout.controller import RolloutController
from rollout.judge import JudgePolicy
from rollout.machine import Policy, RolloutState
from rollout.metrics import RolloutMetrics
from rollout.mount import with_rollouts
from rollout.service import Rollouts
from rollout.settings import RolloutSettings
from rollout.store import RolloutStore
from tests.gateway.conftest import make_peft_dir
from tests.gateway.fake_vllm import FakeVLLM
from tests.gateway.held_stream import hold_last_chunk

ADMIN_KEY = "rollout-admin-key"
#: The gateway presents it to the drift service with events and feedback.
INGEST_KEY = "rollout-ingest-key"
BASE = "SmolLM2-135M-Instruct"
S = RolloutState
#: How many of a loop's configured intervals a wait may take before the test fails.
TICKS = 50


async def serve(app: Any, sock: socket.socket) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, task


def bound() -> tuple[socket.socket, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@dataclass
class Env:
    gateways: list[str]
    drift_url: str
    fakes: list[FakeVLLM]
    state_url: str
    tmp: Path
    client: httpx.AsyncClient
    drift_app: Any
    key: str = ""
    #: A second tenant's key: the judge counts no tenant for more than half of the votes.
    key2: str = ""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = field(default_factory=list)

    @property
    def gw(self) -> str:
        return self.gateways[0]

    def gateway(self, i: int) -> Gateway:
        """Gateway ``i``'s live state (what its lifespan yields; servers[0] is the drift app)."""
        server, _ = self.servers[1 + i]
        gw: Gateway = server.lifespan.state["gw"]
        return gw

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_KEY}"}

    @property
    def rollouts(self) -> Rollouts:
        r: Rollouts = self.drift_app.state.rollouts
        return r

    @property
    def drift_store(self) -> DriftStore:
        store: DriftStore = self.drift_app.state.drift.service.store
        return store

    async def admin(self, method: str, path: str, body: Any = None, gw: int = 0) -> Any:
        r = await self.client.request(
            method, self.gateways[gw] + path, json=body, headers=self.admin_headers
        )
        assert r.status_code < 300, r.text
        return r.json() if r.content else None

    async def routes(self) -> dict[str, dict[str, float]]:
        routes: dict[str, dict[str, float]] = (await self.admin("GET", "/admin/routes"))["routes"]
        return routes

    async def versions(self) -> dict[int, dict[str, Any]]:
        data = (await self.admin("GET", "/admin/adapters?adapter=support"))["data"]
        return {int(v["version"]): v for v in data}

    def peft(self, name: str, **config: Any) -> str:
        return make_peft_dir(self.tmp, name, **config)

    async def chat(
        self, model: str = "support", gw: int = 0, key: str | None = None, **kw: Any
    ) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "hi there"}], **kw}
        return await self.client.post(
            self.gateways[gw] + "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key or self.key}"},
        )

    async def feedback(self, request_id: str, score: float, key: str | None = None) -> None:
        r = await self.client.post(
            self.gw + "/v1/feedback",
            json={"request_id": request_id, "score": score},
            headers={"Authorization": f"Bearer {key or self.key}"},
        )
        assert r.status_code == 202, r.text

    async def start_rollout(self, path: str, **body: Any) -> dict[str, Any]:
        r = await self.client.post(
            self.drift_url + "/v1/rollouts",
            json={"adapter": "support", "path": path, **body},
            headers=self.admin_headers,
        )
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    async def rollout(self, rollout_id: int) -> dict[str, Any]:
        r = await self.client.get(
            f"{self.drift_url}/v1/rollouts/{rollout_id}", headers=self.admin_headers
        )
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    async def serve_v1(self) -> None:
        r = await self.admin(
            "POST", "/admin/adapters/support/versions", {"path": self.peft("v1"), "version": 1}
        )
        assert r["state"] == "ready"
        await self.admin("PUT", "/admin/routes/support", {"weights": {"1": 1.0}})


def rollout_settings(env_state: str, gw_url: str, **kw: Any) -> RolloutSettings:
    options: dict[str, Any] = {
        "state_url": env_state,
        "gateway_url": gw_url,
        "admin_key": ADMIN_KEY,
        "enabled": False,
        "interval_s": 0.2,
        "min_feedback": 20,
        "min_requests": 20,
        "drain_grace_s": 0.5,
        "drain_timeout_s": 20,
        "heartbeat_fresh_s": 2.0,
        "canary_timeout_s": 120,
        **kw,
    }
    return RolloutSettings(**options)


@pytest_asyncio.fixture(loop_scope="function")
async def make_env(tmp_path: Path) -> AsyncIterator[Any]:
    envs: list[Env] = []

    async def factory(gateways: int = 1, **rollout: Any) -> Env:
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        fakes = [await FakeVLLM().start() for _ in range(1)]
        gw_socks = [bound() for _ in range(gateways)]
        drift_sock, drift_url = bound()
        drift_app = with_rollouts(
            create_drift_app(
                DriftSettings(
                    state_url=state_url, trigger_mode="off", ingest_key=SecretStr(INGEST_KEY)
                )
            ),
            rollout_settings(state_url, gw_socks[0][1], **{"adapter_roots": [tmp_path], **rollout}),
        )
        client = httpx.AsyncClient(timeout=30)
        env = Env(
            [u for _, u in gw_socks], drift_url, fakes, state_url, tmp_path, client, drift_app
        )
        envs.append(env)
        env.servers.append(await serve(drift_app, drift_sock))
        for sock, _ in gw_socks:
            settings = GatewaySettings(
                upstreams=[f.url for f in fakes],
                base_model=BASE,
                admin_key=SecretStr(ADMIN_KEY),
                ingest_key=SecretStr(INGEST_KEY),
                state_url=state_url,
                drift_url=drift_url,
                health_interval_s=0.2,
                state_refresh_s=0.2,
                event_flush_interval_s=0.1,
                heartbeat_interval_s=0.2,
                adapter_roots=[tmp_path],
            )
            env.servers.append(await serve(create_gateway_app(settings), sock))
        keys = []
        for name in ("acme", "globex"):
            r = await env.client.post(
                env.gw + "/admin/tenants",
                json={"name": name, "adapters": ["support"], "rate_limit_rps": 1000, "burst": 1000},
                headers=env.admin_headers,
            )
            keys.append(r.json()["api_key"])
        env.key, env.key2 = keys
        return env

    yield factory
    for env in envs:
        await env.client.aclose()
        for server, task in reversed(env.servers):
            server.should_exit = True
            await task
        for f in env.fakes:
            await f.stop()


def controller(env: Env, **policy: Any) -> RolloutController:
    """A controller of its own (as after a restart): new store, new admin client."""
    p = Policy(
        judge=JudgePolicy(min_feedback=20, min_requests=20, timeout_s=120),
        drain_grace_s=0.5,
        drain_timeout_s=20,
        **policy,
    )
    return RolloutController(
        RolloutStore(env.state_url),
        AsyncClient(env.gw, ADMIN_KEY),
        RolloutMetrics(),
        policy=p,
        signals=env.drift_store,
        heartbeat_fresh_s=2.0,
    )


async def close(c: RolloutController) -> None:
    await c.admin.close()
    c.store.dispose()


async def tick_until(c: RolloutController, rollout_id: int, state: S, limit_s: float = 15) -> Any:
    deadline = time.monotonic() + limit_s
    while True:
        await c.tick()
        r = c.store.get(rollout_id)
        if r.state is state:
            return r
        assert time.monotonic() < deadline, f"stuck in {r.state}: {r.reason}"
        await asyncio.sleep(0.1)


async def within_ticks(check: Callable[[], bool], tick_s: float, ticks: int) -> bool:
    """Poll ``check`` every ``tick_s`` (a fraction of a configured interval), ``ticks`` times."""
    for _ in range(ticks):
        if check():
            return True
        await asyncio.sleep(tick_s)
    return check()


class Refreshes:
    """Counts a gateway's state refreshes; records the routes applied by those begun after
    :meth:`mark`, and when they ended (its refresh loop looks ``gw.refresh`` up on every tick).
    """

    def __init__(self, gw: Gateway) -> None:
        self.done = 0
        #: (routes hash, time.time() at its end) of each refresh begun after the mark
        self.applied_after_mark: list[tuple[str, float]] = []
        self._marked = False
        refresh = gw.refresh

        async def counted() -> None:
            after_mark = self._marked
            await refresh()
            self.done += 1
            if after_mark:
                applied = routes_hash(gw.table.snapshot.routes), time.time()
                self.applied_after_mark.append(applied)

        gw.refresh = counted  # type: ignore[method-assign]

    def mark(self) -> None:
        self._marked = True


async def beats_begun_after(env: Env, since: float) -> list[dict[str, Any]]:
    """Each gateway's first heartbeat begun after ``since``.

    A beat reads the routes when it begins and stamps ``ts`` when it is written: the first
    row written after ``since`` may have begun before it, the next one of that gateway not.
    """
    engine = env.rollouts.store.engine
    tick = env.gateway(0).settings.heartbeat_interval_s
    first: dict[str, float] = {}
    later: list[dict[str, Any]] = []

    def each_has_a_later_beat() -> bool:
        beats = read_beats(engine, since)
        for b in beats:
            first.setdefault(b["gateway_id"], b["ts"])
        later[:] = [b for b in beats if b["ts"] > first[b["gateway_id"]]]
        return len(later) == len(env.gateways)

    assert await within_ticks(each_has_a_later_beat, tick / 4, 4 * TICKS), (first, later)
    return later


async def test_restart_mid_rollout_resumes_and_drains_in_flight_before_unloading(
    make_env: Any,
) -> None:
    env: Env = await make_env()
    await env.serve_v1()
    created = await env.start_rollout(env.peft("v2"), canary_weight=0.25)
    c = controller(env)
    r = await tick_until(c, created["id"], S.CANARY)
    assert (r.candidate_version, r.serving_version) == (2, 1)
    assert await env.routes() == {"support": {"1": 0.75, "2": 0.25}}
    assert "support--v2" in env.fakes[0].loaded
    # The controller dies right after persisting "promoted", before moving the route.
    r = c.store.record(r, S.PROMOTED, "promoted (then the controller crashed)")
    await close(c)
    assert await env.routes() == {"support": {"1": 0.75, "2": 0.25}}

    # A slow stream pinned to v1 is in flight while the new controller drains v1.
    env.fakes[0].chunk_delay_s = 0.4
    env.fakes[0].chunks = 6
    stream = asyncio.create_task(env.chat("support@1", stream=True))
    await asyncio.sleep(0.3)
    c2 = controller(env)
    r = await tick_until(c2, created["id"], S.DRAINING)
    assert await env.routes() == {"support": {"2": 1.0}}
    await c2.tick()
    assert c2.store.get(created["id"]).state is S.DRAINING  # v1 still has a request in flight
    assert "in flight" in c2.store.get(created["id"]).reason
    r = await tick_until(c2, created["id"], S.UNLOADED)
    resp = await stream
    assert resp.status_code == 200 and "support@1" in resp.text and "[DONE]" in resp.text
    assert env.fakes[0].streams_aborted == 0
    versions = await env.versions()
    assert versions[1]["state"] == "retired" and versions[2]["state"] == "ready"
    assert "support--v1" not in env.fakes[0].loaded
    env.fakes[0].chunk_delay_s = 0
    for _ in range(10):
        assert (await env.chat()).json()["model"] == "support@2"
    hist = c2.store.transitions(created["id"])
    assert [t["to"] for t in hist] == [
        "candidate", "loading", "canary", "promoted", "draining", "unloaded",
    ]  # fmt: skip
    assert "drained" in hist[-1]["reason"]
    m = c2.metrics.registry
    labels = {"adapter": "support", "version": "2"}
    assert m.get_sample_value("driftgate_rollout_state", {**labels, "state": "unloaded"}) == 1
    assert m.get_sample_value("driftgate_rollout_state", {**labels, "state": "canary"}) == 0
    assert m.get_sample_value("driftgate_rollout_canary_weight", labels) == 1.0
    assert (
        m.get_sample_value(
            "driftgate_rollout_transitions_total", {"adapter": "support", "outcome": "unloaded"}
        )
        == 1
    )
    await close(c2)


async def test_worse_feedback_rolls_back_automatically(make_env: Any) -> None:
    env: Env = await make_env(enabled=True)
    await env.serve_v1()
    created = await env.start_rollout(env.peft("v2"), canary_weight=0.5)
    deadline = time.monotonic() + 20
    while (await env.rollout(created["id"]))["state"] != "canary":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    served: dict[str, int] = {"support@1": 0, "support@2": 0}
    deadline = time.monotonic() + 60
    state = "canary"
    sent = 0
    while state == "canary":
        assert time.monotonic() < deadline, "no decision"
        key = (env.key, env.key2)[sent % 2]  # two tenants alike: the vote cap keeps both
        sent += 1
        resp = await env.chat(key=key)
        assert resp.status_code == 200, resp.text
        model = resp.json()["model"]
        served[model] += 1
        n = served[model]
        bad = n % 10 < 6 if model == "support@2" else n % 10 == 0  # 60% vs 10% negative
        await env.feedback(resp.json()["id"], 0.0 if bad else 1.0, key=key)
        state = (await env.rollout(created["id"]))["state"]
    assert state in ("rolled_back", "draining", "unloaded")
    deadline = time.monotonic() + 20
    while (info := await env.rollout(created["id"]))["state"] != "unloaded":
        assert time.monotonic() < deadline, info
        await asyncio.sleep(0.1)
    assert info["outcome"] == "rolled_back"
    assert info["decision"]["verdict"] == "rollback" and info["decision"]["p_negative"] < 0.05
    assert info["decision"]["candidate"]["feedback"] >= 20
    assert await env.routes() == {"support": {"1": 1.0}}
    assert (await env.versions())[2]["state"] == "retired"
    assert "support--v2" not in env.fakes[0].loaded
    for _ in range(20):
        assert (await env.chat()).json()["model"] == "support@1"
    metrics = (await env.client.get(env.drift_url + "/metrics")).text
    assert 'driftgate_rollout_transitions_total{adapter="support",outcome="rolled_back"} 1.0' in (
        metrics
    )
    assert 'driftgate_rollout_feedback{adapter="support",kind="negative",version="2"}' in metrics


async def test_without_feedback_the_canary_is_promoted_on_answer_confidence(
    make_env: Any,
) -> None:
    """The whole path: the gateway asks the fake engine for logprobs, the drift store sums
    up each version's answer confidence (the fake's is the same for both), and the
    controller promotes on it with no vote at all."""
    env: Env = await make_env(enabled=True, min_requests=10, confidence_min_requests=10)
    await env.serve_v1()
    created = await env.start_rollout(env.peft("v2"), canary_weight=0.5)
    deadline = time.monotonic() + 20
    while (await env.rollout(created["id"]))["state"] != "canary":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    deadline = time.monotonic() + 60
    state = "canary"
    while state == "canary":
        assert time.monotonic() < deadline, "no decision"
        for _ in range(4):
            assert (await env.chat()).status_code == 200
        state = (await env.rollout(created["id"]))["state"]
    info = await env.rollout(created["id"])
    assert info["outcome"] == "promoted", info
    decision = info["decision"]
    assert decision["verdict"] == "promote" and "too scarce" in decision["reason"]
    for arm in ("candidate", "serving"):
        assert decision[arm]["feedback"] == 0
        assert decision[arm]["confidence_requests"] >= 10
        assert decision[arm]["confidence_mean"] < 0
    assert decision["p_confidence"] is not None
    metrics = (await env.client.get(env.drift_url + "/metrics")).text
    assert 'driftgate_rollout_answer_confidence{adapter="support",version="2"}' in metrics


@pytest.mark.parametrize(
    ("name", "config", "reason"),
    [
        ("corrupt", None, "unreadable"),
        ("rank64", {"r": 64}, "exceeds the engine's max LoRA rank"),
        ("otherbase", {"base_model_name_or_path": "meta-llama/Llama-3-8B"}, "not on the served"),
        ("refused", {}, "refused by the engine"),
    ],
)
async def test_bad_candidates_are_refused_at_loading_and_serving_is_untouched(
    make_env: Any, name: str, config: dict[str, Any] | None, reason: str
) -> None:
    env: Env = await make_env()
    await env.serve_v1()
    path = env.peft(name, **(config or {}))
    if config is None:
        (Path(path) / "adapter_config.json").write_text("{not json")
    if name == "refused":  # the engine itself refuses (e.g. unreadable weights)
        env.fakes[0].refuse_paths.add(path)
    created = await env.start_rollout(path)
    c = controller(env)
    r = await tick_until(c, created["id"], S.FAILED)
    assert r.outcome == "failed" and reason in r.reason, r.reason
    assert await env.routes() == {"support": {"1": 1.0}}
    assert set(env.fakes[0].loaded) == {"support--v1"}
    assert (await env.chat()).json()["model"] == "support@1"
    # the adapter is free for the next rollout
    again = await env.start_rollout(env.peft(name + "-fixed"))
    assert again["state"] == "candidate"
    await close(c)


async def test_manual_approval_and_the_admin_api(make_env: Any) -> None:
    env: Env = await make_env(approval="manual")
    await env.serve_v1()
    url = env.drift_url + "/v1/rollouts"
    body = {"adapter": "support", "path": env.peft("v2")}
    assert (await env.client.post(url, json=body)).status_code == 401
    bad = await env.client.post(url, json={**body, "canary_weight": 2}, headers=env.admin_headers)
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "canary_weight"
    created = await env.start_rollout(body["path"], meta={"version": 5})
    assert created["approved"] is False
    dup = await env.client.post(url, json=body, headers=env.admin_headers)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "rollout_active"
    missing = await env.client.post(url + "/999/promote", headers=env.admin_headers)
    assert missing.status_code == 404
    early = await env.client.post(f"{url}/{created['id']}/promote", headers=env.admin_headers)
    assert early.status_code == 409
    c = controller(env)
    await c.tick()
    assert c.store.get(created["id"]).state is S.CANDIDATE  # waits for approval
    ok = await env.client.post(f"{url}/{created['id']}/approve", headers=env.admin_headers)
    assert ok.status_code == 200 and ok.json()["approved"] is True
    canary = await tick_until(c, created["id"], S.CANARY)
    assert canary.candidate_version == 5  # the number the retrain job chose, still free
    r = await env.client.post(f"{url}/{created['id']}/rollback", headers=env.admin_headers)
    assert r.status_code == 200 and r.json()["command"] == "rollback"
    r2 = await tick_until(c, created["id"], S.UNLOADED)
    assert r2.outcome == "rolled_back" and r2.reason
    assert (await env.client.get(url + "?adapter=support")).status_code == 401  # reads too
    listed = (await env.client.get(url + "?adapter=support", headers=env.admin_headers)).json()
    listed = listed["data"]
    assert [x["state"] for x in listed] == ["unloaded"]
    assert await env.routes() == {"support": {"1": 1.0}}
    await close(c)


async def test_capacity_guard_keeps_a_candidate_waiting(make_env: Any) -> None:
    env: Env = await make_env()
    await env.serve_v1()
    created = await env.start_rollout(env.peft("v2"))
    c = controller(env)
    c.max_loaded = 1  # one version loaded already: no room for another
    await c.tick()
    r = c.store.get(created["id"])
    assert r.state is S.CANDIDATE and "slot" in r.reason
    c.max_loaded = 2
    await tick_until(c, created["id"], S.CANARY)
    await close(c)


async def test_a_second_gateway_serves_a_route_change_from_its_next_refresh(
    make_env: Any,
) -> None:
    """docs/CONTRACTS.md: the answering gateway reloads at once, the others within
    ``state_refresh_s``. Counted in refreshes: the first one gateway 1 begins after the
    change applies it; each gateway's heartbeats begun after that report it."""
    env: Env = await make_env(gateways=2)
    await env.serve_v1()
    await env.admin(
        "POST", "/admin/adapters/support/versions", {"path": env.peft("v2"), "version": 2}
    )
    gw1 = env.gateway(1)
    refreshes = Refreshes(gw1)
    tick = gw1.settings.state_refresh_s
    # Until gateway 1's first refresh it may not know the adapter yet (an error answer).
    assert await within_ticks(lambda: refreshes.done >= 1, tick / 4, 4 * TICKS)
    assert (await env.chat(gw=1)).json()["model"] == "support@1"
    await env.admin("PUT", "/admin/routes/support", {"weights": {"2": 1.0}})  # committed
    refreshes.mark()
    assert await within_ticks(lambda: bool(refreshes.applied_after_mark), tick / 4, 4 * TICKS)
    want = routes_hash({"support": {2: 1.0}})
    applied, applied_at = refreshes.applied_after_mark[0]
    assert applied == want  # the first refresh begun after the change applied it
    assert {(await env.chat(gw=1)).json()["model"] for _ in range(5)} == {"support@2"}
    assert routes_hash(env.gateway(0).table.snapshot.routes) == want  # reloaded at once
    # Both gateways had applied the change at applied_at: heartbeats begun later report it.
    beats = await beats_begun_after(env, applied_at)
    assert sorted(b["routes_hash"] for b in beats) == [want, want]


async def test_heartbeat_reports_in_flight_per_served_name(
    make_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env: Env = await make_env()
    await env.serve_v1()
    engine = env.rollouts.store.engine
    tick = env.gateway(0).settings.heartbeat_interval_s
    release = asyncio.Event()
    hold_last_chunk(monkeypatch, release)  # the stream stays open until the beat is seen
    stream = asyncio.create_task(env.chat(stream=True))
    beats: list[dict[str, Any]] = []

    def in_flight_seen() -> bool:
        beats[:] = read_beats(engine, 0.0)
        return bool(beats) and beats[0]["in_flight"].get("support--v1") == 1

    assert await within_ticks(in_flight_seen, tick / 4, 4 * TICKS), beats
    release.set()
    assert (await stream).status_code == 200
    drained = within_ticks(lambda: not read_beats(engine, 0.0)[0]["in_flight"], tick / 4, 4 * TICKS)
    assert await drained
    # rows are plain JSON values, with the keys and types their readers rely on
    assert json.loads(json.dumps(beats)) == beats
    (beat,) = beats
    assert set(beat) == {"gateway_id", "ts", "routes_hash", "applied_at", "in_flight"}
    assert all(isinstance(beat[k], str) and beat[k] for k in ("gateway_id", "routes_hash"))
    assert all(type(beat[k]) is float for k in ("ts", "applied_at"))
    assert beat["in_flight"] == {"support--v1": 1}
    assert beat["routes_hash"] == routes_hash({"support": {1: 1.0}})
