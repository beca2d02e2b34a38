"""The OpenAI routes: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``.

The hot path: auth from the cached key index, rate limit, body checks, routing
from the cached table, one upstream call (retried on another replica), the
response rewritten with the gateway's request id, then metrics and one request
event on the non-blocking queue. No database access per request.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive

from driftgate.errors import DriftgateError, RateLimited, error_body
from driftgate.state.models import TenantInfo
from gateway.openai_body import (
    Endpoint,
    apply_max_tokens,
    completion_summary,
    parse_request,
    prompt_text,
    read_body,
    usage_of,
)
from gateway.routing import Target
from gateway.runtime import Gateway
from gateway.sse import StreamRewriter
from gateway.upstream import UpstreamResponse, UpstreamStream

#: nginx's code for "client closed request", used in metrics and events.
CLIENT_CLOSED = 499
_PATHS: dict[Endpoint, str] = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
#: Which version served the response (``support@3``, or the base model's name).
VERSION_HEADER = "x-driftgate-version"

router = APIRouter()


def error_response(exc: DriftgateError, request_id: str | None = None) -> Response:
    headers = dict(exc.headers)
    if request_id:
        headers["x-request-id"] = request_id
    return Response(
        orjson.dumps(exc.body()),
        status_code=exc.status_code,
        media_type="application/json",
        headers=headers,
    )


def _engine_error(res: UpstreamResponse, request_id: str) -> Response:
    """A 4xx answer of the engine, passed on in the OpenAI shape."""
    try:
        data = orjson.loads(res.body)
    except orjson.JSONDecodeError:
        data = None
    if not (isinstance(data, dict) and isinstance(data.get("error"), dict)):
        msg = data.get("message") if isinstance(data, dict) else None
        text = str(msg) if msg else res.body[:500].decode("utf-8", "replace")
        data = error_body(text or "request refused by the engine", "invalid_request_error")
    return Response(
        orjson.dumps(data),
        status_code=res.status,
        media_type="application/json",
        headers={"x-request-id": request_id},
    )


class _Call:
    """Book-keeping of one request: labels, timings, and the closing metrics and event."""

    __slots__ = (
        "endpoint",
        "gw",
        "payload",
        "request_id",
        "stream",
        "t0",
        "target",
        "tenant",
        "ts",
    )

    def __init__(self, gw: Gateway, endpoint: Endpoint) -> None:
        self.gw = gw
        self.endpoint: Endpoint = endpoint
        self.t0 = time.perf_counter()
        self.ts = time.time()
        prefix = "chatcmpl-" if endpoint == "chat" else "cmpl-"
        self.request_id = prefix + os.urandom(16).hex()
        self.tenant: TenantInfo | None = None
        self.target: Target | None = None
        self.payload: dict[str, Any] | None = None
        self.stream = False

    def finish(
        self,
        status: int,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        completion: str | None = None,
        finish_reason: str | None = None,
        ttft_s: float | None = None,
        replica: str | None = None,
    ) -> None:
        elapsed = time.perf_counter() - self.t0
        m = self.gw.metrics
        tenant = self.tenant.name if self.tenant else "-"
        target = self.target
        adapter = target.label_adapter if target else "-"
        version = target.label_version if target else "-"
        m.c_requests(tenant, adapter, version, self.endpoint, str(status)).inc()
        m.c_duration(tenant, adapter, version, self.endpoint).observe(elapsed)
        if prompt_tokens:
            m.c_tokens(tenant, adapter, version, "prompt").inc(prompt_tokens)
        if completion_tokens:
            m.c_tokens(tenant, adapter, version, "completion").inc(completion_tokens)
        if ttft_s is not None:
            m.c_ttft(tenant, adapter, version).observe(ttft_s)
        if self.tenant is None or not self.gw.sink.enabled:
            return  # unauthenticated requests produce no event
        include_text = self.gw.settings.event_include_text
        self.gw.sink.emit(
            {  # exactly the fields of driftgate.events.RequestEvent (see event_sink)
                "kind": "request",
                "event_id": os.urandom(16).hex(),
                "request_id": self.request_id,
                "ts": self.ts,
                "tenant": self.tenant.name,
                "adapter": target.adapter if target else None,
                "version": target.version if target else None,
                "endpoint": self.endpoint,
                "stream": self.stream,
                "prompt_text": (
                    prompt_text(self.payload, self.endpoint)
                    if include_text and self.payload is not None
                    else None
                ),
                "completion_text": completion if include_text else None,
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "latency_ms": elapsed * 1000.0,
                "ttft_ms": ttft_s * 1000.0 if ttft_s is not None else None,
                "finish_reason": finish_reason,
                "status_code": status,
                "replica": replica,
            }
        )


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _proxy(request: Request, endpoint: Endpoint) -> Response:
    gw: Gateway = request.state.gw
    call = _Call(gw, endpoint)
    try:
        tenant = call.tenant = gw.keys.tenant_for(request.headers.get("authorization"))
        wait = gw.limiter.acquire(
            tenant.name, rate=tenant.rate_limit_rps, burst=tenant.burst, now=call.t0
        )
        if wait:
            raise RateLimited(
                f"rate limit of {tenant.rate_limit_rps:g} requests/s exceeded",
                retry_after_s=wait,
            )
        payload = call.payload = parse_request(
            await read_body(request, gw.settings.max_body_bytes), endpoint
        )
        target = call.target = gw.table.resolve(tenant, payload["model"], random.random())
        apply_max_tokens(payload, tenant.max_tokens)
        payload["model"] = target.served_name
        call.stream = payload.get("stream") is True
        if call.stream:
            return await _streaming(request, call, payload, target)
        return await _complete(request, call, payload, target)
    except DriftgateError as exc:
        call.finish(exc.status_code)
        return error_response(exc, call.request_id)


async def _complete(
    request: Request, call: _Call, payload: dict[str, Any], target: Target
) -> Response:
    gw = call.gw
    tenant = call.tenant
    assert tenant is not None
    main = asyncio.current_task()
    assert main is not None
    gone = False

    async def watch() -> None:
        # The only reader of ``receive`` once the body is read: it returns on disconnect.
        nonlocal gone
        await _until_disconnect(request.receive)
        gone = True
        main.cancel()  # aborts the engine request below (its connection is closed)

    in_flight = gw.metrics.in_flight_cell(tenant.name, target.label_adapter)
    in_flight[0] += 1
    gw.served_in_flight[target.served_name] += 1
    watcher = asyncio.create_task(watch())
    try:
        res = await gw.upstream.request(
            _PATHS[call.endpoint],
            orjson.dumps(payload),
            target.served_name if target.adapter else None,
        )
    except asyncio.CancelledError:
        if not gone:
            raise  # server shutdown, not the client
        main.uncancel()
        call.finish(CLIENT_CLOSED)
        return Response(status_code=CLIENT_CLOSED)
    finally:
        watcher.cancel()
        in_flight[0] -= 1
        gw.served_in_flight[target.served_name] -= 1
    assert isinstance(res, UpstreamResponse)
    if res.status != 200:
        call.finish(res.status, replica=res.replica)
        return _engine_error(res, call.request_id)
    data = orjson.loads(res.body)
    data["id"] = call.request_id
    data["model"] = target.public_name
    prompt_tokens, completion_tokens = usage_of(data)
    text, reason = completion_summary(data, call.endpoint)
    call.finish(
        200,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        completion=text,
        finish_reason=reason,
        replica=res.replica,
    )
    return _JsonOk(orjson.dumps(data), call.request_id, target.public_name)


class _JsonOk(Response):
    """A 200 JSON response with the request id and the version that served it
    (``x-driftgate-version: support@3``), headers built without re-parsing."""

    media_type = "application/json"

    def __init__(self, body: bytes, request_id: str, served_by: str) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            (b"x-request-id", request_id.encode()),
            (VERSION_HEADER.encode(), served_by.encode()),
        ]


async def _streaming(
    request: Request, call: _Call, payload: dict[str, Any], target: Target
) -> Response:
    gw = call.gw
    options = payload.get("stream_options")
    keep_usage = isinstance(options, dict) and options.get("include_usage") is True
    payload["stream_options"] = {**(options or {}), "include_usage": True}
    res = await gw.upstream.request(
        _PATHS[call.endpoint],
        orjson.dumps(payload),
        target.served_name if target.adapter else None,
        stream=True,
    )
    if isinstance(res, UpstreamResponse):
        call.finish(res.status, replica=res.replica)
        return _engine_error(res, call.request_id)
    rewriter = StreamRewriter(call.request_id, target.public_name, call.endpoint, keep_usage)
    return StreamingResponse(
        _relay(call, res, rewriter, target),
        media_type="text/event-stream",
        headers={
            **_SSE_HEADERS,
            "x-request-id": call.request_id,
            VERSION_HEADER: target.public_name,
        },
    )


async def _relay(
    call: _Call, stream: UpstreamStream, rw: StreamRewriter, target: Target
) -> AsyncIterator[bytes]:
    gw = call.gw
    assert call.tenant is not None
    in_flight = gw.metrics.in_flight_cell(call.tenant.name, target.label_adapter)
    in_flight[0] += 1
    gw.served_in_flight[target.served_name] += 1
    status = CLIENT_CLOSED
    ttft: float | None = None
    buf: list[bytes] = []
    try:
        try:
            async for line in stream.response.content:
                if line.strip():
                    buf.append(line)
                    continue
                out = rw.feed(b"".join(buf)) if buf else None
                buf = []
                if out is not None:
                    if ttft is None and rw.saw_content:
                        ttft = time.perf_counter() - call.t0
                    yield out
            if buf and (out := rw.feed(b"".join(buf))) is not None:
                yield out
            status = 200
        except TimeoutError:
            status = 504
            yield _sse_error("the engine stopped sending in time", "timeout_error")
        except (aiohttp.ClientError, OSError) as e:
            status = 502
            yield _sse_error(f"the engine connection failed: {type(e).__name__}", "upstream_error")
    finally:
        stream.close()
        in_flight[0] -= 1
        gw.served_in_flight[target.served_name] -= 1
        call.finish(
            status,
            prompt_tokens=rw.prompt_tokens,
            completion_tokens=rw.completion_tokens,
            completion=rw.text,
            finish_reason=rw.finish_reason,
            ttft_s=ttft,
            replica=stream.replica,
        )


def _sse_error(message: str, error_type: str) -> bytes:
    return b"data: " + orjson.dumps(error_body(message, error_type)) + b"\n\ndata: [DONE]\n\n"


async def proxy(request: Request, endpoint: Endpoint) -> Response:
    """Serve one ``/v1/chat/completions`` or ``/v1/completions`` request (see ``hotpath``)."""
    return await _proxy(request, endpoint)


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    gw: Gateway = request.state.gw
    try:
        tenant = gw.keys.tenant_for(request.headers.get("authorization"))
    except DriftgateError as exc:
        return error_response(exc)
    created = int(time.time())
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "driftgate"}
        for name in gw.table.models_for(tenant)
    ]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")
