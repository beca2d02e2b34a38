"""vLLM's API key: whoever reaches vLLM without it can neither generate nor load a LoRA.

Runtime LoRA loading is on (the hot swap needs it), so an open vLLM would let any pod
pre-load its own weights under the name the next version will get
(``support--v4``) and have the gateway serve them. The real vLLM, started once per test
session with ``DRIFTGATE_ENGINE_API_KEY``; the real gateway in front of it presents it.
"""

from __future__ import annotations

import httpx
import pytest

from driftgate.engine import EngineProcess
from tests.live import FixtureAdapter, LiveStack

pytestmark = pytest.mark.e2e

ATTEMPTS = {"none": {}, "wrong": {"Authorization": "Bearer not-the-engine-key"}}


def _loaded(engine: EngineProcess) -> set[str]:
    r = httpx.get(f"{engine.base_url}/v1/models", headers=engine.headers, timeout=30)
    assert r.status_code == 200, r.text
    return {m["id"] for m in r.json()["data"]}


@pytest.mark.parametrize("credential", sorted(ATTEMPTS))
def test_vllm_refuses_generation_and_lora_loading_without_its_key(
    engine: EngineProcess, fixture_adapters: dict[str, FixtureAdapter], credential: str
) -> None:
    headers = ATTEMPTS[credential]
    chat = httpx.post(
        f"{engine.base_url}/v1/chat/completions",
        json={
            "model": engine.settings.served_model_name,
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 2,
        },
        headers=headers,
        timeout=60,
    )
    assert chat.status_code == 401, chat.text
    path = fixture_adapters["greeter"].path
    load = httpx.post(
        f"{engine.base_url}/v1/load_lora_adapter",
        json={"lora_name": "support--v99", "lora_path": str(path)},
        headers=headers,
        timeout=60,
    )
    assert load.status_code == 401, load.text
    assert "support--v99" not in _loaded(engine)
    models = httpx.get(f"{engine.base_url}/v1/models", headers=headers, timeout=30)
    assert models.status_code == 401  # not even the list of loaded adapters
    assert httpx.get(f"{engine.base_url}/health", timeout=30).status_code == 200  # probes


def test_the_gateway_presents_the_key(live_stack: LiveStack) -> None:
    """The same engine serves a tenant through the gateway, which holds the key."""
    r = httpx.post(
        f"{live_stack.gateway_url}/v1/chat/completions",
        json={"model": "greeter", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
        headers={"Authorization": f"Bearer {live_stack.keys['globex']}"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
