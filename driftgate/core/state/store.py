"""Repository functions over the control-plane tables (sync SQLAlchemy).

The gateway calls these from a worker thread (``asyncio.to_thread``) and never
on the hot path: it reads one :class:`ControlSnapshot` about every second. The
rollout controller and the CLI use the same functions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from driftgate.core.adapters import is_valid_adapter_name
from driftgate.core.errors import Conflict, InvalidRequest, NotFound
from driftgate.core.state import api_keys, training_opt_in
from driftgate.core.state.api_keys import hash_key
from driftgate.core.state.engine import make_engine
from driftgate.core.state.migrate import upgrade
from driftgate.core.state.models import (
    ALL_ADAPTERS,
    AdapterInfo,
    ApiKeyInfo,
    ControlSnapshot,
    IssuedKey,
    TenantInfo,
    VersionInfo,
    VersionState,
)
from driftgate.core.state.schema.control import (
    AdapterRow,
    AdapterVersionRow,
    ApiKeyRow,
    RouteRow,
    TenantRow,
)


def _tenant(row: TenantRow) -> TenantInfo:
    return TenantInfo(
        id=row.id,
        name=row.name,
        adapters=tuple(row.adapters),
        rate_limit_rps=row.rate_limit_rps,
        burst=row.burst,
        max_tokens=row.max_tokens,
        created_at=row.created_at,
        tokens_per_minute=row.tokens_per_minute,
        max_concurrent=row.max_concurrent,
    )


def _version(row: AdapterVersionRow) -> VersionInfo:
    return VersionInfo(
        adapter=row.adapter,
        version=row.version,
        path=row.path,
        state=VersionState(row.state),
        meta=dict(row.meta or {}),
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _check_adapters(adapters: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for name in adapters:
        if name != ALL_ADAPTERS and not is_valid_adapter_name(name):
            raise InvalidRequest(f"invalid adapter name {name!r}", param="adapters")
        if name not in out:
            out.append(name)
    return tuple(out)


#: What :meth:`StateStore.update_tenant` may change.
TENANT_FIELDS = (
    "adapters",
    "rate_limit_rps",
    "burst",
    "max_tokens",
    "tokens_per_minute",
    "max_concurrent",
)


def _check_limits(
    rate_limit_rps: float, burst: int, max_tokens: int, tokens_per_minute: int, max_concurrent: int
) -> None:
    if rate_limit_rps < 0 or burst < 0 or max_tokens < 1:
        raise InvalidRequest("rate_limit_rps and burst must be >= 0, max_tokens >= 1")
    if tokens_per_minute < 0 or max_concurrent < 0:
        raise InvalidRequest("tokens_per_minute and max_concurrent must be >= 0 (0: unlimited)")


class StateStore:
    """The control-plane state behind one database URL (SQLite or PostgreSQL)."""

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

    # -- tenants ---------------------------------------------------------------

    def create_tenant(
        self,
        name: str,
        *,
        adapters: Iterable[str],
        rate_limit_rps: float,
        burst: int,
        max_tokens: int,
        tokens_per_minute: int = 0,
        max_concurrent: int = 0,
        key_expires_at: float | None = None,
    ) -> tuple[TenantInfo, IssuedKey]:
        """Create a tenant and its first API key (expiring at ``key_expires_at``, Unix
        seconds, if given); returns the key in clear (only here)."""
        if not name or len(name) > 128:
            raise InvalidRequest("tenant name must be 1-128 characters", param="name")
        allowed = _check_adapters(adapters)
        _check_limits(rate_limit_rps, burst, max_tokens, tokens_per_minute, max_concurrent)
        try:
            with self.session() as s:
                row = TenantRow(
                    name=name,
                    adapters=list(allowed),
                    rate_limit_rps=float(rate_limit_rps),
                    burst=int(burst),
                    max_tokens=int(max_tokens),
                    tokens_per_minute=int(tokens_per_minute),
                    max_concurrent=int(max_concurrent),
                    created_at=time.time(),
                )
                s.add(row)
                s.flush()
                key = api_keys.issue(s, row, expires_at=key_expires_at)
                info = _tenant(row)
        except IntegrityError as exc:
            raise Conflict(f"tenant {name!r} already exists", param="name") from exc
        return info, key

    def update_tenant(self, name: str, **changes: Any) -> TenantInfo:
        """Change a tenant's adapters or limits (the fields of :data:`TENANT_FIELDS`)."""
        unknown = set(changes) - set(TENANT_FIELDS)
        if unknown:
            raise InvalidRequest(f"unknown tenant fields {sorted(unknown)}")
        with self.session() as s:
            row = s.scalar(select(TenantRow).where(TenantRow.name == name))
            if row is None:
                raise NotFound(f"tenant {name!r} not found", code="tenant_not_found")
            if "adapters" in changes:
                changes["adapters"] = list(_check_adapters(changes["adapters"]))
            for field, value in changes.items():
                setattr(row, field, value)
            _check_limits(
                row.rate_limit_rps,
                row.burst,
                row.max_tokens,
                row.tokens_per_minute,
                row.max_concurrent,
            )
            s.flush()
            return _tenant(row)

    def add_api_key(self, tenant: str, *, expires_at: float | None = None) -> IssuedKey:
        """Issue another key for ``tenant`` (key rotation), expiring at ``expires_at``
        (Unix seconds) if given; returns it in clear (only here)."""
        with self.session() as s:
            return api_keys.issue(s, api_keys.tenant_row(s, tenant), expires_at=expires_at)

    def list_api_keys(self, tenant: str) -> list[ApiKeyInfo]:
        """The keys of ``tenant`` (ids, prefixes, times; never a key or its hash)."""
        with self.session() as s:
            return api_keys.list_keys(s, tenant)

    def revoke_api_key(self, tenant: str, key_id: str) -> None:
        """Delete one key of ``tenant`` (404 ``key_not_found``); its other keys stay."""
        with self.session() as s:
            api_keys.revoke(s, tenant, key_id)

    def list_tenants(self) -> list[TenantInfo]:
        with self.session() as s:
            return [_tenant(r) for r in s.scalars(select(TenantRow).order_by(TenantRow.id))]

    def get_tenant(self, name: str) -> TenantInfo:
        with self.session() as s:
            row = s.scalar(select(TenantRow).where(TenantRow.name == name))
            if row is None:
                raise NotFound(f"tenant {name!r} not found", code="tenant_not_found")
            return _tenant(row)

    def delete_tenant(self, name: str) -> None:
        with self.session() as s:
            row = s.scalar(select(TenantRow).where(TenantRow.name == name))
            if row is None:
                raise NotFound(f"tenant {name!r} not found", code="tenant_not_found")
            s.execute(delete(ApiKeyRow).where(ApiKeyRow.tenant_id == row.id))
            s.delete(row)

    def tenant_for_key(self, key: str) -> TenantInfo | None:
        with self.session() as s:
            row = s.scalar(
                select(TenantRow)
                .join(ApiKeyRow, ApiKeyRow.tenant_id == TenantRow.id)
                .where(ApiKeyRow.key_hash == hash_key(key))
            )
            return None if row is None else _tenant(row)

    # -- adapter versions ------------------------------------------------------

    def create_version(
        self,
        adapter: str,
        path: str,
        *,
        meta: Mapping[str, Any] | None = None,
        version: int | None = None,
    ) -> VersionInfo:
        """Record a new version in state ``loading``; numbers are never reused."""
        if not is_valid_adapter_name(adapter):
            raise InvalidRequest(f"invalid adapter name {adapter!r}", param="adapter")
        if version is not None and version < 1:
            raise InvalidRequest("version must be >= 1", param="version")
        now = time.time()
        try:
            with self.session() as s:
                if s.get(AdapterRow, adapter) is None:
                    s.add(AdapterRow(name=adapter, created_at=now))
                    s.flush()
                if version is None:
                    top = s.scalar(
                        select(func.max(AdapterVersionRow.version)).where(
                            AdapterVersionRow.adapter == adapter
                        )
                    )
                    version = (top or 0) + 1
                row = AdapterVersionRow(
                    adapter=adapter,
                    version=version,
                    path=path,
                    state=VersionState.LOADING.value,
                    meta=dict(meta or {}),
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                s.flush()
                return _version(row)
        except IntegrityError as exc:
            raise Conflict(f"version {adapter}@{version} already exists", param="version") from exc

    def set_version_state(
        self,
        adapter: str,
        version: int,
        state: VersionState,
        *,
        error: str | None = None,
        expect: VersionState | None = None,
    ) -> VersionInfo:
        """Move a version to ``state``; with ``expect``, only from that state (else 409
        ``version_state_changed``), so two writers cannot undo each other's move."""
        with self.session() as s:
            row = s.get(AdapterVersionRow, (adapter, version))
            if row is None:
                raise NotFound(f"version {adapter}@{version} not found")
            if expect is not None and row.state != expect.value:
                raise Conflict(
                    f"version {adapter}@{version} is {row.state}, not {expect.value}",
                    code="version_state_changed",
                )
            if state is not VersionState.READY:
                weight = s.scalar(
                    select(RouteRow.weight).where(
                        RouteRow.adapter == adapter, RouteRow.version == version
                    )
                )
                if weight is not None and weight > 0:
                    raise Conflict(
                        f"version {adapter}@{version} still has route weight {weight}; "
                        "shift the route first",
                        code="version_routed",
                    )
                s.execute(
                    delete(RouteRow).where(RouteRow.adapter == adapter, RouteRow.version == version)
                )
            row.state = state.value
            row.error = error
            row.updated_at = time.time()
            return _version(row)

    def get_version(self, adapter: str, version: int) -> VersionInfo:
        with self.session() as s:
            row = s.get(AdapterVersionRow, (adapter, version))
            if row is None:
                raise NotFound(f"version {adapter}@{version} not found")
            return _version(row)

    def list_versions(self, adapter: str | None = None) -> list[VersionInfo]:
        q = select(AdapterVersionRow).order_by(AdapterVersionRow.adapter, AdapterVersionRow.version)
        if adapter is not None:
            q = q.where(AdapterVersionRow.adapter == adapter)
        with self.session() as s:
            return [_version(r) for r in s.scalars(q)]

    # -- routes ----------------------------------------------------------------

    def set_route(self, adapter: str, weights: Mapping[int, float]) -> dict[int, float]:
        """Replace the route of ``adapter``; every weighted version must be ``ready``."""
        clean: dict[int, float] = {}
        for version, weight in weights.items():
            w = float(weight)
            if not math.isfinite(w) or w < 0:
                raise InvalidRequest(f"weight of version {version} must be >= 0", param="weights")
            clean[int(version)] = w
        if sum(clean.values()) <= 0:
            raise InvalidRequest("at least one weight must be > 0", param="weights")
        now = time.time()
        with self.session() as s:
            for version, w in clean.items():
                row = s.get(AdapterVersionRow, (adapter, version))
                if row is None:
                    raise NotFound(f"version {adapter}@{version} not found", param="weights")
                if row.state != VersionState.READY.value and w > 0:
                    raise Conflict(
                        f"version {adapter}@{version} is {row.state}, not ready",
                        code="version_not_ready",
                    )
            s.execute(delete(RouteRow).where(RouteRow.adapter == adapter))
            for version, w in clean.items():
                s.add(RouteRow(adapter=adapter, version=version, weight=w, updated_at=now))
        return {v: w for v, w in clean.items() if w > 0}

    def delete_route(self, adapter: str) -> None:
        with self.session() as s:
            s.execute(delete(RouteRow).where(RouteRow.adapter == adapter))

    def get_routes(self) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        with self.session() as s:
            for r in s.scalars(select(RouteRow).order_by(RouteRow.adapter, RouteRow.version)):
                if r.weight > 0:
                    out.setdefault(r.adapter, {})[r.version] = r.weight
        return out

    # -- training opt-in (driftgate.core.state.training_opt_in) ----------------

    def get_adapter(self, adapter: str) -> AdapterInfo:
        with self.session() as s:
            return training_opt_in.get_adapter(s, adapter)

    def set_training_tenants(self, adapter: str, tenants: Iterable[str]) -> AdapterInfo:
        """Replace which tenants' traffic may train ``adapter`` (``[]``: none may)."""
        with self.session() as s:
            return training_opt_in.set_training_tenants(s, adapter, tenants)

    def training_tenants(self, adapter: str) -> tuple[str, ...]:
        """The tenants opted in to train ``adapter``; empty: it trains on no traffic."""
        with self.session() as s:
            return training_opt_in.training_tenants(s, adapter)

    # -- the gateway's view ----------------------------------------------------

    def snapshot(self) -> ControlSnapshot:
        """Tenants by key hash, key expiries, versions and routes, read in one transaction."""
        with self.session() as s:
            tenants = {r.id: _tenant(r) for r in s.scalars(select(TenantRow))}
            keys = [k for k in s.scalars(select(ApiKeyRow)) if k.tenant_id in tenants]
            by_hash = {k.key_hash: tenants[k.tenant_id] for k in keys}
            expiry = {k.key_hash: k.expires_at for k in keys if k.expires_at is not None}
            versions: dict[str, dict[int, VersionInfo]] = {}
            for a in s.scalars(select(AdapterRow)):
                versions[a.name] = {}
            for v in s.scalars(select(AdapterVersionRow)):
                versions.setdefault(v.adapter, {})[v.version] = _version(v)
            routes: dict[str, dict[int, float]] = {}
            for r in s.scalars(select(RouteRow)):
                if r.weight > 0:
                    routes.setdefault(r.adapter, {})[r.version] = r.weight
        return ControlSnapshot(
            tenants_by_key_hash=by_hash,
            versions=versions,
            routes=routes,
            taken_at=time.time(),
            key_expiry=expiry,
        )
