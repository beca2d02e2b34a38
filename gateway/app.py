"""``create_app(settings)``: the gateway's FastAPI application.

Deployed by ``uvicorn --factory driftgate.deployables.gateway:app``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from driftgate.core.body_limit import BodyLimit
from driftgate.core.credentials import secret_value
from driftgate.core.errors import install_error_handlers
from driftgate.core.key_guard import KeyGuard
from gateway import admin, feedback, proxy, review
from gateway.heartbeat import Heartbeat
from gateway.hotpath import GatewayApp
from gateway.metrics import GatewayMetrics
from gateway.runtime import Gateway
from gateway.settings import GatewaySettings


def create_app(
    settings: GatewaySettings,
    metrics: GatewayMetrics | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """``clock`` (Unix seconds) decides when API keys expire; tests pass their own."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        gw = Gateway(settings, metrics, clock=clock)
        await gw.start()
        beat = Heartbeat(gw, interval_s=settings.heartbeat_interval_s)
        if settings.heartbeat_interval_s > 0:
            beat.start()
        try:
            yield {"gw": gw}
        finally:
            await beat.stop()
            await gw.stop()

    app = GatewayApp(
        title="driftgate gateway",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    install_error_handlers(app)
    # Inside the body limit, before FastAPI parses an admin body (driftgate/core/key_guard.py).
    app.add_middleware(
        KeyGuard, prefixes=("/admin/",), key=secret_value(settings.admin_key), what="admin"
    )
    # Before any route reads, parses or authenticates (the inference routes check theirs
    # in gateway.proxy.serve, before auth too).
    app.add_middleware(
        BodyLimit,
        limit=settings.max_body_bytes,
        prefixes={"/admin/": settings.admin_max_body_bytes},
    )
    app.include_router(proxy.router)
    app.include_router(feedback.router)
    app.include_router(review.router)
    app.include_router(admin.router)

    @app.get("/metrics")
    async def metrics_endpoint(request: Request) -> Response:
        gw: Gateway = request.state.gw
        return Response(generate_latest(gw.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/readyz")
    async def readyz(request: Request) -> Response:
        gw: Gateway = request.state.gw
        healthy = len(gw.pool.healthy())
        ready = gw.state_loaded and healthy > 0
        body = {
            "status": "ready" if ready else "not_ready",
            "state_loaded": gw.state_loaded,
            "replicas_healthy": healthy,
            "replicas": len(gw.pool.replicas),
        }
        return Response(
            orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json"
        )

    return app
