"""``POST /v1/feedback``: acknowledged (202) only after the drift service committed it.

Only on the caller's own requests: an id this gateway did not issue to the calling
tenant (another tenant's, a made-up one) answers 404 ``not_found``, as an unknown one
would (``gateway/request_ids.py``). Rate-limited per tenant with the tenant's request
rate and burst, in buckets of its own. The drift service keeps one vote per request
and tenant: a later feedback replaces the earlier one whole.
"""

from __future__ import annotations

import logging
import time

import aiohttp
import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from driftgate.core.errors import (
    DriftgateError,
    NotFound,
    Unavailable,
)
from driftgate.core.events import FeedbackEvent
from gateway.asgi_io import read_body
from gateway.client_body import parse_tenant_body
from gateway.proxy import error_response
from gateway.runtime import Gateway

log = logging.getLogger(__name__)

router = APIRouter()

_FIELDS = frozenset({"request_id", "score", "label", "correction"})
_JSON = {"Content-Type": "application/json"}


def build_feedback(body: bytes, tenant: str) -> FeedbackEvent:
    """The feedback event of a client body: 400 if not a JSON object, 422 if invalid."""
    return parse_tenant_body(body, _FIELDS, FeedbackEvent, tenant)


def unknown_request() -> NotFound:
    return NotFound("no request with this id", param="request_id", code="not_found")


def error_code(body: bytes) -> object:
    """The ``code`` of an OpenAI-shaped error body (None for anything else)."""
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return error.get("code") if isinstance(error, dict) else None


async def _store(gw: Gateway, event: FeedbackEvent) -> str:
    """POST the event to the drift service; its feedback id, or 503."""
    if gw.settings.drift_url is None:
        raise Unavailable("feedback is not stored: no drift service configured", code="drift_off")
    timeout = aiohttp.ClientTimeout(total=gw.settings.feedback_timeout_s)
    try:
        async with gw.drift_session.post(
            gw.settings.drift_url + "/v1/feedback",
            data=event.model_dump_json().encode(),
            headers=_JSON,
            timeout=timeout,
        ) as resp:
            body = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as e:
        log.warning("drift service unreachable for feedback: %s", e)
        raise Unavailable(
            "feedback could not be stored (drift service unreachable); retry later",
            code="drift_unavailable",
        ) from None
    if status == 404 and error_code(body) == "not_found":  # stored under another tenant
        raise unknown_request()
    if not 200 <= status < 300:
        log.warning("drift service refused feedback: HTTP %d %s", status, body[:200])
        raise Unavailable(
            f"feedback could not be stored (drift service answered {status}); retry later",
            code="drift_unavailable",
        )
    try:
        answer = orjson.loads(body)
        return str(answer.get("feedback_id") or event.event_id)
    except (orjson.JSONDecodeError, AttributeError):
        return event.event_id


@router.post("/v1/feedback", status_code=202)
async def feedback(request: Request) -> Response:
    gw: Gateway = request.state.gw
    tenant = "-"
    try:
        t = gw.keys.tenant_for(request.headers.get("authorization"))
        tenant = t.name
        await gw.limits.admit_feedback(t, time.perf_counter())
        body = await read_body(
            request.receive, request.headers.get("content-length"), gw.settings.max_body_bytes
        )
        event = build_feedback(body, tenant)
        if not gw.request_ids.issued_to(event.request_id, tenant):
            raise unknown_request()
        feedback_id = await _store(gw, event)
    except DriftgateError as exc:
        gw.metrics.feedback.labels(tenant, str(exc.status_code)).inc()
        return error_response(exc)
    gw.metrics.feedback.labels(tenant, "202").inc()
    return Response(
        orjson.dumps({"id": feedback_id, "request_id": event.request_id}),
        status_code=202,
        media_type="application/json",
    )
