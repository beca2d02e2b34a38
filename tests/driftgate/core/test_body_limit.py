"""The body size limit middleware: refuses before the app runs, replays what it allows."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from driftgate.core.body_limit import BodyLimit

ERROR = {
    "message": "request body exceeds 100 bytes",
    "type": "invalid_request_error",
    "param": None,
    "code": "request_too_large",
}


def _app(seen: list[bytes], rejected: list[int]) -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        seen.append(body)
        return JSONResponse({"size": len(body)})

    app = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST", "PUT"])])
    app.add_middleware(
        BodyLimit,
        limit=100,
        prefixes={"/admin/": 10},
        on_reject=lambda: rejected.append(1),
    )
    return app


async def _chunks(n: int, size: int) -> AsyncIterator[bytes]:
    for _ in range(n):
        yield b"x" * size


async def test_declared_and_streamed_bodies_over_the_limit_never_reach_the_app() -> None:
    seen: list[bytes] = []
    rejected: list[int] = []
    transport = httpx.ASGITransport(app=_app(seen, rejected))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post("/v1/x", content=b"y" * 101)
        assert r.status_code == 413 and r.json() == {"error": ERROR}
        r = await client.post("/v1/x", content=_chunks(5, 30))  # chunked: no Content-Length
        assert r.status_code == 413 and r.json() == {"error": ERROR}
        assert seen == [] and len(rejected) == 2


async def test_bodies_within_the_limit_are_replayed_unchanged() -> None:
    seen: list[bytes] = []
    transport = httpx.ASGITransport(app=_app(seen, []))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.post("/v1/x", content=b"y" * 100)).json() == {"size": 100}
        assert (await client.post("/v1/x", content=_chunks(3, 30))).json() == {"size": 90}
        assert (await client.get("/v1/x")).json() == {"size": 0}
    assert seen == [b"y" * 100, b"x" * 90, b""]


async def test_a_prefix_has_its_own_limit_and_only_limits_some_paths() -> None:
    seen: list[bytes] = []
    transport = httpx.ASGITransport(app=_app(seen, []))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.put("/admin/tenants", content=b"y" * 11)
        assert r.status_code == 413 and "10 bytes" in r.json()["error"]["message"]
        assert (await client.post("/v1/x", content=b"y" * 11)).status_code == 200
    limit = BodyLimit(_app([], []), limit=5, only=("/v1/rollouts",))
    assert limit.limit_for("/v1/rollouts/3/approve") == 5
    assert limit.limit_for("/v1/events") is None
