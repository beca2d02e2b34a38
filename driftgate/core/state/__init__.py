"""Control-plane state: tenants, API keys, adapter versions and routes (SQLAlchemy)."""

from driftgate.core.state.api_keys import hash_key, new_api_key
from driftgate.core.state.engine import make_engine
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
from driftgate.core.state.store import StateStore

__all__ = [
    "ALL_ADAPTERS",
    "AdapterInfo",
    "ApiKeyInfo",
    "ControlSnapshot",
    "IssuedKey",
    "StateStore",
    "TenantInfo",
    "VersionInfo",
    "VersionState",
    "hash_key",
    "make_engine",
    "new_api_key",
]
