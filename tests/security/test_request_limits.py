"""Issue 15, part 5: bodies are size-limited before auth, and no request multiplies its work.

Over real sockets: the real gateway (uvicorn) in front of the gateway tests' fake vLLM
(``tests/gateway/fake_vllm.py``), and the real drift service with the rollout API. None
of these attacks needs generated text: each is refused before an engine is called, and
the fake records every request that reaches it, which is how "nothing reached the
engine" is checked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.gateway.conftest import Stack, StackFactory, make_stack  # noqa: F401 (fixture)
from tests.security.drift_service import drift_service

ADMIN_LIMIT = 65_536


def too_large(limit: int) -> dict[str, Any]:
    return {
        "error": {
            "message": f"request body exceeds {limit} bytes",
            "type": "invalid_request_error",
            "param": None,
            "code": "request_too_large",
        }
    }


def limit_error(param: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": "request_limit_exceeded",
        }
    }


async def _chunks(total: int, size: int = 8192) -> AsyncIterator[bytes]:
    yield b'{"name": "'
    for _ in range(total // size):
        yield b"a" * size
    yield b'"}'


async def test_oversized_admin_body_without_credentials_is_413_not_401(
    make_stack: StackFactory,  # noqa: F811
) -> None:
    s: Stack = await make_stack()
    url = s.url + "/admin/tenants"
    # Declared too large (and not even JSON: it is never parsed), no credentials.
    r = await s.client.post(url, content=b"{" * (ADMIN_LIMIT + 1))
    assert r.status_code == 413 and r.json() == too_large(ADMIN_LIMIT)
    # Streamed without a length, with a wrong key: 413 too, before the key is looked at.
    r = await s.client.post(
        url, content=_chunks(ADMIN_LIMIT + 8192), headers={"Authorization": "Bearer wrong"}
    )
    assert r.status_code == 413 and r.json() == too_large(ADMIN_LIMIT)
    # The admin key does not lift the limit.
    body = {"name": "acme", "adapters": ["support"] * 10_000}
    r = await s.client.post(url, json=body, headers=s.admin_headers)
    assert r.status_code == 413 and r.json() == too_large(ADMIN_LIMIT)
    # Nothing was stored; a small body without credentials is still 401.
    assert (await s.admin("GET", "/admin/tenants")).json() == {"data": []}
    assert (await s.client.post(url, json={"name": "acme"})).status_code == 401


async def test_oversized_inference_and_feedback_bodies_without_credentials_are_413(
    make_stack: StackFactory,  # noqa: F811
) -> None:
    s: Stack = await make_stack(max_body_bytes=2048)
    big = {"model": "support", "messages": [{"role": "user", "content": "x" * 5000}]}
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/feedback"):
        r = await s.client.post(s.url + path, json=big)
        assert r.status_code == 413 and r.json() == too_large(2048), path
    assert s.replicas[0].requests == []
    assert s.metric("driftgate_gateway_feedback_total", tenant="-", status="401") == 0


async def test_oversized_rollout_and_drift_bodies_without_credentials_are_413(
    tmp_path: Path,
) -> None:
    async with drift_service(tmp_path, drift={"max_body_bytes": 4096}) as d:
        cases = [
            ("/v1/rollouts", ADMIN_LIMIT, {"adapter": "support", "path": "/x" * 40_000}),
            ("/v1/rollouts/1/approve", ADMIN_LIMIT, {"pad": "x" * 70_000}),
            ("/v1/events", 4096, {"events": [{"pad": "x" * 5000}]}),
            ("/v1/feedback", 4096, {"request_id": "r", "correction": "x" * 5000}),
            ("/v1/drift/reference", ADMIN_LIMIT, {"adapter": "support", "pad": "x" * 70_000}),
        ]
        for path, limit, body in cases:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                r = await d.client.post(d.url + path, json=body, headers=headers)
                assert r.status_code == 413 and r.json() == too_large(limit), path
        assert await d.rollouts() == []
        assert await d.metric("driftgate_drift_events_ingested_total", kind="request") == 0
        assert await d.metric("driftgate_drift_events_ingested_total", kind="feedback") == 0
        # the drift service's own limits count in its rejection metric
        assert await d.metric("driftgate_drift_events_rejected_total", reason="too_large") == 6


async def test_n_50_is_refused_and_never_reaches_the_engine(
    make_stack: StackFactory,  # noqa: F811
) -> None:
    s: Stack = await make_stack()
    key = await s.tenant("acme", ["support"], rate_limit_rps=0)
    await s.version("support")
    r = await s.chat(key, "support", n=50)
    assert r.status_code == 400
    assert r.json() == limit_error("n", "n 50 exceeds this gateway's limit of 8")
    assert s.replicas[0].requests == []
    assert (await s.chat(key, "support", n=2, max_tokens=64)).status_code == 200
    assert s.replicas[0].requests[0]["n"] == 2


async def test_best_of_prompt_lists_min_tokens_and_the_token_budget_are_capped(
    make_stack: StackFactory,  # noqa: F811
) -> None:
    s: Stack = await make_stack()
    key = await s.tenant("acme", ["support"], rate_limit_rps=0, max_tokens=4096)
    await s.version("support")
    auth = {"Authorization": f"Bearer {key}"}
    url = s.url + "/v1/completions"
    cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (
            {"prompt": "hi", "best_of": 64},
            limit_error("best_of", "best_of 64 exceeds this gateway's limit of 8"),
        ),
        (
            {"prompt": ["hi"] * 1000, "max_tokens": 1},
            limit_error("prompt", "1000 prompts exceed this gateway's limit of 16"),
        ),
        (
            {"prompt": "hi", "min_tokens": 5000},
            limit_error("min_tokens", "min_tokens 5000 exceeds max_tokens 4096"),
        ),
        (
            # each field within its own limit; together 4096 x 8 x 16 tokens
            {"prompt": ["hi"] * 16, "n": 8},
            limit_error(
                "max_tokens",
                "max_tokens 4096 x 128 completions exceeds this gateway's budget of 16384 "
                "tokens per request; lower max_tokens, n, best_of or the prompts",
            ),
        ),
    ]
    for fields, error in cases:
        r = await s.client.post(url, json={"model": "support", **fields}, headers=auth)
        assert r.status_code == 400 and r.json() == error, fields
    assert s.replicas[0].requests == []
    ok = {"model": "support", "prompt": ["a", "b"], "n": 2, "max_tokens": 64}
    assert (await s.client.post(url, json=ok, headers=auth)).status_code == 200


async def test_streamed_admin_body_within_the_limit_still_works(
    make_stack: StackFactory,  # noqa: F811
) -> None:
    """The limit buffers and replays: a chunked admin body under the limit is served."""
    s: Stack = await make_stack()

    async def body() -> AsyncIterator[bytes]:
        yield b'{"name": "ac'
        yield b'me", "adapters": ["support"]}'

    headers = {**s.admin_headers, "Content-Type": "application/json"}
    r = await s.client.post(s.url + "/admin/tenants", content=body(), headers=headers)
    assert r.status_code == 201, r.text
