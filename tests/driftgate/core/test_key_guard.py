"""The key guard: 401 in the OpenAI shape before the app reads anything under its prefixes."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from driftgate.core.key_guard import KeyGuard


def _client(key: str | None, reached: list[str]) -> httpx.AsyncClient:
    async def echo(request: Request) -> JSONResponse:
        reached.append(request.url.path)
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])])
    app.add_middleware(KeyGuard, prefixes=("/admin/",), key=key, what="admin")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer guess"}, {"Authorization": "Basic s3cret"}],
    ids=["none", "guess", "not-bearer"],
)
async def test_requests_under_the_prefix_without_the_key_never_reach_the_app(
    headers: dict[str, str],
) -> None:
    reached: list[str] = []
    async with _client("s3cret", reached) as client:
        r = await client.post("/admin/tenants", content=b"{not json", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert reached == []


async def test_the_key_and_other_paths_pass_and_no_key_configured_refuses_all() -> None:
    reached: list[str] = []
    async with _client("s3cret", reached) as client:
        ok = await client.get("/admin/x", headers={"Authorization": "Bearer s3cret"})
        open_path = await client.get("/v1/models")
    assert ok.status_code == 200 and open_path.status_code == 200
    assert reached == ["/admin/x", "/v1/models"]
    async with _client(None, reached) as client:
        r = await client.get("/admin/x", headers={"Authorization": "Bearer s3cret"})
    assert r.status_code == 401 and "no admin key" in r.json()["error"]["message"]
