"""Control-plane state: tenants, API keys, adapter versions and routes (SQLAlchemy)."""

from driftgate.state.models import (
    ALL_ADAPTERS,
    ControlSnapshot,
    TenantInfo,
    VersionInfo,
    VersionState,
)
from driftgate.state.store import StateStore, hash_key, make_engine, new_api_key

__all__ = [
    "ALL_ADAPTERS",
    "ControlSnapshot",
    "StateStore",
    "TenantInfo",
    "VersionInfo",
    "VersionState",
    "hash_key",
    "make_engine",
    "new_api_key",
]
