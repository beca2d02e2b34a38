"""The core HTTP client (``driftgate.core.client``): request building, answers, the error tree.

An app that maps errors as every service does (``install_error_handlers``) answers
over ``httpx``'s ASGI and mock transports; the admin calls against a real gateway are
in tests/gateway/test_admin.py, the drift calls in tests/rollout/test_cli.py.
"""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.responses import PlainTextResponse, Response

from driftgate.core import admin_api, drift_api
from driftgate.core.client import (
    AsyncClient,
    Call,
    Client,
    ServiceError,
    ServiceRefused,
    ServiceUnreachable,
)
from driftgate.core.errors import Conflict, Unauthorized, install_error_handlers


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.put("/admin/routes/{adapter}")
    async def put_route(adapter: str, request: Request) -> dict[str, Any]:
        if request.headers.get("authorization") != "Bearer k":
            raise Unauthorized("bad admin key")
        body = await request.json()
        return {"adapter": adapter, "weights": body["weights"]}

    @app.get("/admin/adapters")
    async def versions(adapter: str | None = None) -> dict[str, Any]:
        return {"data": [{"adapter": adapter}]}

    @app.delete("/admin/adapters/{adapter}/versions/{version}")
    async def retire(adapter: str, version: int) -> dict[str, Any]:
        raise Conflict(f"{adapter}@{version} is routed", code="version_routed")

    @app.delete("/admin/routes/{adapter}", status_code=204)
    async def delete_route(adapter: str) -> Response:
        return Response(status_code=204)

    @app.get("/text")
    async def text() -> PlainTextResponse:
        return PlainTextResponse("upstream down", status_code=502)

    @app.get("/not-json")
    async def not_json() -> PlainTextResponse:
        return PlainTextResponse("ok")

    return app


async def test_async_calls_and_error_mapping() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with AsyncClient("http://gw/", "k", transport=transport) as gw:
        assert await gw.send(admin_api.set_route("support", {2: 0.25, 1: 0.75})) == {
            2: 0.25,
            1: 0.75,
        }
        assert await gw.send(admin_api.list_versions("a b")) == [{"adapter": "a b"}]
        assert await gw.send(admin_api.delete_route("support")) is None
        with pytest.raises(ServiceRefused) as e:
            await gw.send(admin_api.retire_version("support", 1))
        assert e.value.status == 409 and e.value.code == "version_routed"
        assert e.value.message == "support@1 is routed"
        assert str(e.value) == "HTTP 409: support@1 is routed"
        assert e.value.body["error"]["type"] == "invalid_request_error"
        with pytest.raises(ServiceRefused, match="HTTP 502: upstream down") as e:
            await gw.send(Call("GET", "/text"))
        assert e.value.code is None and e.value.body is None
        with pytest.raises(ServiceRefused, match="answered no JSON") as e:
            await gw.send(Call("GET", "/not-json"))
        assert e.value.status == 200
    async with AsyncClient("http://gw", "wrong", transport=transport) as gw:
        with pytest.raises(ServiceRefused) as e:
            await gw.send(admin_api.set_route("support", {1: 1.0}))
        assert e.value.status == 401 and e.value.code == "invalid_api_key"


def test_sync_client_builds_the_same_requests() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/admin/tenants":
            return httpx.Response(201, json={"tenant": {"name": "acme"}, "api_key": "dg-1"})
        return httpx.Response(200, json={"adapter": "x", "state": "canary"})

    with Client("http://drift:1/", "k", transport=httpx.MockTransport(handler)) as c:
        created = c.send(admin_api.create_tenant("acme", adapters=["support"], burst=3))
        assert created["api_key"] == "dg-1"
        c.send(drift_api.start_rollout("x", "/abs", approved=True))
        c.send(drift_api.rollout_command(7, "promote"))
        c.send(drift_api.drift_status("x"))
    assert [(r.method, str(r.url)) for r in seen] == [
        ("POST", "http://drift:1/admin/tenants"),
        ("POST", "http://drift:1/v1/rollouts"),
        ("POST", "http://drift:1/v1/rollouts/7/promote"),
        ("GET", "http://drift:1/v1/drift/status?adapter=x"),
    ]
    assert all(r.headers["authorization"] == "Bearer k" for r in seen)
    assert b'"burst":3' in seen[0].content and b'"approved":true' in seen[1].content
    with pytest.raises(ValueError, match="unknown rollout command"):
        drift_api.rollout_command(7, "delete")
    with Client("http://drift:1", transport=httpx.MockTransport(handler)) as anonymous:
        anonymous.send(drift_api.drift_status())
    assert "authorization" not in seen[-1].headers


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_no_answer_is_unreachable() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with Client(url, timeout_s=2) as c, pytest.raises(ServiceUnreachable) as e:
        c.send(admin_api.get_routes())
    assert e.value.status is None and url in str(e.value)
    async with AsyncClient(url, timeout_s=2) as a:
        with pytest.raises(ServiceError) as e2:
            await a.send(admin_api.replicas())
    assert isinstance(e2.value, ServiceUnreachable)
