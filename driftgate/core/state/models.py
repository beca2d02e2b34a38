"""Plain, immutable values read from the state store (no SQLAlchemy objects leak out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: Allow-list entry meaning "every adapter".
ALL_ADAPTERS = "*"


class VersionState(StrEnum):
    LOADING = "loading"  # registered, being loaded into the replicas
    READY = "ready"  # loaded everywhere; may be routed and pinned
    FAILED = "failed"  # refused (did not load somewhere); never served
    RETIRED = "retired"  # unloaded after a swap; never served again


@dataclass(frozen=True, slots=True)
class TenantInfo:
    id: int
    name: str
    adapters: tuple[str, ...]
    rate_limit_rps: float
    burst: int
    max_tokens: int
    created_at: float = 0.0
    #: Prompt + completion tokens per sliding minute (0: unlimited; ``gateway/limits.py``).
    tokens_per_minute: int = 0
    #: Requests in flight at once across replicas (0: unlimited).
    max_concurrent: int = 0

    @property
    def all_adapters(self) -> bool:
        return ALL_ADAPTERS in self.adapters

    def allows(self, adapter: str) -> bool:
        return self.all_adapters or adapter in self.adapters

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "adapters": list(self.adapters),
            "rate_limit_rps": self.rate_limit_rps,
            "burst": self.burst,
            "max_tokens": self.max_tokens,
            "tokens_per_minute": self.tokens_per_minute,
            "max_concurrent": self.max_concurrent,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What may be shown of a tenant's API key: never the key, never its hash."""

    key_id: str
    tenant: str
    #: The key's first characters, to recognise it.
    prefix: str
    created_at: float
    #: Unix seconds after which the gateway refuses it; ``None``: never expires.
    expires_at: float | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "tenant": self.tenant,
            "prefix": self.prefix,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "expired": self.expired(now),
        }


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just issued: the secret (shown to the caller once, stored only hashed)."""

    secret: str = field(repr=False)
    info: ApiKeyInfo


@dataclass(frozen=True, slots=True)
class AdapterInfo:
    """A logical adapter and the tenants whose traffic may train it (empty: none may)."""

    name: str
    training_tenants: tuple[str, ...] = ()
    created_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "training_tenants": list(self.training_tenants),
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class VersionInfo:
    adapter: str
    version: int
    path: str
    state: VersionState
    meta: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "adapter": self.adapter,
            "version": self.version,
            "path": self.path,
            "state": self.state.value,
            "meta": dict(self.meta),
            "error": self.error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class ControlSnapshot:
    """Everything the gateway's hot path needs, read in one transaction."""

    #: API key hash -> tenant
    tenants_by_key_hash: Mapping[str, TenantInfo]
    #: adapter -> version -> info (every state)
    versions: Mapping[str, Mapping[int, VersionInfo]]
    #: adapter -> version -> weight (only weights > 0)
    routes: Mapping[str, Mapping[int, float]]
    taken_at: float = 0.0
    #: API key hash -> Unix seconds it expires at (only the keys that expire)
    key_expiry: Mapping[str, float] = field(default_factory=dict)

    @property
    def tenants(self) -> list[TenantInfo]:
        seen: dict[int, TenantInfo] = {}
        for t in self.tenants_by_key_hash.values():
            seen[t.id] = t
        return sorted(seen.values(), key=lambda t: t.id)
