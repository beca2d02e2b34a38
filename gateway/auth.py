"""API keys and the admin key: hashed keys, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from driftgate.core.credentials import bearer_token
from driftgate.core.errors import Unauthorized
from driftgate.core.state.models import TenantInfo

_PREFIX = 16
#: Most distinct valid Authorization values remembered per key index (one index lives
#: about one state refresh, so the cache starts over every second or so).
_CACHE_MAX = 4096


class KeyIndex:
    """Tenants by API-key hash.

    Looked up by the first 16 hex digits of the SHA-256, then the whole stored
    digest is compared with :func:`hmac.compare_digest`, so no secret-dependent
    ``==`` decides whether a key is valid. A header value found valid once is
    remembered (bounded), so a client's later requests skip the hashing; invalid
    values are never cached.
    """

    __slots__ = ("_by_prefix", "_valid")

    def __init__(self, by_hash: Mapping[str, TenantInfo]) -> None:
        self._by_prefix: dict[str, list[tuple[bytes, TenantInfo]]] = {}
        self._valid: dict[str, TenantInfo] = {}
        for digest, tenant in by_hash.items():
            self._by_prefix.setdefault(digest[:_PREFIX], []).append((digest.encode(), tenant))

    def tenant_for(self, authorization: str | None) -> TenantInfo:
        if authorization is not None:
            known = self._valid.get(authorization)
            if known is not None:
                return known
        token = bearer_token(authorization)
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest().encode()
        found: TenantInfo | None = None
        for stored, tenant in self._by_prefix.get(digest[:_PREFIX].decode(), ()):
            if hmac.compare_digest(stored, digest):
                found = tenant
        if found is None:
            raise Unauthorized("invalid API key")
        if authorization is not None and len(self._valid) < _CACHE_MAX:
            self._valid[authorization] = found
        return found
