"""Tenant API keys (``dg_api_keys``): issue, list, revoke one; optional expiry.

A key is shown in clear once, when issued, and stored as its SHA-256. Each key has a
public id (``key_`` + 16 hex digits) that listings show and ``revoke`` takes, and
optionally ``expires_at`` (Unix seconds): the gateway refuses the key from then on
(``gateway.auth.KeyIndex``), while the row stays listed as expired until revoked.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from driftgate.core.errors import InvalidRequest, NotFound
from driftgate.core.state.models import ApiKeyInfo, IssuedKey
from driftgate.core.state.schema.control import ApiKeyRow, TenantRow, new_key_id

API_KEY_PREFIX = "dg-"
#: Characters of a key kept in clear (``prefix``), enough to recognise it in a listing.
SHOWN_CHARS = 8


def new_api_key() -> str:
    """A fresh API key (shown once to the caller, stored only as its hash)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _info(row: ApiKeyRow, tenant: str) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=row.key_id,
        tenant=tenant,
        prefix=row.prefix,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def tenant_row(s: Session, tenant: str) -> TenantRow:
    row = s.scalar(select(TenantRow).where(TenantRow.name == tenant))
    if row is None:
        raise NotFound(f"tenant {tenant!r} not found", code="tenant_not_found")
    return row


def issue(s: Session, tenant: TenantRow, *, expires_at: float | None = None) -> IssuedKey:
    """Add a new key to ``tenant`` (flushed); ``expires_at`` must be finite if given."""
    if expires_at is not None and not math.isfinite(expires_at):
        raise InvalidRequest("expires_at must be a finite number", param="expires_at")
    key = new_api_key()
    row = ApiKeyRow(
        key_hash=hash_key(key),
        key_id=new_key_id(),
        tenant_id=tenant.id,
        prefix=key[:SHOWN_CHARS],
        created_at=time.time(),
        expires_at=expires_at,
    )
    s.add(row)
    s.flush()
    return IssuedKey(secret=key, info=_info(row, tenant.name))


def list_keys(s: Session, tenant: str) -> list[ApiKeyInfo]:
    """The keys of ``tenant``, oldest first (404 ``tenant_not_found``)."""
    row = tenant_row(s, tenant)
    q = (
        select(ApiKeyRow)
        .where(ApiKeyRow.tenant_id == row.id)
        .order_by(ApiKeyRow.created_at, ApiKeyRow.key_id)
    )
    return [_info(k, row.name) for k in s.scalars(q)]


def revoke(s: Session, tenant: str, key_id: str) -> None:
    """Delete one key of ``tenant``; 404 ``key_not_found`` if it has no key ``key_id``
    (another tenant's key included: the answer does not tell it exists)."""
    row = tenant_row(s, tenant)
    deleted = s.execute(
        delete(ApiKeyRow).where(ApiKeyRow.tenant_id == row.id, ApiKeyRow.key_id == key_id)
    )
    if deleted.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound(f"tenant {tenant!r} has no key {key_id!r}", code="key_not_found")
