"""A request body size limit that runs before routing, auth and parsing (pure ASGI).

FastAPI reads (and JSON-decodes) a route's body before its dependencies run, so a
limit inside a route or a dependency comes after the body was parsed; and a route that
reads its own body checks auth first. Installed as the outermost user middleware, this
one answers 413 (OpenAI error shape) before anything else looks at the request: at once
when ``Content-Length`` declares too much, else as soon as the streamed body passes the
limit. A body within the limit is buffered and replayed to the app unchanged.

Usage::

    app.add_middleware(BodyLimit, limit=1_000_000, prefixes={"/admin/": 64 * 1024})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftgate.core.errors import PayloadTooLarge, send_error

#: Methods whose bodies are limited (the others carry none we read).
_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (``prefixes``: a path prefix's own limit).

    ``only``: when given, the middleware applies to paths under these prefixes only (a
    part mounted on another service's app limits its own routes). ``on_reject`` is
    called once per refusal (a metric).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        prefixes: Mapping[str, int] | None = None,
        only: tuple[str, ...] | None = None,
        on_reject: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        # Longest prefix first, so "/v1/rollouts/" wins over "/v1/".
        self.prefixes = sorted((prefixes or {}).items(), key=lambda kv: -len(kv[0]))
        self.only = only
        self.on_reject = on_reject

    def limit_for(self, path: str) -> int | None:
        """The limit of ``path`` in bytes; None when this middleware leaves it alone."""
        if self.only is not None and not path.startswith(self.only):
            return None
        for prefix, limit in self.prefixes:
            if path.startswith(prefix):
                return limit
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nobody to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, send: Send, limit: int) -> None:
        # The connection stays open: the server discards the rest of the body (closing
        # it now would reset a client still sending, before it reads the answer).
        if self.on_reject is not None:
            self.on_reject()
        await send_error(send, PayloadTooLarge(f"request body exceeds {limit} bytes"))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body over once, then defers to the server's
    (which then waits for the disconnect, as streaming responses expect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
