"""The OpenAI routes: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``.

The hot path: auth from the cached key index, rate limit, body checks, routing
from the cached table, one upstream call (retried on another replica), the
response rewritten with the gateway's request id, then metrics and one request
event on the non-blocking queue. No database access per request.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from driftgate.core.errors import DriftgateError, error_body
from gateway.answer_confidence import ConfidenceTally, answer_confidence, ask_for_logprobs
from gateway.asgi_io import (
    Headers,
    auth_and_length,
    check_declared_length,
    read_body,
    send_json,
)
from gateway.call import Call
from gateway.openai_body import (
    Endpoint,
    apply_max_tokens,
    apply_multiplier_limits,
    completion_summary,
    parse_request,
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
_VERSION = VERSION_HEADER.encode()
#: How long an engine call runs before a task starts watching for the client leaving.
_WATCH_AFTER_S = 0.05

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


def _engine_error_body(res: UpstreamResponse) -> bytes:
    """A 4xx answer of the engine, passed on in the OpenAI shape."""
    try:
        data = orjson.loads(res.body)
    except orjson.JSONDecodeError:
        data = None
    if not (isinstance(data, dict) and isinstance(data.get("error"), dict)):
        msg = data.get("message") if isinstance(data, dict) else None
        text = str(msg) if msg else res.body[:500].decode("utf-8", "replace")
        data = error_body(text or "request refused by the engine", "invalid_request_error")
    return orjson.dumps(data)


def _error_headers(exc: DriftgateError, request_id: str) -> Headers:
    out = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
    out.append((b"x-request-id", request_id.encode()))
    return out


class _DisconnectWatch:
    """Cancels the request's task when the client goes away mid-request.

    The watcher task (the only reader of ``receive`` once the body is read) starts
    only when the engine call outlasts ``after_s``: a task per request was a visible
    share of the hot path's CPU, and a request answered within milliseconds has
    nothing worth aborting.
    """

    __slots__ = ("_main", "_receive", "_task", "_timer", "gone")

    def __init__(self, receive: Receive, after_s: float) -> None:
        main = asyncio.current_task()
        assert main is not None
        self._main = main
        self._receive = receive
        self._task: asyncio.Task[None] | None = None
        self.gone = False
        self._timer = asyncio.get_running_loop().call_later(after_s, self._start)

    def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        self._main.cancel()  # aborts the engine request (its connection is closed)

    def stop(self) -> None:
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()


async def serve(scope: Scope, receive: Receive, send: Send, endpoint: Endpoint) -> None:
    """Serve one ``/v1/chat/completions`` or ``/v1/completions`` request (see ``hotpath``)."""
    gw: Gateway = scope["state"]["gw"]
    call = Call(gw, endpoint)
    try:
        auth, length = auth_and_length(scope)
        # The size limit comes before auth on every route (docs/SECURITY.md).
        check_declared_length(length, gw.settings.max_body_bytes)
        tenant = gw.keys.tenant_for(auth)
        call.authenticated(tenant)
        call.lease = await gw.limits.admit(tenant, call.request_id, call.t0)
        payload = call.payload = parse_request(
            await read_body(receive, length, gw.settings.max_body_bytes), endpoint
        )
        target = call.target = gw.table.resolve(tenant, payload["model"], random.random())
        apply_max_tokens(payload, tenant.max_tokens)
        s = gw.settings
        apply_multiplier_limits(
            payload,
            max_n=s.max_n,
            max_best_of=s.max_best_of,
            max_prompts=s.max_prompts,
            max_total=s.max_request_tokens,
        )
        payload["model"] = target.served_name
        call.stream = payload.get("stream") is True
        if endpoint == "chat" and s.answer_confidence:
            call.hides_logprobs = ask_for_logprobs(payload)
        if call.stream:
            response, opened = await _streaming(call, payload, target)
        else:
            status, body, headers = await _complete(receive, call, payload, target)
    except DriftgateError as exc:
        call.finish(exc.status_code)
        body = orjson.dumps(exc.body())
        await send_json(send, exc.status_code, body, _error_headers(exc, call.request_id))
        return
    except BaseException:
        call.release_slot()  # an unexpected failure or a shutdown must not keep the slot
        raise
    if call.stream:
        try:
            await response(scope, receive, send)
        finally:
            # A client gone before the stream started leaves _relay unrun: free the engine
            # connection slot and the tenant's concurrency slot here.
            if opened is not None:
                opened.close()
            call.release_slot()
    else:
        await send_json(send, status, body, headers)


async def _complete(
    receive: Receive, call: Call, payload: dict[str, Any], target: Target
) -> tuple[int, bytes, Headers]:
    gw = call.gw
    tenant = call.tenant
    assert tenant is not None
    rid = call.request_id.encode()
    in_flight = gw.metrics.in_flight_cell(tenant.name, target.label_adapter)
    in_flight[0] += 1
    gw.served_in_flight[target.served_name] += 1
    watch = _DisconnectWatch(receive, _WATCH_AFTER_S)
    try:
        res = await gw.upstream.request(
            _PATHS[call.endpoint],
            orjson.dumps(payload),
            target.served_name if target.adapter else None,
        )
    except asyncio.CancelledError:
        if not watch.gone:
            raise  # server shutdown, not the client
        asyncio.current_task().uncancel()  # type: ignore[union-attr]
        call.finish(CLIENT_CLOSED)
        return CLIENT_CLOSED, b"", [(b"x-request-id", rid)]
    finally:
        watch.stop()
        in_flight[0] -= 1
        gw.served_in_flight[target.served_name] -= 1
    assert isinstance(res, UpstreamResponse)
    if res.status != 200:
        call.finish(res.status, replica=res.replica)
        return res.status, _engine_error_body(res), [(b"x-request-id", rid)]
    data = orjson.loads(res.body)
    data["id"] = call.request_id
    data["model"] = target.public_name
    prompt_tokens, completion_tokens = usage_of(data)
    text, reason = completion_summary(data, call.endpoint)
    confidence: ConfidenceTally | None = None
    if call.endpoint == "chat":
        confidence = answer_confidence(data, call.hides_logprobs)
    call.finish(
        200,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        completion=text,
        finish_reason=reason,
        replica=res.replica,
        confidence=confidence,
    )
    return (
        200,
        orjson.dumps(data),
        [(b"x-request-id", rid), (_VERSION, target.public_name.encode())],
    )


async def _streaming(
    call: Call, payload: dict[str, Any], target: Target
) -> tuple[Response, UpstreamStream | None]:
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
        error = Response(
            _engine_error_body(res),
            status_code=res.status,
            media_type="application/json",
            headers={"x-request-id": call.request_id},
        )
        return error, None
    rewriter = StreamRewriter(
        call.request_id, target.public_name, call.endpoint, keep_usage, call.hides_logprobs
    )
    relay = StreamingResponse(
        _relay(call, res, rewriter, target),
        media_type="text/event-stream",
        headers={
            **_SSE_HEADERS,
            "x-request-id": call.request_id,
            VERSION_HEADER: target.public_name,
        },
    )
    return relay, res


async def _relay(
    call: Call, stream: UpstreamStream, rw: StreamRewriter, target: Target
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
                    if rw.done:
                        # A client that read [DONE] may hang up before the engine's EOF:
                        # it got the whole answer, not a 499.
                        status = 200
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
            confidence=rw.confidence,
        )


def _sse_error(message: str, error_type: str) -> bytes:
    return b"data: " + orjson.dumps(error_body(message, error_type)) + b"\n\ndata: [DONE]\n\n"


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
