"""Control-plane state: tenants, API keys, adapter versions and routes (SQLAlchemy)."""

from driftgate.core.state.engine import make_engine
from driftgate.core.state.models import (
    ALL_ADAPTERS,
    AdapterInfo,
    ControlSnapshot,
    TenantInfo,
    VersionInfo,
    VersionState,
)
from driftgate.core.state.store import StateStore, hash_key, new_api_key

__all__ = [
    "ALL_ADAPTERS",
    "AdapterInfo",
    "ControlSnapshot",
    "StateStore",
    "TenantInfo",
    "VersionInfo",
    "VersionState",
    "hash_key",
    "make_engine",
    "new_api_key",
]
