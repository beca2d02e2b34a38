"""The gateway heartbeats' store: written by every gateway replica, read by the rollout.

One row of ``dg_gateway_heartbeats`` (:mod:`driftgate.core.state.schema.heartbeats`) per
live replica: its id, the time, a hash of the route table it serves from
(:func:`routes_hash`; the route table has no generation number) and its in-flight
requests per vLLM served name. The writer loop is ``gateway/heartbeat.py``; the
rollout controller unloads an old adapter version only when every recent heartbeat
shows the current routes applied and nothing in flight on it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from driftgate.core.state.schema.heartbeats import HeartbeatRow


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


def forget_beat(engine: Engine, gateway_id: str) -> None:
    with Session(engine) as s, s.begin():
        s.execute(delete(HeartbeatRow).where(HeartbeatRow.gateway_id == gateway_id))
