"""Mount the rollouts on a built drift service app: routes, and the controller in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from driftgate.core.body_limit import BodyLimit
from driftgate.core.credentials import secret_value
from driftgate.core.key_guard import KeyGuard
from rollout import api
from rollout.service import Rollouts
from rollout.settings import RolloutSettings


def with_rollouts(app: FastAPI, settings: RolloutSettings) -> FastAPI:
    """Add the rollout routes and controller to a drift service app built by ``create_app``."""
    app.include_router(api.router)
    # Inside the limit below, before FastAPI parses a route's body (driftgate/core/key_guard.py).
    admin_key = secret_value(settings.admin_key)
    app.add_middleware(KeyGuard, prefixes=(api.router.prefix,), key=admin_key, what="admin")
    # Its own limit, outside the drift app's: runs before the admin key check and parsing.
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, only=(api.router.prefix,))
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            drift = a.state.drift.service
            rollouts = await Rollouts.start(
                settings, drift.metrics.registry, drift.store, loops=drift.metrics.loops
            )
            a.state.rollouts = rollouts
            try:
                yield state
            finally:
                await rollouts.stop()

    app.router.lifespan_context = lifespan
    return app
