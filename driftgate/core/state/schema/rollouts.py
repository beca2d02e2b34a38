"""``dg_rollouts`` and ``dg_rollout_transitions`` (used by ``rollout.store``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from driftgate.core.state.schema.base import Base


class RolloutRow(Base):
    __tablename__ = "dg_rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    adapter: Mapped[str] = mapped_column(String(64), index=True, nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(String(16), index=True, nullable=False)
    candidate_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    serving_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    canary_weight: Mapped[float] = mapped_column(Float, nullable=False)
    approved: Mapped[bool] = mapped_column(Boolean, nullable=False)
    command: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    updated_at: Mapped[float] = mapped_column(Float, nullable=False)
    loading_started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    canary_started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    decided_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    drain_started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    decision: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)


class TransitionRow(Base):
    __tablename__ = "dg_rollout_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollout_id: Mapped[int] = mapped_column(
        ForeignKey("dg_rollouts.id", ondelete="CASCADE"), index=True, nullable=False
    )
    ts: Mapped[float] = mapped_column(Float, nullable=False)
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
