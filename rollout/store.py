"""Persistence of rollouts: ``dg_rollouts`` and ``dg_rollout_transitions`` (SQLAlchemy 2).

Same database as the control plane (``DRIFTGATE_STATE_URL``); the tables are defined in
:mod:`driftgate.core.state.schema.rollouts`. Every transition is written in one transaction
with the new state of the rollout, guarded by the state it came from, so a controller
that restarts resumes exactly where the last committed transition left it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from driftgate.core.adapters import is_valid_adapter_name
from driftgate.core.errors import Conflict, InvalidRequest, NotFound
from driftgate.core.state.engine import make_engine
from driftgate.core.state.migrate import upgrade
from driftgate.core.state.schema.rollouts import RolloutRow, TransitionRow
from rollout.machine import (
    TERMINAL,
    Command,
    Rollout,
    RolloutState,
    transition,
)

_FIELDS = (
    "candidate_version",
    "serving_version",
    "canary_weight",
    "approved",
    "reason",
    "outcome",
    "created_at",
    "updated_at",
    "loading_started_at",
    "canary_started_at",
    "decided_at",
    "drain_started_at",
    "finished_at",
)


def _rollout(row: RolloutRow) -> Rollout:
    return Rollout(
        id=row.id,
        adapter=row.adapter,
        path=row.path,
        state=RolloutState(row.state),
        command=Command(row.command) if row.command else None,
        decision=dict(row.decision or {}),
        meta=dict(row.meta or {}),
        **{f: getattr(row, f) for f in _FIELDS},
    )


_ACTIVE = [s.value for s in RolloutState if s not in TERMINAL]


class RolloutStore:
    """Rollouts and their transitions behind one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create_all(self) -> None:
        """Create or upgrade every table of the shared database (:func:`upgrade`)."""
        upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as s, s.begin():
            yield s

    def create(
        self,
        adapter: str,
        path: str,
        *,
        canary_weight: float,
        approved: bool,
        meta: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> Rollout:
        """A new rollout in state ``candidate``; 409 while the adapter has an active one."""
        if not is_valid_adapter_name(adapter):
            raise InvalidRequest(f"invalid adapter name {adapter!r}", param="adapter")
        if not 0 < canary_weight < 1:
            raise InvalidRequest("canary_weight must be in (0, 1)", param="canary_weight")
        if not path:
            raise InvalidRequest("path is required", param="path")
        ts = time.time() if now is None else now
        with self.session() as s:
            active = s.scalar(
                select(RolloutRow.id).where(
                    RolloutRow.adapter == adapter, RolloutRow.state.in_(_ACTIVE)
                )
            )
            if active is not None:
                raise Conflict(
                    f"adapter {adapter!r} already has an active rollout ({active})",
                    code="rollout_active",
                )
            row = RolloutRow(
                adapter=adapter,
                path=path,
                state=RolloutState.CANDIDATE.value,
                canary_weight=float(canary_weight),
                approved=approved,
                reason="waiting for approval" if not approved else "created",
                created_at=ts,
                updated_at=ts,
                decision={},
                meta=dict(meta or {}),
            )
            s.add(row)
            s.flush()
            s.add(
                TransitionRow(
                    rollout_id=row.id,
                    ts=ts,
                    from_state=None,
                    to_state=row.state,
                    reason=row.reason,
                    stats={},
                )
            )
            return _rollout(row)

    def get(self, rollout_id: int) -> Rollout:
        with self.session() as s:
            row = s.get(RolloutRow, rollout_id)
            if row is None:
                raise NotFound(f"rollout {rollout_id} not found", code="rollout_not_found")
            return _rollout(row)

    def rollouts(self, adapter: str | None = None, *, active: bool = False) -> list[Rollout]:
        q = select(RolloutRow).order_by(RolloutRow.id)
        if adapter is not None:
            q = q.where(RolloutRow.adapter == adapter)
        if active:
            q = q.where(RolloutRow.state.in_(_ACTIVE))
        with self.session() as s:
            return [_rollout(r) for r in s.scalars(q)]

    def transitions(self, rollout_id: int) -> list[dict[str, Any]]:
        q = (
            select(TransitionRow)
            .where(TransitionRow.rollout_id == rollout_id)
            .order_by(TransitionRow.id)
        )
        with self.session() as s:
            return [
                {
                    "ts": t.ts,
                    "from": t.from_state,
                    "to": t.to_state,
                    "reason": t.reason,
                    "stats": dict(t.stats or {}),
                }
                for t in s.scalars(q)
            ]

    def _row_for_update(self, s: Session, rollout_id: int) -> RolloutRow:
        row = s.get(RolloutRow, rollout_id, with_for_update=True)
        if row is None:
            raise NotFound(f"rollout {rollout_id} not found", code="rollout_not_found")
        return row

    def reserve_version(self, r: Rollout, version: int, serving: int | None) -> Rollout:
        """Record the candidate's version number (and the serving one) before registering."""
        with self.session() as s:
            row = self._row_for_update(s, r.id)
            if row.state != r.state.value:
                raise Conflict(f"rollout {r.id} moved to {row.state}", code="rollout_moved")
            row.candidate_version = version
            row.serving_version = serving
            row.updated_at = time.time()
            return _rollout(row)

    def record(
        self,
        r: Rollout,
        to: RolloutState,
        reason: str,
        *,
        stats: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> Rollout:
        """Persist the transition of ``r`` to ``to`` (only if nobody moved it meanwhile)."""
        ts = time.time() if now is None else now
        with self.session() as s:
            row = self._row_for_update(s, r.id)
            if row.state != r.state.value:
                raise Conflict(
                    f"rollout {r.id} is {row.state}, not {r.state.value}", code="rollout_moved"
                )
            # The command may have been set since r was read: the fresh row decides.
            new = transition(_rollout(row), to, ts, reason, stats)
            row.state = new.state.value
            row.command = new.command.value if new.command else None
            row.decision = dict(new.decision)
            for f in _FIELDS:
                setattr(row, f, getattr(new, f))
            s.add(
                TransitionRow(
                    rollout_id=r.id,
                    ts=ts,
                    from_state=r.state.value,
                    to_state=to.value,
                    reason=reason,
                    stats=dict(stats or {}),
                )
            )
            return new

    def set_reason(self, r: Rollout, reason: str) -> None:
        """Remember why the rollout waits (shown by ``status``; not a transition)."""
        if reason == r.reason:
            return
        with self.session() as s:
            row = s.get(RolloutRow, r.id)
            if row is not None and row.state == r.state.value:
                row.reason = reason
                row.updated_at = time.time()

    def command(self, rollout_id: int, command: Command) -> Rollout:
        """Record an operator's promote/rollback; the controller acts on its next tick."""
        with self.session() as s:
            row = self._row_for_update(s, rollout_id)
            state = RolloutState(row.state)
            if state is not RolloutState.CANARY:
                raise Conflict(
                    f"rollout {rollout_id} is {state.value}; {command.value} needs canary",
                    code="rollout_not_in_canary",
                )
            row.command = command.value
            row.updated_at = time.time()
            return _rollout(row)

    def approve(self, rollout_id: int) -> Rollout:
        with self.session() as s:
            row = self._row_for_update(s, rollout_id)
            if row.state != RolloutState.CANDIDATE.value:
                raise Conflict(
                    f"rollout {rollout_id} is {row.state}, not candidate",
                    code="rollout_not_candidate",
                )
            row.approved = True
            row.reason = "approved"
            row.updated_at = time.time()
            return _rollout(row)
