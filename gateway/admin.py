"""Admin API (``/admin/...``, ``Authorization: Bearer <admin_key>``); see docs/CONTRACTS.md.

Every change goes to the state store first; this gateway then reloads its
snapshot at once, the others within ``state_refresh_s``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from driftgate.core.adapters import is_valid_adapter_name, lora_name
from driftgate.core.credentials import check_admin
from driftgate.core.errors import Conflict, InvalidRequest, Unavailable
from driftgate.core.limits import INT_COLUMN_MAX
from driftgate.core.lora_check import check_lora_dir, confine_path
from driftgate.core.state import IssuedKey, VersionState
from gateway.runtime import Gateway

log = logging.getLogger(__name__)


def _gateway(request: Request) -> Gateway:
    gw: Gateway = request.state.gw
    secret = gw.settings.admin_key
    check_admin(request.headers.get("authorization"), secret.get_secret_value() if secret else None)
    return gw


Admin = Annotated[Gateway, Depends(_gateway)]
#: A version number as the state store keeps it (a larger one would fail at the insert).
VersionNumber = Annotated[int, Field(ge=1, le=INT_COLUMN_MAX)]
PathVersion = Annotated[int, Path(ge=1, le=INT_COLUMN_MAX)]
router = APIRouter(prefix="/admin")

#: The longest lifetime a key may be given (10 years); a key without one never expires.
MAX_KEY_LIFETIME_S = 10 * 365 * 86400.0
#: Seconds from now until a new key expires: a JSON number, > 0 (not a string, not a bool).
KeyLifetime = Annotated[float, Field(gt=0, le=MAX_KEY_LIFETIME_S, allow_inf_nan=False, strict=True)]


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    adapters: list[str] = Field(default_factory=list)
    rate_limit_rps: float = Field(default=10.0, ge=0)
    burst: int = Field(default=20, ge=0, le=INT_COLUMN_MAX)
    max_tokens: int = Field(default=1024, ge=1, le=INT_COLUMN_MAX)
    #: Prompt + completion tokens per sliding minute, across replicas; 0: unlimited.
    tokens_per_minute: int = Field(default=0, ge=0, le=INT_COLUMN_MAX)
    #: Requests in flight at once, across replicas; 0: unlimited.
    max_concurrent: int = Field(default=0, ge=0, le=INT_COLUMN_MAX)
    #: The first key's lifetime; left out or null: it never expires.
    key_expires_in_s: KeyLifetime | None = None


class TenantPatch(BaseModel):
    """The fields of a tenant to change; those left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    adapters: list[str] | None = None
    rate_limit_rps: float | None = Field(default=None, ge=0)
    burst: int | None = Field(default=None, ge=0, le=INT_COLUMN_MAX)
    max_tokens: int | None = Field(default=None, ge=1, le=INT_COLUMN_MAX)
    tokens_per_minute: int | None = Field(default=None, ge=0, le=INT_COLUMN_MAX)
    max_concurrent: int | None = Field(default=None, ge=0, le=INT_COLUMN_MAX)


class KeyIn(BaseModel):
    """``POST /admin/tenants/{name}/keys``'s optional body."""

    model_config = ConfigDict(extra="forbid")

    #: Left out, null, or no body at all: the key never expires.
    expires_in_s: KeyLifetime | None = None


class VersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=4096)
    version: int | None = Field(default=None, ge=1, le=INT_COLUMN_MAX)
    meta: dict[str, Any] = Field(default_factory=dict)


class TrainingTenantsIn(BaseModel):
    """Who may train an adapter: the whole list, replaced (``[]`` opts everyone out)."""

    model_config = ConfigDict(extra="forbid")

    tenants: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(max_length=1000)


class RouteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weights: dict[VersionNumber, float] = Field(min_length=1)


def _json(data: dict[str, Any], status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")


def _expires_at(gw: Gateway, lifetime_s: float | None) -> float | None:
    return None if lifetime_s is None else gw.clock() + lifetime_s


def _issued(gw: Gateway, key: IssuedKey) -> dict[str, Any]:
    return {**key.info.as_dict(gw.clock()), "api_key": key.secret}


def _check_adapter(adapter: str) -> None:
    if not is_valid_adapter_name(adapter):
        raise InvalidRequest(f"invalid adapter name {adapter!r}", param="adapter")


# -- tenants -------------------------------------------------------------------------


@router.post("/tenants", status_code=201)
async def create_tenant(body: TenantIn, gw: Admin) -> Response:
    tenant, key = await asyncio.to_thread(
        gw.store.create_tenant,
        body.name,
        adapters=body.adapters,
        rate_limit_rps=body.rate_limit_rps,
        burst=body.burst,
        max_tokens=body.max_tokens,
        tokens_per_minute=body.tokens_per_minute,
        max_concurrent=body.max_concurrent,
        key_expires_at=_expires_at(gw, body.key_expires_in_s),
    )
    await gw.refresh()
    answer = {
        "tenant": tenant.as_dict(),
        "api_key": key.secret,
        "key_id": key.info.key_id,
        "expires_at": key.info.expires_at,
    }
    return _json(answer, status_code=201)


@router.patch("/tenants/{name}")
async def update_tenant(name: str, body: TenantPatch, gw: Admin) -> dict[str, Any]:
    """Change a tenant's adapters or limits; every gateway applies them within a refresh."""
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise InvalidRequest("nothing to change", param="body")
    tenant = await asyncio.to_thread(gw.store.update_tenant, name, **changes)
    await gw.refresh()
    return tenant.as_dict()


@router.get("/tenants")
async def list_tenants(gw: Admin) -> dict[str, Any]:
    tenants = await asyncio.to_thread(gw.store.list_tenants)
    return {"data": [t.as_dict() for t in tenants]}


@router.delete("/tenants/{name}", status_code=204)
async def delete_tenant(name: str, gw: Admin) -> Response:
    await asyncio.to_thread(gw.store.delete_tenant, name)
    await gw.refresh()
    return Response(status_code=204)


@router.post("/tenants/{name}/keys", status_code=201)
async def add_key(name: str, gw: Admin, body: KeyIn | None = None) -> Response:
    """Another key for ``name`` (rotation); with ``{"expires_in_s": s}`` it expires then."""
    expires_at = _expires_at(gw, body.expires_in_s if body else None)
    key = await asyncio.to_thread(gw.store.add_api_key, name, expires_at=expires_at)
    await gw.refresh()
    return _json(_issued(gw, key), status_code=201)


@router.get("/tenants/{name}/keys")
async def list_keys(name: str, gw: Admin) -> dict[str, Any]:
    """The tenant's keys: id, prefix, times; never a key or its hash."""
    keys = await asyncio.to_thread(gw.store.list_api_keys, name)
    now = gw.clock()
    return {"data": [k.as_dict(now) for k in keys]}


@router.delete("/tenants/{name}/keys/{key_id}", status_code=204)
async def revoke_key(name: str, key_id: str, gw: Admin) -> Response:
    """Revoke one key: refused at once here, by the other gateways within
    ``state_refresh_s`` (their next state read); the tenant's other keys keep working."""
    await asyncio.to_thread(gw.store.revoke_api_key, name, key_id)
    await gw.refresh()
    return Response(status_code=204)


# -- adapter versions --------------------------------------------------------------


@router.get("/adapters")
async def list_versions(gw: Admin, adapter: str | None = None) -> dict[str, Any]:
    versions = await asyncio.to_thread(gw.store.list_versions, adapter)
    return {"data": [v.as_dict() for v in versions]}


@router.get("/adapters/{adapter}")
async def get_adapter(adapter: str, gw: Admin) -> dict[str, Any]:
    """The adapter, the tenants whose traffic may train it, and its versions."""
    _check_adapter(adapter)
    info = await asyncio.to_thread(gw.store.get_adapter, adapter)
    versions = await asyncio.to_thread(gw.store.list_versions, adapter)
    return {**info.as_dict(), "versions": [v.as_dict() for v in versions]}


@router.put("/adapters/{adapter}/training-tenants")
async def set_training_tenants(adapter: str, body: TrainingTenantsIn, gw: Admin) -> dict[str, Any]:
    """Opt tenants in to train ``adapter`` with their traffic (issue 15): the list replaces
    the previous one; the retrain job reads it at the start of each run."""
    _check_adapter(adapter)
    info = await asyncio.to_thread(gw.store.set_training_tenants, adapter, body.tenants)
    log.info("training tenants of %s set to %s", adapter, list(info.training_tenants))
    return info.as_dict()


@router.post("/adapters/{adapter}/versions", status_code=201)
async def register_version(adapter: str, body: VersionIn, gw: Admin) -> Response:
    """Validate the PEFT directory, load it into every healthy replica, mark it ready."""
    _check_adapter(adapter)
    s = gw.settings
    path = confine_path(body.path, s.adapter_roots)
    info = check_lora_dir(
        path, max_rank=s.max_lora_rank, base_names=[s.base_model, *s.base_model_aliases]
    )
    async with gw.admin_lock:
        if not gw.pool.healthy():
            raise Unavailable("no healthy replica to load the adapter into")
        meta = {
            **body.meta,
            "rank": info.rank,
            "target_modules": list(info.target_modules),
            "base_model": info.base_model,
        }
        v = await asyncio.to_thread(
            gw.store.create_version, adapter, info.path, meta=meta, version=body.version
        )
        served = lora_name(adapter, v.version)
        results = await gw.pool.load_everywhere(served, info.path)
        failed = [r for r in results if not r.ok]
        if failed:
            await gw.pool.unload_everywhere(served)
            reason = "; ".join(f"{r.replica}: {r.detail}" for r in failed)[:2000]
            await asyncio.to_thread(
                gw.store.set_version_state, adapter, v.version, VersionState.FAILED, error=reason
            )
            await gw.refresh()
            raise InvalidRequest(
                f"version {adapter}@{v.version} was refused by the engine: {reason}",
                param="path",
                code="adapter_load_failed",
            )
        try:
            v = await asyncio.to_thread(
                gw.store.set_version_state,
                adapter,
                v.version,
                VersionState.READY,
                expect=VersionState.LOADING,
            )
        except Conflict:  # reconciled as stale meanwhile (Gateway.fail_stale_loading)
            await gw.pool.unload_everywhere(served)
            await gw.refresh()
            raise
        await gw.refresh()
    return _json(
        {**v.as_dict(), "served_name": served, "replicas": [r.replica for r in results]},
        status_code=201,
    )


@router.delete("/adapters/{adapter}/versions/{version}")
async def retire_version(adapter: str, version: PathVersion, gw: Admin) -> dict[str, Any]:
    """Retire a version: refuse if routed (409), stop pinning, drain, unload everywhere."""
    _check_adapter(adapter)
    async with gw.admin_lock:
        v = await asyncio.to_thread(gw.store.get_version, adapter, version)
        served = lora_name(adapter, version)
        if v.state is not VersionState.RETIRED:
            v = await asyncio.to_thread(
                gw.store.set_version_state, adapter, version, VersionState.RETIRED
            )
            await gw.refresh()
            # Let the other gateways see the change, then let this one's requests finish.
            await asyncio.sleep(2 * gw.settings.state_refresh_s)
        drained = await gw.drain(served, gw.settings.drain_timeout_s)
        results = await gw.pool.unload_everywhere(served)
    return {
        **v.as_dict(),
        "served_name": served,
        "drained": drained,
        "unloaded": [r.replica for r in results if r.ok],
        "unload_failed": [r.replica for r in results if not r.ok],
    }


# -- routes ----------------------------------------------------------------------------


@router.get("/routes")
async def get_routes(gw: Admin) -> dict[str, Any]:
    routes = await asyncio.to_thread(gw.store.get_routes)
    return {"routes": {a: {str(v): w for v, w in ws.items()} for a, ws in routes.items()}}


@router.put("/routes/{adapter}")
async def set_route(adapter: str, body: RouteIn, gw: Admin) -> dict[str, Any]:
    _check_adapter(adapter)
    weights = await asyncio.to_thread(gw.store.set_route, adapter, body.weights)
    await gw.refresh()
    return {"adapter": adapter, "weights": {str(v): w for v, w in weights.items()}}


@router.delete("/routes/{adapter}", status_code=204)
async def delete_route(adapter: str, gw: Admin) -> Response:
    await asyncio.to_thread(gw.store.delete_route, adapter)
    await gw.refresh()
    return Response(status_code=204)


# -- replicas --------------------------------------------------------------------------


@router.get("/replicas")
async def replicas(gw: Admin) -> dict[str, Any]:
    return {"data": [r.as_dict() for r in gw.pool.replicas]}


@router.post("/refresh")
async def refresh(gw: Admin) -> dict[str, Any]:
    """Reload the control-plane snapshot and poll every replica now."""
    await gw.refresh()
    await gw.pool.poll_all()
    return {"replicas_healthy": len(gw.pool.healthy())}
