"""Bearer credentials every service checks: the token of a header, the admin key."""

from __future__ import annotations

import hmac

from driftgate.core.errors import Unauthorized


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or 401."""
    if not authorization:
        raise Unauthorized("missing API key (Authorization: Bearer <key>)")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("malformed Authorization header; expected 'Bearer <key>'")
    return token


def check_admin(authorization: str | None, admin_key: str | None) -> None:
    """401 unless the header carries ``admin_key`` (compared in constant time, so no
    secret-dependent ``==`` decides); no configured key disables the admin API."""
    if not admin_key:
        raise Unauthorized("the admin API is disabled (no admin key configured)")
    token = bearer_token(authorization)
    if not hmac.compare_digest(token.encode("utf-8", "surrogateescape"), admin_key.encode()):
        raise Unauthorized("invalid admin key")
