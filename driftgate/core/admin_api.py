"""The gateway's admin API (``/admin/...``) as :class:`~driftgate.core.client.Call` s.

Send them with a :class:`~driftgate.core.client.Client` or
:class:`~driftgate.core.client.AsyncClient` built with the gateway's URL and admin key::

    async with AsyncClient("http://127.0.0.1:8080", admin_key) as gw:
        v = await gw.send(admin_api.register_version("support", "/abs/peft/dir"))
        await gw.send(admin_api.set_route("support", {v["version"]: 1.0}))

The routes are in ``gateway/admin.py``; docs/CONTRACTS.md describes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from driftgate.core.client import Call

Record = dict[str, Any]
Weights = dict[int, float]


def _seg(name: str) -> str:
    return quote(name, safe="")


def _record(data: Any) -> Record:
    return dict(data)


def _data(data: Any) -> list[Record]:
    return [dict(x) for x in data["data"]]


def _nothing(data: Any) -> None:
    return None


def _weights(raw: Mapping[str, Any]) -> Weights:
    return {int(v): float(w) for v, w in raw.items()}


# -- tenants ---------------------------------------------------------------------------


def create_tenant(
    name: str,
    *,
    adapters: list[str],
    rate_limit_rps: float = 10.0,
    burst: int = 20,
    max_tokens: int = 1024,
    tokens_per_minute: int = 0,
    max_concurrent: int = 0,
    key_expires_in_s: float | None = None,
) -> Call[Record]:
    """``{"tenant": {...}, "api_key": "dg-...", "key_id", "expires_at"}`` (the key is shown
    only here; it expires ``key_expires_in_s`` from now if given); 409 if it exists.

    ``tokens_per_minute`` and ``max_concurrent`` of 0 leave those limits off."""
    body: dict[str, Any] = {
        "name": name,
        "adapters": list(adapters),
        "rate_limit_rps": rate_limit_rps,
        "burst": burst,
        "max_tokens": max_tokens,
        "tokens_per_minute": tokens_per_minute,
        "max_concurrent": max_concurrent,
    }
    if key_expires_in_s is not None:
        body["key_expires_in_s"] = key_expires_in_s
    return Call("POST", "/admin/tenants", _record, body)


def update_tenant(name: str, **changes: Any) -> Call[Record]:
    """Change a tenant's ``adapters`` or limits (``rate_limit_rps``, ``burst``,
    ``max_tokens``, ``tokens_per_minute``, ``max_concurrent``); the tenant as stored."""
    return Call("PATCH", f"/admin/tenants/{_seg(name)}", _record, dict(changes))


def list_tenants() -> Call[list[Record]]:
    return Call("GET", "/admin/tenants", _data)


def delete_tenant(name: str) -> Call[None]:
    return Call("DELETE", f"/admin/tenants/{_seg(name)}", _nothing)


def add_api_key(tenant: str, *, expires_in_s: float | None = None) -> Call[str]:
    """A new API key for an existing tenant (expiring ``expires_in_s`` from now if given);
    :func:`list_api_keys` shows its ``key_id``."""
    body = None if expires_in_s is None else {"expires_in_s": expires_in_s}
    return Call("POST", f"/admin/tenants/{_seg(tenant)}/keys", lambda d: str(d["api_key"]), body)


def list_api_keys(tenant: str) -> Call[list[Record]]:
    """``[{"key_id", "tenant", "prefix", "created_at", "expires_at", "expired"}]``."""
    return Call("GET", f"/admin/tenants/{_seg(tenant)}/keys", _data)


def revoke_api_key(tenant: str, key_id: str) -> Call[None]:
    """Revoke one key (404 ``key_not_found``); the tenant's other keys keep working."""
    return Call("DELETE", f"/admin/tenants/{_seg(tenant)}/keys/{_seg(key_id)}", _nothing)


# -- adapter versions ------------------------------------------------------------------


def register_version(
    adapter: str,
    path: str,
    *,
    version: int | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Call[Record]:
    """Load a PEFT directory into every replica; the new version's record."""
    body: dict[str, Any] = {"path": path, "meta": dict(meta or {})}
    if version is not None:
        body["version"] = version
    return Call("POST", f"/admin/adapters/{_seg(adapter)}/versions", _record, body)


def list_versions(adapter: str | None = None) -> Call[list[Record]]:
    params = {"adapter": adapter} if adapter else {}
    return Call("GET", "/admin/adapters", _data, params=params)


def get_adapter(adapter: str) -> Call[Record]:
    """``{"name", "training_tenants": [..], "created_at", "versions": [..]}``; 404 if unknown."""
    return Call("GET", f"/admin/adapters/{_seg(adapter)}", _record)


def set_training_tenants(adapter: str, tenants: list[str]) -> Call[list[str]]:
    """Opt exactly ``tenants`` in to train ``adapter`` with their traffic (``[]``: none);
    the opted-in tenants as stored. 404 unknown adapter or tenant, 400 a tenant that may
    not use the adapter."""
    return Call(
        "PUT",
        f"/admin/adapters/{_seg(adapter)}/training-tenants",
        lambda d: [str(t) for t in d["training_tenants"]],
        {"tenants": list(tenants)},
    )


def retire_version(adapter: str, version: int) -> Call[Record]:
    """Unload a version that no route weights any more (409 otherwise)."""
    return Call("DELETE", f"/admin/adapters/{_seg(adapter)}/versions/{version}", _record)


# -- routes ----------------------------------------------------------------------------


def set_route(adapter: str, weights: Mapping[int, float]) -> Call[Weights]:
    """Set an adapter's route; the weights the gateway stored, by version."""
    body = {"weights": {str(v): w for v, w in weights.items()}}
    return Call("PUT", f"/admin/routes/{_seg(adapter)}", lambda d: _weights(d["weights"]), body)


def get_routes() -> Call[dict[str, Weights]]:
    """Every route: adapter -> version -> weight."""
    return Call(
        "GET", "/admin/routes", lambda d: {a: _weights(ws) for a, ws in d["routes"].items()}
    )


def delete_route(adapter: str) -> Call[None]:
    return Call("DELETE", f"/admin/routes/{_seg(adapter)}", _nothing)


# -- replicas --------------------------------------------------------------------------


def replicas() -> Call[list[Record]]:
    return Call("GET", "/admin/replicas", _data)


def refresh() -> Call[Record]:
    """Reload the gateway's snapshot and poll every replica now."""
    return Call("POST", "/admin/refresh", _record)
