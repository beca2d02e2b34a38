"""The review queue for tenants: ``GET /v1/review/items`` and ``POST /v1/review/items/{id}``.

The drift service picks, when a version's drift is confirmed, the requests most worth a
label (``drift/review_queue.py``); a tenant reads and labels the ones among its own
requests here, with its API key. The same trust rules as feedback: the tenant is the
key's, never the body's; another tenant's item answers 404 ``not_found`` as an unknown
one would; calls share the tenant's feedback rate limit. A label is stored as the
tenant's feedback on the request (replacing an earlier vote), marked as a review label.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp
import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from driftgate.core.errors import (
    DriftgateError,
    InvalidRequest,
    NotFound,
    Unavailable,
)
from driftgate.core.events import ReviewLabel
from gateway.asgi_io import read_body
from gateway.client_body import parse_tenant_body
from gateway.feedback import error_code
from gateway.proxy import error_response
from gateway.runtime import Gateway

log = logging.getLogger(__name__)

router = APIRouter()

_FIELDS = frozenset({"label", "correction"})
_JSON = {"Content-Type": "application/json"}
#: Most items one call returns (the drift service's bound too).
MAX_LIMIT = 100


def build_label(body: bytes, tenant: str) -> ReviewLabel:
    """The review label of a client body: 400 if not a JSON object, 422 if invalid."""
    return parse_tenant_body(body, _FIELDS, ReviewLabel, tenant)


def unknown_item() -> NotFound:
    return NotFound("no review item with this id", param="id", code="not_found")


def _limit(raw: str | None) -> int:
    if raw is None:
        return 20
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be an integer in [1, {MAX_LIMIT}]", param="limit")
    return int(raw)


async def _tenant(gw: Gateway, request: Request) -> str:
    """The caller's tenant, charged one token of its feedback rate limit."""
    t = gw.keys.tenant_for(request.headers.get("authorization"))
    await gw.limits.admit_feedback(t, time.perf_counter())
    return t.name


async def _drift(gw: Gateway, method: str, path: str, **kw: Any) -> tuple[int, bytes]:
    """One call to the drift service's review routes; 503 when it cannot answer."""
    if gw.settings.drift_url is None:
        raise Unavailable("no review queue: no drift service configured", code="drift_off")
    timeout = aiohttp.ClientTimeout(total=gw.settings.feedback_timeout_s)
    try:
        async with gw.drift_session.request(
            method, gw.settings.drift_url + path, timeout=timeout, **kw
        ) as resp:
            return resp.status, await resp.read()
    except (aiohttp.ClientError, TimeoutError) as e:
        log.warning("drift service unreachable for the review queue: %s", e)
        raise Unavailable(
            "review queue unavailable (drift service unreachable); retry later",
            code="drift_unavailable",
        ) from None


def _refused(status: int, body: bytes) -> Unavailable:
    log.warning("drift service refused a review call: HTTP %d %s", status, body[:200])
    return Unavailable(
        f"review queue unavailable (drift service answered {status}); retry later",
        code="drift_unavailable",
    )


@router.get("/v1/review/items")
async def review_items(request: Request) -> Response:
    gw: Gateway = request.state.gw
    try:
        tenant = await _tenant(gw, request)
        adapter = request.query_params.get("adapter")
        if not adapter:
            raise InvalidRequest("adapter is required", param="adapter")
        limit = _limit(request.query_params.get("limit"))
        params = {"adapter": adapter, "tenant": tenant, "limit": str(limit)}
        status, body = await _drift(gw, "GET", "/v1/review/items", params=params)
        if status != 200:
            raise _refused(status, body)
        try:
            items = orjson.loads(body)["data"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise _refused(status, body) from None
    except DriftgateError as exc:
        return error_response(exc)
    return Response(orjson.dumps({"object": "list", "data": items}), media_type="application/json")


@router.post("/v1/review/items/{item_id}", status_code=202)
async def label_item(request: Request, item_id: str) -> Response:
    gw: Gateway = request.state.gw
    try:
        tenant = await _tenant(gw, request)
        body = await read_body(
            request.receive, request.headers.get("content-length"), gw.settings.max_body_bytes
        )
        answer = build_label(body, tenant)
        if not item_id.isdigit() or len(item_id) > 18:
            raise unknown_item()
        status, reply = await _drift(
            gw,
            "POST",
            f"/v1/review/items/{int(item_id)}/label",
            data=answer.model_dump_json(exclude_none=True).encode(),
            headers=_JSON,
        )
        if status == 404 and error_code(reply) == "not_found":
            raise unknown_item()
        if not 200 <= status < 300:
            raise _refused(status, reply)
    except DriftgateError as exc:
        return error_response(exc)
    try:
        stored = orjson.loads(reply)
    except orjson.JSONDecodeError:
        stored = {}
    out = {"id": int(item_id), "request_id": stored.get("request_id")}
    return Response(orjson.dumps(out), status_code=202, media_type="application/json")
