"""A key check that runs before FastAPI reads the body (pure ASGI).

FastAPI parses a route's JSON body before its dependencies run, so a route whose
dependency checks the admin key answers a malformed body 422 to a caller without
any key (found by the fuzz run, tests/security/test_fuzz_openapi.py). Installed
inside the body limit (which comes first on every route), this middleware answers
401 in the OpenAI shape to every request under its prefixes that does not carry the
key; the routes keep their own check.

Usage::

    app.add_middleware(KeyGuard, prefixes=("/admin/",), key=admin_key, what="admin")
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from driftgate.core.credentials import check_key
from driftgate.core.errors import Unauthorized, send_error


class KeyGuard:
    """401 for requests under ``prefixes`` without ``Authorization: Bearer <key>``.

    ``key`` None or empty refuses every such request, as :func:`check_key` does.
    """

    def __init__(
        self, app: ASGIApp, *, prefixes: tuple[str, ...], key: str | None, what: str
    ) -> None:
        self.app = app
        self.prefixes = prefixes
        self.key = key
        self.what = what

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefixes):
            try:
                check_key(_authorization(scope), self.key, what=self.what)
            except Unauthorized as exc:
                await send_error(send, exc)
                return
        await self.app(scope, receive, send)


def _authorization(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return str(value.decode("latin-1"))
    return None
