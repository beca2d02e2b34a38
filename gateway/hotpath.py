"""The gateway's application class: the two inference routes answered before FastAPI.

``POST /v1/chat/completions`` and ``POST /v1/completions`` skip FastAPI's routing,
dependency solving and middleware stack (more than half of the per-request CPU in a
profile) and go straight to :func:`gateway.proxy.serve`, which answers every expected
error itself. An unexpected one is answered with the OpenAI-shaped 500 and re-raised,
as Starlette's ``ServerErrorMiddleware`` does, so the server logs it whole.
Everything else (admin, feedback, models, metrics) is ordinary FastAPI.
"""

from __future__ import annotations

import contextlib

import orjson
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from driftgate.core.errors import error_body
from gateway.asgi_io import send_json
from gateway.openai_body import Endpoint
from gateway.proxy import serve

_ROUTES: dict[str, Endpoint] = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
}
_INTERNAL = orjson.dumps(error_body("internal error", "server_error"))
#: Another method on an inference path: 405, as FastAPI answers on its own routes (the
#: paths are in no router, so FastAPI alone would answer 404).
_NOT_ALLOWED = orjson.dumps(error_body("Method Not Allowed", "invalid_request_error"))


class GatewayApp(FastAPI):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = _ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is not None:
            if scope["method"] != "POST":
                await send_json(send, 405, _NOT_ALLOWED, [(b"allow", b"POST")])
                return
            scope["app"] = self
            try:
                await serve(scope, receive, send, endpoint)
            except Exception:
                # A RuntimeError here means the response had started: nothing to add.
                with contextlib.suppress(RuntimeError):
                    await send_json(send, 500, _INTERNAL, [])
                raise
            return
        await super().__call__(scope, receive, send)
