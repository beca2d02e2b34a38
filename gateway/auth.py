"""API keys and the admin key: hashed keys, compared in constant time; expiry per request."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from driftgate.core.credentials import bearer_token
from driftgate.core.errors import Unauthorized
from driftgate.core.state.models import TenantInfo

_PREFIX = 16
#: Most distinct valid Authorization values remembered per key index (one index lives
#: about one state refresh, so the cache starts over every second or so).
_CACHE_MAX = 4096

#: A key found valid: its tenant, and when it expires (Unix seconds; ``None``: never).
_Known = tuple[TenantInfo, float | None]


class KeyIndex:
    """Tenants by API-key hash.

    Looked up by the first 16 hex digits of the SHA-256, then the whole stored
    digest is compared with :func:`hmac.compare_digest`, so no secret-dependent
    ``==`` decides whether a key is valid. A header value found valid once is
    remembered (bounded), so a client's later requests skip the hashing; invalid
    values are never cached. A key's expiry is checked on every request, cached or
    not (one clock read, only for keys that expire), against ``clock``.
    """

    __slots__ = ("_by_prefix", "_clock", "_valid")

    def __init__(
        self,
        by_hash: Mapping[str, TenantInfo],
        expiry: Mapping[str, float] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._by_prefix: dict[str, list[tuple[bytes, _Known]]] = {}
        self._valid: dict[str, _Known] = {}
        self._clock = clock
        expiry = expiry or {}
        for digest, tenant in by_hash.items():
            known = (tenant, expiry.get(digest))
            self._by_prefix.setdefault(digest[:_PREFIX], []).append((digest.encode(), known))

    def tenant_for(self, authorization: str | None) -> TenantInfo:
        if authorization is not None:
            cached = self._valid.get(authorization)
            if cached is not None:
                return self._unexpired(cached)
        token = bearer_token(authorization)
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest().encode()
        found: _Known | None = None
        for stored, known in self._by_prefix.get(digest[:_PREFIX].decode(), ()):
            if hmac.compare_digest(stored, digest):
                found = known
        if found is None:
            raise Unauthorized("invalid API key")
        if authorization is not None and len(self._valid) < _CACHE_MAX:
            self._valid[authorization] = found
        return self._unexpired(found)

    def _unexpired(self, known: _Known) -> TenantInfo:
        tenant, expires_at = known
        if expires_at is not None and self._clock() >= expires_at:
            # Same status and code as an unknown key: a client handles both alike.
            raise Unauthorized("API key expired")
        return tenant
