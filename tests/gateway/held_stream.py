"""Hold the fake vLLM's last streamed content chunk until the test lets it go.

Tests that need a stream still open (or a stream's first chunk delivered before its
last is sent) order the events instead of pacing chunks by time. The hold patches
aiohttp's ``StreamResponse.write`` for one test: in these tests only the fake vLLM
serves with aiohttp (the gateway and the drift service run on uvicorn).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import httpx
import pytest
from aiohttp import web

if TYPE_CHECKING:
    from tests.gateway.conftest import Stack

#: Longest hold: reached only when a test fails (the release never comes).
HOLD_BOUND_S = 10.0
#: How the fake vLLM's last content chunk ends its choice (orjson writes no spaces).
_LAST_CHUNK = b'"finish_reason":"stop"'


def hold_last_chunk(
    monkeypatch: pytest.MonkeyPatch, release: asyncio.Event, order: list[str] | None = None
) -> None:
    """Streams wait for ``release`` before the last content chunk; ``order`` logs the send."""
    write = web.StreamResponse.write

    async def held_write(resp: web.StreamResponse, data: bytes) -> None:
        if _LAST_CHUNK in data:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), HOLD_BOUND_S)
            if order is not None:
                order.append("upstream sends the last chunk")
        await write(resp, data)

    monkeypatch.setattr(web.StreamResponse, "write", held_write)


async def streamed_chat(
    client: httpx.AsyncClient, url: str, key: str, model: str, started: asyncio.Event | None = None
) -> int:
    """One streaming chat to the gateway at ``url``, read to its end (it lasts as long as
    a hold keeps it open); ``started`` is set at its first chunk. Returns its status."""
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "a"}]}
    headers = {"Authorization": f"Bearer {key}"}
    async with client.stream("POST", url + "/v1/chat/completions", json=body, headers=headers) as r:
        async for _ in r.aiter_raw():
            if started is not None:
                started.set()
        return r.status_code


async def stream_outlives_its_lease(
    streaming_via: Stack, other: Stack, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream through ``streaming_via`` held past 3 lease ttls; ``other`` is refused the
    tenant's one slot meanwhile and gets it after the stream ends."""
    key = await streaming_via.tenant("acme", [], max_concurrent=1)
    if other is not streaming_via:
        assert (await other.admin("POST", "/admin/refresh")).status_code == 200
    release = asyncio.Event()
    hold_last_chunk(monkeypatch, release)
    first_chunk = asyncio.Event()
    streaming = asyncio.create_task(
        streamed_chat(streaming_via.client, streaming_via.url, key, model, first_chunk)
    )
    await asyncio.wait_for(first_chunk.wait(), 10)
    ttl = streaming_via.settings.request_timeout_s
    await asyncio.sleep(3 * ttl)  # without renewal the slot would have expired twice over
    r = await other.chat(key, model)
    assert r.status_code == 429 and "1 concurrent" in r.json()["error"]["message"]
    release.set()
    assert await streaming == 200
    deadline = time.monotonic() + HOLD_BOUND_S  # a shared store frees the slot in the background
    while (r := await other.chat(key, model)).status_code == 429:
        assert time.monotonic() < deadline, "the stream's slot never came back"
        await asyncio.sleep(0.05)
    assert r.status_code == 200
