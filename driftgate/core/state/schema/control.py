"""Tables of the control plane: tenants, API keys, adapters, training opt-ins, versions,
routes.

Every table name starts with ``dg_``; the drift service's start with ``drift_``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from driftgate.core.state.schema.base import Base


class TenantRow(Base):
    __tablename__ = "dg_tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    #: Logical adapters this tenant may use; ``["*"]`` means every adapter.
    adapters: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    rate_limit_rps: Mapped[float] = mapped_column(Float, nullable=False)
    burst: Mapped[int] = mapped_column(Integer, nullable=False)
    max_tokens: Mapped[int] = mapped_column(Integer, nullable=False)
    #: Prompt + completion tokens per sliding minute; 0 means unlimited.
    tokens_per_minute: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    #: Requests in flight at once, across gateway replicas; 0 means unlimited.
    max_concurrent: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    created_at: Mapped[float] = mapped_column(Float, default=time.time, nullable=False)


def new_key_id() -> str:
    """A key's public name (``key_`` + 16 hex digits): shown in listings, used to revoke
    it; random, so it tells nothing about the key."""
    return "key_" + secrets.token_hex(8)


class ApiKeyRow(Base):
    __tablename__ = "dg_api_keys"

    #: SHA-256 hex digest of the key; the key itself is never stored.
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The key's public identifier (``DELETE /admin/tenants/{name}/keys/{key_id}``).
    key_id: Mapped[str] = mapped_column(
        String(32), unique=True, index=True, nullable=False, default=new_key_id
    )
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("dg_tenants.id", ondelete="CASCADE"), index=True, nullable=False
    )
    #: First characters of the key, to tell keys apart in listings.
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[float] = mapped_column(Float, default=time.time, nullable=False)
    #: Unix seconds after which the gateway refuses the key; ``None``: never expires.
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class AdapterRow(Base):
    __tablename__ = "dg_adapters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float, default=time.time, nullable=False)


class TrainingOptInRow(Base):
    """A tenant whose traffic may train an adapter (opt-in: no row, no training data).

    Keyed by the tenant's id, not its name: deleting a tenant removes its opt-ins, and a
    new tenant that reuses the name is not opted in by an old row.
    """

    __tablename__ = "dg_training_opt_ins"

    adapter: Mapped[str] = mapped_column(
        ForeignKey("dg_adapters.name", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("dg_tenants.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[float] = mapped_column(Float, default=time.time, nullable=False)


class AdapterVersionRow(Base):
    __tablename__ = "dg_adapter_versions"

    adapter: Mapped[str] = mapped_column(
        ForeignKey("dg_adapters.name", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    #: loading | ready | failed | retired (see ``driftgate.core.state.store.VersionState``)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=time.time, nullable=False)
    updated_at: Mapped[float] = mapped_column(Float, default=time.time, nullable=False)


class RouteRow(Base):
    __tablename__ = "dg_routes"

    adapter: Mapped[str] = mapped_column(
        ForeignKey("dg_adapters.name", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    weight: Mapped[float] = mapped_column(Float, nullable=False)
    updated_at: Mapped[float] = mapped_column(Float, default=time.time, nullable=False)
