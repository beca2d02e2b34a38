"""Gateway heartbeats: what routes each gateway replica has applied and what is in flight.

Every gateway replica upserts one row of ``dg_gateway_heartbeats`` about every
second: its id, the time, a hash of the route table it serves from
(:func:`routes_hash`; the route table has no generation number) and its
in-flight requests per vLLM served name (``Gateway.served_in_flight``). The
rollout controller unloads an old adapter version only when every recent
heartbeat shows the current routes applied and nothing in flight on it.

``gateway/app.py``'s lifespan starts it after ``await gw.start()`` and stops it
before ``await gw.stop()`` (``DRIFTGATE_GATEWAY_HEARTBEAT_INTERVAL_S``; 0 = off).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import JSON, Engine, Float, String, delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from gateway.runtime import Gateway

log = logging.getLogger(__name__)


class HeartbeatBase(DeclarativeBase):
    pass


class HeartbeatRow(HeartbeatBase):
    __tablename__ = "dg_gateway_heartbeats"

    gateway_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    ts: Mapped[float] = mapped_column(Float, nullable=False, index=True)
    routes_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    #: When the applied snapshot was read from the store (the gateway's clock).
    applied_at: Mapped[float] = mapped_column(Float, nullable=False)
    in_flight: Mapped[dict[str, int]] = mapped_column(JSON, nullable=False, default=dict)


def routes_hash(routes: Mapping[str, Mapping[int, float]]) -> str:
    """A stable hash of a route table (adapter -> version -> weight; zero weights ignored).

    >>> routes_hash({"a": {1: 0.5, 2: 0.5}}) == routes_hash({"a": {2: 0.5, 1: 0.5, 3: 0.0}})
    True
    >>> routes_hash({"a": {1: 1.0}}) == routes_hash({"a": {2: 1.0}})
    False
    """
    canon = sorted(
        (a, sorted((int(v), round(float(w), 9)) for v, w in ws.items() if w > 0))
        for a, ws in routes.items()
    )
    canon = [(a, ws) for a, ws in canon if ws]
    return hashlib.sha256(orjson.dumps(canon)).hexdigest()[:16]


def default_gateway_id() -> str:
    """Host, process and a random suffix: a restarted gateway is a new id."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def create_tables(engine: Engine) -> None:
    HeartbeatBase.metadata.create_all(engine)


def write_beat(
    engine: Engine,
    gateway_id: str,
    *,
    routes: Mapping[str, Mapping[int, float]],
    applied_at: float,
    in_flight: Mapping[str, int],
    now: float | None = None,
) -> None:
    """Upsert this gateway's row."""
    with Session(engine) as s, s.begin():
        s.merge(
            HeartbeatRow(
                gateway_id=gateway_id,
                ts=time.time() if now is None else now,
                routes_hash=routes_hash(routes),
                applied_at=applied_at,
                in_flight={k: int(v) for k, v in in_flight.items() if v > 0},
            )
        )


def read_beats(engine: Engine, since: float) -> list[dict[str, Any]]:
    """Heartbeats newer than ``since``."""
    with Session(engine) as s:
        rows = s.scalars(select(HeartbeatRow).where(HeartbeatRow.ts >= since))
        return [
            {
                "gateway_id": r.gateway_id,
                "ts": r.ts,
                "routes_hash": r.routes_hash,
                "applied_at": r.applied_at,
                "in_flight": dict(r.in_flight or {}),
            }
            for r in rows
        ]


def prune_beats(engine: Engine, older_than: float) -> int:
    with Session(engine) as s, s.begin():
        res = s.execute(delete(HeartbeatRow).where(HeartbeatRow.ts < older_than))
        return int(getattr(res, "rowcount", 0) or 0)


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

    async def _run(self) -> None:
        engine = self.gw.store.engine
        created = False
        last_prune = 0.0
        while True:
            try:
                if not created:
                    await asyncio.to_thread(create_tables, engine)
                    created = True
                await self.beat()
                now = time.time()
                if now - last_prune > 60:
                    await asyncio.to_thread(prune_beats, engine, now - self.prune_after_s)
                    last_prune = now
            except (SQLAlchemyError, OSError) as exc:  # a down database must not stop serving
                log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="driftgate-heartbeat")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        # Leave no row that claims we are alive.
        with contextlib.suppress(SQLAlchemyError, OSError):
            await asyncio.to_thread(_forget, self.gw.store.engine, self.gateway_id)


def _forget(engine: Engine, gateway_id: str) -> None:
    with Session(engine) as s, s.begin():
        s.execute(delete(HeartbeatRow).where(HeartbeatRow.gateway_id == gateway_id))
