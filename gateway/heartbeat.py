"""Gateway heartbeats: what routes each gateway replica has applied and what is in flight.

Every gateway replica upserts its row of the heartbeats store
(:mod:`driftgate.core.state.heartbeats`) about every second: its id, the time, a hash of
the route table it serves from and its in-flight requests per vLLM served name
(``Gateway.served_in_flight``). The rollout controller unloads an old adapter version
only when every recent heartbeat shows the current routes applied and nothing in flight on it.

``gateway/app.py``'s lifespan starts it after ``await gw.start()`` and stops it
before ``await gw.stop()`` (``DRIFTGATE_GATEWAY_HEARTBEAT_INTERVAL_S``; 0 = off).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid

from sqlalchemy.exc import SQLAlchemyError

from driftgate.core.loops import run_forever
from driftgate.core.state.heartbeats import forget_beat, prune_beats, write_beat
from driftgate.core.state.migrate import upgrade
from gateway.runtime import Gateway

log = logging.getLogger(__name__)


def default_gateway_id() -> str:
    """Host, process and a random suffix: a restarted gateway is a new id."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Heartbeat:
    """The background task of one gateway replica."""

    def __init__(
        self,
        gw: Gateway,
        *,
        interval_s: float = 1.0,
        gateway_id: str | None = None,
        prune_after_s: float = 3600.0,
    ) -> None:
        self.gw = gw
        self.interval_s = interval_s
        self.gateway_id = gateway_id or default_gateway_id()
        self.prune_after_s = prune_after_s
        self._task: asyncio.Task[None] | None = None
        self._created = False
        self._last_prune = 0.0

    async def beat(self) -> None:
        """Write one heartbeat now."""
        gw = self.gw
        snap = gw.table.snapshot
        await asyncio.to_thread(
            write_beat,
            gw.store.engine,
            self.gateway_id,
            routes=snap.routes,
            applied_at=snap.taken_at,
            in_flight=dict(gw.served_in_flight),
        )

    async def _step(self) -> None:
        engine = self.gw.store.engine
        if not self._created:  # the gateway's start may have found the database down
            await asyncio.to_thread(upgrade, engine)
            self._created = True
        await self.beat()
        now = time.time()
        if now - self._last_prune > 60:
            await asyncio.to_thread(prune_beats, engine, now - self.prune_after_s)
            self._last_prune = now

    def start(self) -> None:
        if self._task is None:
            # A down database must not stop serving: the loop logs and goes on.
            loop = run_forever(
                "heartbeat",
                self._step,
                self.interval_s,
                metrics=self.gw.metrics.loops,
                expected=(SQLAlchemyError, OSError),
            )
            self._task = asyncio.create_task(loop, name="driftgate-heartbeat")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        # Leave no row that claims we are alive.
        with contextlib.suppress(SQLAlchemyError, OSError):
            await asyncio.to_thread(forget_beat, self.gw.store.engine, self.gateway_id)
