"""The rollout part of the drift service: store, controller task and metrics, built in a lifespan.

Wiring (``drift/app.py``): in the lifespan, after the store is created::

    rollouts = await Rollouts.start(RolloutSettings(), metrics.registry, store.engine)
    app.state.rollouts = rollouts            # read by retrain.rollout.api
    ...                                      # in the finally:
    await rollouts.stop()

and ``app.include_router(retrain.rollout.api.router)``; :func:`with_rollouts` does
both to a built drift app (``drift.app.create_app_from_env`` uses it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from gateway.admin_client import AdminClient
from retrain.rollout.controller import RolloutController
from retrain.rollout.metrics import RolloutMetrics
from retrain.rollout.settings import RolloutSettings
from retrain.rollout.store import RolloutStore

log = logging.getLogger(__name__)


@dataclass
class Rollouts:
    settings: RolloutSettings
    store: RolloutStore
    metrics: RolloutMetrics
    controller: RolloutController | None = None
    admin: AdminClient | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(
        cls,
        settings: RolloutSettings,
        registry: CollectorRegistry | None = None,
        signals: Engine | None = None,
    ) -> Rollouts:
        """Create the tables and, when a gateway URL is set, start the controller."""
        store = RolloutStore(settings.state_url)
        await asyncio.to_thread(store.create_all)
        from gateway.heartbeat import create_tables

        await asyncio.to_thread(create_tables, store.engine)
        self = cls(settings, store, RolloutMetrics(registry))
        if settings.rollout_enabled and settings.gateway_url:
            key = settings.admin_key.get_secret_value() if settings.admin_key else ""
            self.admin = AdminClient(settings.gateway_url, key, timeout_s=settings.admin_timeout_s)
            self.controller = RolloutController(
                store,
                self.admin,
                self.metrics,
                policy=settings.policy(),
                signals=signals,
                heartbeat_fresh_s=settings.rollout_heartbeat_fresh_s,
                max_loaded=settings.rollout_max_loaded,
            )
            self.tasks.append(
                asyncio.create_task(
                    self.controller.run(settings.rollout_interval_s), name="driftgate-rollout"
                )
            )
        else:
            log.info("rollout controller off (no DRIFTGATE_DRIFT_GATEWAY_URL or disabled)")
        return self

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self.tasks = []
        if self.admin is not None:
            await self.admin.close()
        await asyncio.to_thread(self.store.dispose)


def with_rollouts(app: FastAPI, settings: RolloutSettings) -> FastAPI:
    """Add the rollout routes and controller to a drift service app built by ``create_app``."""
    from retrain.rollout import api

    app.include_router(api.router)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            drift = a.state.drift.service
            rollouts = await Rollouts.start(settings, drift.metrics.registry, drift.store.engine)
            a.state.rollouts = rollouts
            try:
                yield state
            finally:
                await rollouts.stop()

    app.router.lifespan_context = lifespan
    return app
