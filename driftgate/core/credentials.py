"""Bearer credentials every service checks: the token of a header, the admin key."""

from __future__ import annotations

import hmac

from pydantic import SecretStr

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


def check_key(authorization: str | None, expected: str | None, *, what: str) -> None:
    """401 unless the header carries ``expected`` (compared in constant time, so no
    secret-dependent ``==`` decides); no configured key refuses every caller.

    >>> check_key("Bearer s3cret", "s3cret", what="service")
    >>> check_key("Bearer guess", "s3cret", what="service")
    Traceback (most recent call last):
    ...
    driftgate.core.errors.Unauthorized: invalid service key
    """
    if not expected:
        raise Unauthorized(f"disabled: no {what} key is configured on this service")
    token = bearer_token(authorization)
    if not hmac.compare_digest(token.encode("utf-8", "surrogateescape"), expected.encode()):
        raise Unauthorized(f"invalid {what} key")


def check_admin(authorization: str | None, admin_key: str | None) -> None:
    """401 unless the header carries the admin key; no configured key disables admin routes."""
    check_key(authorization, admin_key, what="admin")


def secret_value(secret: SecretStr | None) -> str | None:
    """The plain value of an optional secret setting (None or empty: None)."""
    return (secret.get_secret_value() or None) if secret is not None else None


def bearer_headers(secret: SecretStr | None) -> dict[str, str]:
    """``Authorization: Bearer <secret>`` for a client session; no header without one.

    >>> bearer_headers(SecretStr("k")), bearer_headers(None)
    ({'Authorization': 'Bearer k'}, {})
    """
    value = secret_value(secret)
    return {"Authorization": f"Bearer {value}"} if value else {}
