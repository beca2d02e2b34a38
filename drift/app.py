"""The drift service's HTTP surface: ``create_app(settings)`` (routes parse, call, answer)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from drift.batch import parse_batch
from drift.embeddings import EmbeddingMonitor, MiniLMEmbedder
from drift.metrics import DriftMetrics
from drift.review_queue import ReviewQueue
from drift.service import DriftService
from drift.settings import DriftSettings
from drift.store import DriftStore, FeedbackWrite
from drift.trigger import TriggerManager, make_launcher
from driftgate.core.body_limit import BodyLimit
from driftgate.core.credentials import check_admin, check_key, secret_value
from driftgate.core.errors import (
    DriftgateError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    Unavailable,
    install_error_handlers,
)
from driftgate.core.events import MAX_BATCH_EVENTS, FeedbackEvent, ReviewLabel
from driftgate.core.gc_tuning import tuned_for_service
from driftgate.core.limits import INT_COLUMN_MAX
from driftgate.core.loops import run_forever

log = logging.getLogger(__name__)

#: ``POST /v1/drift/reference`` takes a few fields.
REFERENCE_MAX_BODY_BYTES = 64 * 1024
#: Most review items one ``GET /v1/review/items`` returns.
REVIEW_MAX_LIMIT = 100


class UnprocessableEvent(DriftgateError):
    """A body that is JSON but does not match the event models."""

    status_code = 422
    error_type = "invalid_request_error"
    code = "invalid_event"


class PinReference(BaseModel):
    """``POST /v1/drift/reference``: make stored events of a time range the reference."""

    model_config = ConfigDict(extra="forbid")

    adapter: str = Field(min_length=1, max_length=128)
    version: int = Field(ge=0, le=INT_COLUMN_MAX, description="0 for the base model")
    since: float | None = None
    until: float | None = None


def _json(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


@dataclass
class _State:
    service: DriftService
    tasks: list[asyncio.Task[None]]


async def _read_body(request: Request, limit: int, metrics: DriftMetrics) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        metrics.rejected.labels("too_large").inc()
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            metrics.rejected.labels("too_large").inc()
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _invalid(exc: ValidationError, metrics: DriftMetrics) -> DriftgateError:
    errors = exc.errors(include_url=False)
    first = errors[0] if errors else {"type": "invalid", "loc": (), "msg": "invalid body"}
    if first["type"] == "json_invalid":
        metrics.rejected.labels("invalid_json").inc()
        return InvalidRequest(f"body is not valid JSON: {first['msg']}", code="invalid_json")
    loc = ".".join(str(p) for p in first["loc"]) or None
    if first["type"] == "too_long" and loc == "events":
        metrics.rejected.labels("too_many_events").inc()
        return PayloadTooLarge(f"a batch holds at most {MAX_BATCH_EVENTS} events", param="events")
    metrics.rejected.labels("invalid_event").inc()
    message = f"{loc}: {first['msg']}" if loc else str(first["msg"])
    return UnprocessableEvent(message, param=loc)


def _background(service: DriftService, settings: DriftSettings) -> list[asyncio.Task[None]]:
    async def retention() -> None:
        n_req, n_fb = await service.purge()
        if n_req or n_fb:
            log.info("retention: deleted %d request events, %d feedback", n_req, n_fb)

    # Disk or database trouble, or a bug in one step, must not end a loop.
    loops = service.metrics.loops
    tasks = [
        asyncio.create_task(
            run_forever(
                "retention",
                retention,
                settings.retention_interval_s,
                metrics=loops,
                expected=(OSError, SQLAlchemyError),
            ),
            name="drift-retention",
        )
    ]
    if service.embeddings is not None:
        tasks.append(
            asyncio.create_task(
                run_forever(
                    "embeddings",
                    service.embedding_step,
                    0.0,
                    metrics=loops,
                    period_s=service.embeddings.idle_s,
                ),
                name="drift-embeddings",
            )
        )
    return tasks


def create_app(settings: DriftSettings | None = None) -> FastAPI:
    """The drift service app; nothing is opened before its lifespan starts."""
    cfg = settings or DriftSettings()
    metrics = DriftMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = DriftStore.from_url(cfg.state_url, sqlite_synchronous=cfg.sqlite_synchronous)
        await asyncio.to_thread(store.create_all)
        trigger = TriggerManager(make_launcher(cfg), store, metrics, cfg.trigger_cooldown_s)
        embeddings = None
        if cfg.embeddings:
            embeddings = EmbeddingMonitor(
                MiniLMEmbedder(),
                metrics,
                cfg.reference_size,
                cfg.window_size,
                batch=cfg.embedding_batch,
                queue_size=cfg.embedding_queue,
                alpha=cfg.embedding_alpha,
                permutations=cfg.embedding_permutations,
                max_sample=cfg.embedding_test_sample,
            )
        review = ReviewQueue(
            store,
            cfg.review_budget,
            round_size=cfg.review_round,
            embedder=None if embeddings is None else embeddings.embedder,
            centroid=None if embeddings is None else embeddings.reference_centroid,
            reference=None if embeddings is None else embeddings.reference_sample,
        )
        service = DriftService(cfg, store, metrics, trigger, embeddings, review)
        replayed = await asyncio.to_thread(service.rebuild)
        log.info("drift state rebuilt from %d stored events", replayed)
        app.state.drift = _State(service, _background(service, cfg))
        try:
            with tuned_for_service(cfg.gc_gen0_threshold):
                yield
        finally:
            for task in app.state.drift.tasks:
                task.cancel()
            await asyncio.gather(*app.state.drift.tasks, return_exceptions=True)
            await service.review_fills_done()
            await trigger.close()
            store.close()

    app = FastAPI(title="driftgate drift service", lifespan=lifespan)
    install_error_handlers(app)
    # The size limit runs before any credential check or parsing (docs/SECURITY.md).
    app.add_middleware(
        BodyLimit,
        limit=cfg.max_body_bytes,
        prefixes={"/v1/drift/reference": REFERENCE_MAX_BODY_BYTES},
        on_reject=lambda: metrics.rejected.labels("too_large").inc(),
    )

    def service_of(request: Request) -> DriftService:
        state: _State = request.app.state.drift
        return state.service

    # Who may call what: the loop's input (events, feedback) only the gateway, with the
    # ingest key, since whatever it accepts can become training data; drift status and
    # reference pins only operators, with the admin key: status names every tenant's
    # adapters and triggers, and a pin can hide real drift. /metrics and the health
    # probes stay open to the network (Prometheus, the kubelet; a NetworkPolicy guards).
    ingest_key = secret_value(cfg.ingest_key)
    admin_key = secret_value(cfg.admin_key)

    def require_ingest(request: Request) -> None:
        try:
            check_key(request.headers.get("authorization"), ingest_key, what="ingest")
        except DriftgateError:
            metrics.rejected.labels("unauthorized").inc()
            raise

    def require_admin(request: Request) -> None:
        check_admin(request.headers.get("authorization"), admin_key)

    @app.post("/v1/events", status_code=202)
    async def post_events(request: Request) -> Response:
        require_ingest(request)
        body = await _read_body(request, cfg.max_body_bytes, metrics)
        try:
            batch = parse_batch(body)
        except ValidationError as exc:
            raise _invalid(exc, metrics) from None
        accepted, duplicates = await service_of(request).ingest(batch)
        return _json({"accepted": accepted, "duplicates": duplicates}, status_code=202)

    @app.post("/v1/feedback", status_code=202)
    async def post_feedback(request: Request) -> Response:
        require_ingest(request)
        body = await _read_body(request, cfg.max_body_bytes, metrics)
        try:
            event = FeedbackEvent.model_validate_json(body)
        except ValidationError as exc:
            raise _invalid(exc, metrics) from None
        outcome = await service_of(request).feedback(event)
        answer = {
            "feedback_id": event.event_id,
            "duplicate": outcome is FeedbackWrite.DUPLICATE,
            "replaced": outcome is FeedbackWrite.REPLACED,
        }
        return _json(answer, status_code=202)

    # The review queue: the gateway (ingest key) reads and labels items for its tenants,
    # passing the tenant; a label becomes training data, as feedback does.
    @app.get("/v1/review/items")
    async def review_items(
        request: Request, adapter: str | None = None, tenant: str | None = None, limit: str = "20"
    ) -> Response:
        # Parameters are strings, parsed after the key check: a malformed one is no reason
        # to answer a caller without the key anything but 401.
        require_ingest(request)
        if not limit.isdigit() or not 1 <= int(limit) <= REVIEW_MAX_LIMIT:
            raise InvalidRequest(f"limit must be in [1, {REVIEW_MAX_LIMIT}]", param="limit")
        review = service_of(request).review
        items = (
            []
            if review is None
            else await asyncio.to_thread(review.items, adapter, tenant, int(limit))
        )
        return _json({"object": "list", "data": items})

    @app.post("/v1/review/items/{item_id}/label")
    async def review_label(request: Request, item_id: str) -> Response:
        require_ingest(request)
        if not item_id.isdigit() or int(item_id) > INT_COLUMN_MAX:
            raise NotFound("no review item with this id", param="id", code="not_found")
        body = await _read_body(request, cfg.max_body_bytes, metrics)
        try:
            answer = ReviewLabel.model_validate_json(body)
        except ValidationError as exc:
            raise _invalid(exc, metrics) from None
        stored = await service_of(request).label_review(
            int(item_id), answer.tenant, answer.label, answer.correction
        )
        metrics.ingested.labels("review_label").inc()
        return _json(stored, status_code=202)

    @app.get("/v1/drift/status")
    async def drift_status(request: Request, adapter: str | None = None) -> Response:
        require_admin(request)
        service = service_of(request)
        body: dict[str, Any] = service.status()
        body["recent_alarms"] = await asyncio.to_thread(service.store.alarms, adapter, 50)
        body["recent_triggers"] = await asyncio.to_thread(service.store.triggers, adapter, 50)
        return _json(body)

    @app.post("/v1/drift/reference")
    async def pin_reference(request: Request) -> Response:
        require_admin(request)
        body = await _read_body(request, REFERENCE_MAX_BODY_BYTES, metrics)
        try:
            pin = PinReference.model_validate_json(body)
        except ValidationError as exc:
            raise _invalid(exc, metrics) from None
        signals = await service_of(request).pin_reference(
            pin.adapter, pin.version, pin.since, pin.until
        )
        return _json({"adapter": pin.adapter, "version": pin.version, "signals": signals})

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> Response:
        try:
            await asyncio.to_thread(service_of(request).store.ping)
        except Exception as exc:  # any database failure means not ready; say which
            log.warning("store not ready: %s", exc)
            message = f"store unavailable: {type(exc).__name__}"
            raise Unavailable(message, code="store_down") from exc
        return _json({"status": "ready"})

    return app
