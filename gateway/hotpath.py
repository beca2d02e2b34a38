"""Pure-ASGI fast path for the two inference routes.

``POST /v1/chat/completions`` and ``POST /v1/completions`` skip FastAPI's
routing, dependency solving and exception middleware (more than half of the
per-request CPU in a profile) and go straight to :func:`gateway.proxy.proxy`,
which answers every expected error itself. Anything unexpected still reaches
the outer ``ServerErrorMiddleware`` and its OpenAI-shaped 500. Safe for
streaming: the response object is an ordinary Starlette ASGI response.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.openai_body import Endpoint
from gateway.proxy import proxy

_ROUTES: dict[str, Endpoint] = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
}


class HotPathMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = _ROUTES.get(scope["path"])
            if endpoint is not None:
                response = await proxy(Request(scope, receive), endpoint)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
