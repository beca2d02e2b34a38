"""Streaming pass-through, request ids, usage, TTFT, and cancellation on client disconnect.

The upstream is the fake vLLM (it paces chunks and reports aborted streams).
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import openai
import orjson
import pytest

from tests.gateway.conftest import BASE, Stack
from tests.gateway.held_stream import hold_last_chunk


def _events(raw: bytes) -> list[bytes]:
    return [e[len(b"data: ") :] for e in raw.split(b"\n\n") if e.startswith(b"data: ")]


async def test_stream_passes_chunks_as_they_come(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await stack.tenant("acme", ["support"])
    v = await stack.version("support")
    fake = stack.replicas[0]
    fake.chunks = 5
    # The fake upstream holds its last content chunk until the client has the first one.
    # A gateway that buffered the stream would deliver nothing before the upstream is done:
    # the hold's bound would run out, the upstream send the rest, and the order be reversed.
    order: list[str] = []
    client_has_first = asyncio.Event()
    hold_last_chunk(monkeypatch, client_has_first, order)
    body = {"model": "support", "stream": True, "messages": [{"role": "user", "content": "a b"}]}
    raw = b""
    async with stack.client.stream(
        "POST",
        stack.url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        rid = r.headers["x-request-id"]
        async for chunk in r.aiter_raw():
            if not raw:
                order.append("client has the first chunk")
                client_has_first.set()
            raw += chunk
    assert order == ["client has the first chunk", "upstream sends the last chunk"]
    events = _events(raw)
    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert len(chunks) == 5  # the usage chunk the gateway asked for is stripped
    assert all(c["id"] == rid and c["model"] == f"support@{v}" for c in chunks)
    assert all("usage" not in c for c in chunks)
    assert fake.requests[-1]["stream_options"] == {"include_usage": True}
    labels = {"tenant": "acme", "adapter": "support", "version": str(v)}
    assert stack.metric("driftgate_gateway_ttft_seconds_count", **labels) == 1
    assert stack.metric("driftgate_gateway_tokens_total", direction="completion", **labels) == 5
    assert (
        stack.metric("driftgate_gateway_requests_total", endpoint="chat", status="200", **labels)
        == 1
    )


async def test_stream_keeps_usage_when_asked(stack: Stack) -> None:
    key = await stack.tenant("acme", ["*"])
    body = {
        "model": BASE,
        "stream": True,
        "prompt": "x y",
        "stream_options": {"include_usage": True},
    }
    r = await stack.client.post(
        stack.url + "/v1/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    chunks = [orjson.loads(e) for e in _events(r.content)[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
    assert all(c["id"].startswith("cmpl-") for c in chunks)


async def test_client_disconnect_cancels_upstream_stream(stack: Stack) -> None:
    key = await stack.tenant("acme", ["*"])
    fake = stack.replicas[0]
    fake.chunks, fake.chunk_delay_s = 50, 0.05
    body = {"model": BASE, "stream": True, "messages": [{"role": "user", "content": "go"}]}
    async with stack.client.stream(
        "POST",
        stack.url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
    ) as r:
        async for _ in r.aiter_raw():
            break  # the client leaves after the first chunk
    for _ in range(100):
        if fake.streams_aborted:
            break
        await asyncio.sleep(0.05)
    assert fake.streams_aborted == 1 and fake.streams_completed == 0
    assert (
        stack.metric("driftgate_gateway_upstream_in_flight", replica=f"127.0.0.1:{fake.port}") == 0
    )
    assert (
        stack.metric(
            "driftgate_gateway_requests_total",
            tenant="acme",
            adapter="base",
            version="base",
            endpoint="chat",
            status="499",
        )
        == 1
    )


async def test_a_client_that_hangs_up_after_done_got_a_whole_answer(stack: Stack) -> None:
    """The SDK closes the connection once it reads ``[DONE]``, which may be before the
    engine ends its stream: that request was answered (200), not abandoned (499)."""
    key = await stack.tenant("acme", ["*"])
    stack.replicas[0].eof_delay_s = 1.0
    body = {"model": BASE, "stream": True, "messages": [{"role": "user", "content": "go"}]}
    async with stack.client.stream(
        "POST",
        stack.url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
    ) as r:
        async for line in r.aiter_lines():
            if line == "data: [DONE]":
                break  # hang up at once, as the openai SDK does
    labels = {"tenant": "acme", "adapter": "base", "version": "base", "endpoint": "chat"}
    for _ in range(100):
        if stack.metric("driftgate_gateway_requests_total", **labels, status="200") == 1:
            break
        await asyncio.sleep(0.05)
    assert stack.metric("driftgate_gateway_requests_total", **labels, status="200") == 1
    assert stack.metric("driftgate_gateway_requests_total", **labels, status="499") == 0


async def test_client_disconnect_cancels_non_streaming_request(stack: Stack) -> None:
    key = await stack.tenant("acme", ["*"])
    fake = stack.replicas[0]
    fake.delay_s = 3.0
    with contextlib.suppress(httpx.TimeoutException):
        await stack.client.post(
            stack.url + "/v1/chat/completions",
            json={"model": BASE, "messages": [{"role": "user", "content": "go"}]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=0.3,
        )
    for _ in range(60):
        if fake.requests_aborted:
            break
        await asyncio.sleep(0.05)
    assert fake.requests_aborted == 1
    for _ in range(20):
        labels = {"tenant": "acme", "adapter": "base", "version": "base", "endpoint": "chat"}
        if stack.metric("driftgate_gateway_requests_total", status="499", **labels):
            break
        await asyncio.sleep(0.05)
    assert stack.metric("driftgate_gateway_requests_total", status="499", **labels) == 1
    assert stack.metric("driftgate_gateway_requests_total", status="500", **labels) == 0


async def test_openai_sdk_sees_the_request_id(stack: Stack) -> None:
    key = await stack.tenant("acme", ["support"])
    v = await stack.version("support")
    client = openai.AsyncOpenAI(base_url=stack.url + "/v1", api_key=key, max_retries=0)
    raw = await client.chat.completions.with_raw_response.create(
        model="support", messages=[{"role": "user", "content": "hello"}]
    )
    resp = raw.parse()
    assert resp.id == raw.headers["x-request-id"] and resp.id.startswith("chatcmpl-")
    assert resp.model == f"support@{v}" and resp.choices[0].message.content
    stream = await client.chat.completions.create(
        model=f"support@{v}", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    ids = {chunk.id async for chunk in stream}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    try:
        await client.chat.completions.create(
            model="billing", messages=[{"role": "user", "content": "x"}]
        )
    except openai.NotFoundError as e:
        assert e.status_code == 404
    else:
        raise AssertionError("expected 404")
    await client.close()
