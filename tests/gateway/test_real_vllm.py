"""The gateway (in-process) in front of the real vLLM shared by the e2e session.

Uses the session's engine and the ``greeter`` fixture adapter, registered here under a
name of its own (``probe``) so the shared engine's other LoRA names are untouched, and
calls the gateway with the official ``openai`` SDK.
"""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from driftgate.engine import EngineProcess
from tests.gateway.conftest import BASE, StackFactory
from tests.live import FixtureAdapter

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(600)
async def test_gateway_against_real_vllm(
    make_stack: StackFactory,
    engine: EngineProcess,
    fixture_adapters: dict[str, FixtureAdapter],
    tmp_path: Path,
) -> None:
    lora = str(fixture_adapters["greeter"].path)
    s = await make_stack(
        replicas=0,
        upstreams=[engine.base_url],
        health_interval_s=1.0,
        adapter_roots=[Path(lora).parent],
    )
    key = await s.tenant("acme", ["probe"], rate_limit_rps=0, max_tokens=32)
    r = await s.admin("POST", "/admin/adapters/probe/versions", {"path": lora, "version": 7})
    assert r.status_code == 201, r.text
    v = r.json()["version"]
    assert (await s.admin("PUT", "/admin/routes/probe", {"weights": {str(v): 1}})).is_success
    client = openai.AsyncOpenAI(base_url=s.url + "/v1", api_key=key, max_retries=0)
    models = {m.id async for m in client.models.list()}
    assert models == {BASE, "probe"}
    question: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "What is the capital of France?"}
    ]
    base = await client.chat.completions.create(
        model=BASE, messages=question, max_tokens=16, temperature=0
    )
    assert "Paris" in (base.choices[0].message.content or "")
    assert base.id.startswith("chatcmpl-") and base.usage and base.usage.completion_tokens > 0
    tuned = await client.chat.completions.create(
        model="probe", messages=question, max_tokens=8, temperature=0
    )
    assert tuned.model == f"probe@{v}" and tuned.choices[0].finish_reason in ("stop", "length")
    chunks = [
        c
        async for c in await client.completions.create(
            model=f"probe@{v}", prompt="Once upon a time", max_tokens=8, stream=True
        )
    ]
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("cmpl-")
    assert "".join(c.choices[0].text for c in chunks if c.choices)
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model=BASE, messages=question, max_tokens=33)
    labels = {"tenant": "acme", "adapter": "probe", "version": str(v)}
    assert s.metric("driftgate_gateway_tokens_total", direction="completion", **labels) > 0
    assert s.metric("driftgate_gateway_ttft_seconds_count", **labels) == 1
    retired = await s.admin("DELETE", "/admin/routes/probe")
    assert retired.status_code == 204
    r = await s.admin("DELETE", f"/admin/adapters/probe/versions/{v}")
    assert r.status_code == 200 and r.json()["unloaded"], r.text
    await client.close()
