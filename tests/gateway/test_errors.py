"""Every error status the gateway produces, each with its OpenAI-shaped body.

The upstream is the fake vLLM of ``fake_vllm.py`` (for the 5xx faults it injects).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.gateway.conftest import Stack, StackFactory


def assert_error(
    r: httpx.Response, status: int, etype: str, code: str | None = None
) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    assert "Traceback" not in err["message"]
    assert err["type"] == etype
    if code is not None:
        assert err["code"] == code
    return dict(err)


async def test_client_errors(make_stack: StackFactory) -> None:
    s: Stack = await make_stack(max_body_bytes=2048)
    key = await s.tenant("acme", ["support"], max_tokens=32)
    await s.tenant("other", ["billing"])
    await s.version("support")
    await s.version("billing")
    auth = {"Authorization": f"Bearer {key}"}
    url = s.url + "/v1/chat/completions"

    assert_error(
        await s.chat("dg-wrong", "support"), 401, "authentication_error", "invalid_api_key"
    )
    r = await s.client.post(url, json={"model": "support", "messages": []})
    assert_error(r, 401, "authentication_error")
    assert_error(await s.chat(key, "billing"), 403, "permission_error", "model_not_allowed")
    err = assert_error(await s.chat(key, "gpt-4"), 404, "invalid_request_error", "model_not_found")
    assert err["param"] == "model"
    r = await s.client.post(url, content=b"{not json", headers=auth)
    assert_error(r, 400, "invalid_request_error")
    r = await s.client.post(url, json={"model": "support"}, headers=auth)
    err = assert_error(r, 422, "invalid_request_error", "invalid_body")
    assert err["param"] == "messages"
    r = await s.chat(key, "support", max_tokens=33)
    assert_error(r, 400, "invalid_request_error", "max_tokens_exceeded")
    big = {"model": "support", "messages": [{"role": "user", "content": "x" * 5000}]}
    too_large = await s.client.post(url, json=big, headers=auth)
    assert_error(too_large, 413, "invalid_request_error", "request_too_large")
    # the refused body still gets its own request id (not the previous answer's)
    rid = too_large.headers.get("x-request-id", "")
    assert rid.startswith("chatcmpl-") and rid != r.headers["x-request-id"]


async def test_rate_limited_has_retry_after(stack: Stack) -> None:
    key = await stack.tenant("slow", ["*"], rate_limit_rps=0.5, burst=1)
    assert (await stack.chat(key, "SmolLM2-135M-Instruct")).status_code == 200
    r = await stack.chat(key, "SmolLM2-135M-Instruct")
    assert_error(r, 429, "rate_limit_error", "rate_limit_exceeded")
    assert 1 <= int(r.headers["retry-after"]) <= 2
    assert (
        stack.metric(
            "driftgate_gateway_requests_total",
            tenant="slow",
            adapter="-",
            version="-",
            endpoint="chat",
            status="429",
        )
        == 1
    )  # refused before the body is read: no adapter label


async def test_upstream_5xx_everywhere_is_502(make_stack: StackFactory) -> None:
    s = await make_stack(replicas=2)
    key = await s.tenant("acme", ["*"])
    for f in s.replicas:
        f.fail_status = 500
    assert_error(await s.chat(key, "SmolLM2-135M-Instruct"), 502, "upstream_error", "bad_gateway")
    assert sum(len(f.requests) for f in s.replicas) == 2  # tried on both


async def test_no_healthy_replica_is_503(stack: Stack) -> None:
    key = await stack.tenant("acme", ["*"])
    stack.replicas[0].healthy = False
    for _ in range(50):
        r = await stack.chat(key, "SmolLM2-135M-Instruct")
        if r.status_code == 503:
            break
        await asyncio.sleep(0.05)
    assert_error(r, 503, "service_unavailable", "no_healthy_upstream")
    r = await stack.client.get(stack.url + "/readyz")
    assert r.status_code == 503 and r.json()["status"] == "not_ready"


async def test_slow_upstream_is_504(make_stack: StackFactory) -> None:
    s = await make_stack(read_timeout_s=0.3)
    key = await s.tenant("acme", ["*"])
    s.replicas[0].delay_s = 2.0
    assert_error(
        await s.chat(key, "SmolLM2-135M-Instruct"), 504, "timeout_error", "upstream_timeout"
    )


async def test_engine_4xx_passes_through_in_openai_shape(stack: Stack) -> None:
    key = await stack.tenant("acme", ["*"])
    stack.replicas[0].fail_status = 400
    r = await stack.chat(key, "SmolLM2-135M-Instruct")
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "engine failure"
    assert r.headers["x-request-id"].startswith("chatcmpl-")


async def test_admin_requires_admin_key(stack: Stack) -> None:
    key = await stack.tenant("acme", ["*"])
    for headers in ({}, {"Authorization": f"Bearer {key}"}, {"Authorization": "Bearer nope"}):
        r = await stack.client.get(stack.url + "/admin/tenants", headers=headers)
        assert_error(r, 401, "authentication_error")
    r = await stack.admin("POST", "/admin/tenants", {"name": "x", "bogus": 1})
    assert_error(r, 422, "invalid_request_error")


async def test_another_method_on_an_inference_path_is_405(stack: Stack) -> None:
    # Found by the fuzz run: the hot paths are in no router, so FastAPI answered 404.
    for path in ("/v1/chat/completions", "/v1/completions"):
        r = await stack.client.get(stack.url + path)
        assert_error(r, 405, "invalid_request_error")
        assert r.headers["allow"] == "POST"
