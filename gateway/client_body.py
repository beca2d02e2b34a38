"""A tenant's JSON body read into one of the shared event models (feedback, review labels):
400 when it is not a JSON object, 422 naming the field when it does not validate."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from driftgate.core.errors import InvalidRequest, UnprocessableBody

Model = TypeVar("Model")


def parse_tenant_body(
    body: bytes, fields: Collection[str], build: Callable[..., Model], tenant: str
) -> Model:
    """``build(tenant=tenant, **body)`` for a body holding only ``fields``; the tenant always
    comes from the caller's key, never from the body."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UnprocessableBody(f"unknown field {unknown[0]!r}", param=unknown[0])
    try:
        return build(tenant=tenant, **data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or None
        msg = str(first.get("msg", "invalid value"))
        raise UnprocessableBody(f"{param}: {msg}" if param else msg, param=param) from None
