"""Every retrain run's outcome, in the ``retrain_runs`` table of the shared state database.

The table is defined in :mod:`driftgate.core.state.schema.runs`. A run is inserted as
``running`` when it starts and finished exactly once with its outcome:
``promoted`` (handed to the rollout), ``rejected`` (kept for inspection, never served),
``insufficient_data`` or ``failed``; duration, scores and details are stored with it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, select, update

from driftgate.core.state.engine import make_engine
from driftgate.core.state.migrate import upgrade
from driftgate.core.state.schema.runs import retrain_runs
from retrain.errors import UnknownAdapter

Outcome = Literal["running", "promoted", "rejected", "insufficient_data", "failed"]
OUTCOMES: tuple[str, ...] = ("promoted", "rejected", "insufficient_data", "failed")


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    adapter: str
    reason: str
    started_at: float
    outcome: str
    finished_at: float | None = None
    duration_s: float | None = None
    message: str | None = None
    candidate_version: int | None = None
    serving_version: int | None = None
    candidate_score: float | None = None
    serving_score: float | None = None
    candidate_golden: float | None = None
    serving_golden: float | None = None
    dataset_size: int | None = None
    dataset_hash: str | None = None
    details: dict[str, Any] | None = None


class RunStore:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)

    def create_all(self) -> None:
        """Create or upgrade every table of the shared database (:func:`upgrade`)."""
        upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    def start(self, adapter: str, reason: str) -> str:
        run_id = uuid.uuid4().hex
        with self.engine.begin() as conn:
            conn.execute(
                retrain_runs.insert().values(
                    id=run_id,
                    adapter=adapter,
                    reason=reason,
                    started_at=time.time(),
                    outcome="running",
                )
            )
        return run_id

    def finish(self, run_id: str, outcome: Outcome, message: str, **fields: Any) -> RunRecord:
        """Record the outcome once; ``fields`` are any other columns."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        now = time.time()
        with self.engine.begin() as conn:
            started = conn.execute(
                select(retrain_runs.c.started_at).where(retrain_runs.c.id == run_id)
            ).scalar()
            if started is None:
                raise UnknownAdapter(f"retrain run {run_id} not found")
            conn.execute(
                update(retrain_runs)
                .where(retrain_runs.c.id == run_id, retrain_runs.c.outcome == "running")
                .values(
                    outcome=outcome,
                    message=message,
                    finished_at=now,
                    duration_s=now - float(started),
                    **fields,
                )
            )
        return self.get(run_id)

    def get(self, run_id: str) -> RunRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(retrain_runs).where(retrain_runs.c.id == run_id)).first()
        if row is None:
            raise UnknownAdapter(f"retrain run {run_id} not found")
        return RunRecord(**{str(k): v for k, v in row._mapping.items()})

    def recent(self, adapter: str | None = None, limit: int = 50) -> list[RunRecord]:
        q = select(retrain_runs).order_by(retrain_runs.c.started_at.desc()).limit(limit)
        if adapter is not None:
            q = q.where(retrain_runs.c.adapter == adapter)
        with self.engine.connect() as conn:
            return [
                RunRecord(**{str(k): v for k, v in r._mapping.items()}) for r in conn.execute(q)
            ]

    def counts(self) -> dict[tuple[str, str], int]:
        """(adapter, outcome) -> number of finished runs."""
        q = (
            select(retrain_runs.c.adapter, retrain_runs.c.outcome, func.count())
            .where(retrain_runs.c.outcome != "running")
            .group_by(retrain_runs.c.adapter, retrain_runs.c.outcome)
        )
        with self.engine.connect() as conn:
            return {(a, o): int(n) for a, o, n in conn.execute(q)}

    def adapters(self) -> list[str]:
        """Every adapter with a recorded run, finished or running."""
        q = select(retrain_runs.c.adapter).distinct().order_by(retrain_runs.c.adapter)
        with self.engine.connect() as conn:
            return [str(a) for (a,) in conn.execute(q)]

    def oldest_running(self) -> dict[str, float]:
        """adapter -> start time (epoch seconds) of its oldest run still recorded as running."""
        q = (
            select(retrain_runs.c.adapter, func.min(retrain_runs.c.started_at))
            .where(retrain_runs.c.outcome == "running")
            .group_by(retrain_runs.c.adapter)
        )
        with self.engine.connect() as conn:
            return {str(a): float(t) for a, t in conn.execute(q)}

    def last_finished(self) -> list[RunRecord]:
        """The newest finished run of each adapter."""
        out: dict[str, RunRecord] = {}
        for r in self.recent(limit=10_000):
            if r.outcome != "running" and r.adapter not in out:
                out[r.adapter] = r
        return list(out.values())
