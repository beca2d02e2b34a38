"""The rollout part of the drift service: store, controller task and metrics, built in a lifespan.

In the drift service's lifespan, after its store is open::

    rollouts = await Rollouts.start(RolloutSettings(), metrics.registry, drift_store)
    app.state.rollouts = rollouts            # read by rollout.api
    ...                                      # in the finally:
    await rollouts.stop()

and ``app.include_router(rollout.api.router)``; :func:`rollout.mount.with_rollouts`
does both to a built drift app (``driftgate.deployables.drift_service`` uses it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from drift.store import DriftStore
from driftgate.core.client import AsyncClient
from driftgate.core.loops import LoopMetrics
from rollout.controller import RolloutController
from rollout.metrics import RolloutMetrics
from rollout.settings import RolloutSettings
from rollout.store import RolloutStore

log = logging.getLogger(__name__)


@dataclass
class Rollouts:
    settings: RolloutSettings
    store: RolloutStore
    metrics: RolloutMetrics
    controller: RolloutController | None = None
    admin: AsyncClient | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(
        cls,
        settings: RolloutSettings,
        registry: CollectorRegistry | None = None,
        signals: DriftStore | None = None,
        loops: LoopMetrics | None = None,
    ) -> Rollouts:
        """Create the tables and, when a gateway URL is set, start the controller.

        ``loops``: where the controller's loop reports its last success (the host
        service's; one ``LoopMetrics`` per registry).
        """
        store = RolloutStore(settings.state_url)
        await asyncio.to_thread(store.create_all)
        self = cls(settings, store, RolloutMetrics(registry))
        if settings.enabled and settings.gateway_url:
            key = settings.admin_key.get_secret_value() if settings.admin_key else ""
            self.admin = AsyncClient(settings.gateway_url, key, timeout_s=settings.admin_timeout_s)
            self.controller = RolloutController(
                store,
                self.admin,
                self.metrics,
                policy=settings.policy(),
                signals=signals,
                heartbeat_fresh_s=settings.heartbeat_fresh_s,
                max_loaded=settings.max_loaded,
            )
            self.tasks.append(
                asyncio.create_task(
                    self.controller.run(settings.interval_s, loops), name="driftgate-rollout"
                )
            )
        else:
            log.info("rollout controller off (no DRIFTGATE_GATEWAY_URL or disabled)")
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
