"""``dg_gateway_heartbeats``: one row per live gateway replica.

Read and written through :mod:`driftgate.core.state.heartbeats`.
"""

from __future__ import annotations

from sqlalchemy import JSON, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from driftgate.core.state.schema.base import Base


class HeartbeatRow(Base):
    __tablename__ = "dg_gateway_heartbeats"

    gateway_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    ts: Mapped[float] = mapped_column(Float, nullable=False, index=True)
    routes_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    #: When the applied snapshot was read from the store (the gateway's clock).
    applied_at: Mapped[float] = mapped_column(Float, nullable=False)
    in_flight: Mapped[dict[str, int]] = mapped_column(JSON, nullable=False, default=dict)
