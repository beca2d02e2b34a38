"""Request events toward the drift service: bounded queue, batched, never blocking.

``emit`` is synchronous and O(1): a full queue drops the event and counts it.
Events are queued as plain dicts with exactly the fields of
:class:`driftgate.core.events.RequestEvent` (building the pydantic model cost more
than the rest of the gateway's own work per request); the batch is the JSON of
an :class:`~driftgate.core.events.EventBatch`, which the tests validate against the
model and the drift service validates on receipt.
A background task sends batches of up to ``batch_size`` events at least every
``flush_interval_s``, split so that no body exceeds ``MAX_BATCH_BYTES`` (events that
carry long conversations are large); a failed send drops the batch (counted), inference
goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import aiohttp
import orjson

from driftgate.core.events import MAX_BATCH_BYTES, RequestEvent
from driftgate.core.loops import run_forever
from gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

_JSON = {"Content-Type": "application/json"}
_OPEN, _CLOSE = b'{"events":[', b"]}"


class EventSink:
    def __init__(
        self,
        drift_url: str | None,
        session: aiohttp.ClientSession,
        metrics: GatewayMetrics,
        *,
        queue_size: int,
        batch_size: int,
        flush_interval_s: float,
        timeout_s: float,
    ) -> None:
        self.enabled = drift_url is not None
        self._url = f"{drift_url}/v1/events" if drift_url else ""
        self._session = session
        self._metrics = metrics
        # A plain deque, not an asyncio.Queue: ``emit`` is an append, and the sender wakes
        # once per batch (full, or the flush interval), not once per event.
        self._queue: deque[dict[str, Any]] = deque()
        self._max = queue_size
        self._batch = batch_size
        self._interval = flush_interval_s
        self._full = asyncio.Event()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._dropped_full = metrics.events_dropped.labels("queue_full")
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._queue)

    def emit(self, event: dict[str, Any]) -> None:
        """Queue one event (the fields of ``RequestEvent``, JSON-ready)."""
        if not self.enabled:
            return
        q = self._queue
        if len(q) >= self._max:
            self._dropped_full.inc()
            return
        q.append(event)
        if len(q) == self._batch:
            self._full.set()

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="driftgate-event-sink")

    async def stop(self, drain_timeout_s: float = 2.0) -> None:
        """Stop the sender; try to send what is queued within ``drain_timeout_s``."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_timeout_s):
                while self._queue:
                    await self._send(self._take_now())

    def emit_model(self, event: RequestEvent) -> None:
        self.emit(event.model_dump(mode="json"))

    def _take_now(self) -> list[dict[str, Any]]:
        q = self._queue
        return [q.popleft() for _ in range(min(self._batch, len(q)))]

    async def _run(self) -> None:
        await run_forever(
            "event_sink",
            self._flush_once,
            0.0,
            metrics=self._metrics.loops,
            period_s=self._interval,
        )

    async def _flush_once(self) -> None:
        if len(self._queue) < self._batch:
            # Wait for a full batch, at most one flush interval.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._full.wait()
        self._full.clear()
        await self._send(self._take_now())

    async def _send(self, batch: list[dict[str, Any]]) -> None:
        for count, body in batch_bodies(batch, MAX_BATCH_BYTES):
            await self._post(count, body)

    async def _post(self, count: int, body: bytes) -> None:
        try:
            async with self._session.post(
                self._url, data=body, headers=_JSON, timeout=self._timeout
            ) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as e:
            log.warning("sending %d events failed: %s", count, e)
            self._metrics.events_dropped.labels("send_failed").inc(count)
            return
        if 200 <= status < 300:
            self._metrics.events_sent.inc(count)
        else:
            log.warning("drift service refused %d events: HTTP %d", count, status)
            self._metrics.events_dropped.labels("rejected").inc(count)


def batch_bodies(events: list[dict[str, Any]], max_bytes: int) -> list[tuple[int, bytes]]:
    """(event count, JSON body of an ``EventBatch``) for ``events``, each body at most
    ``max_bytes`` unless one event alone is larger (the event caps keep it far smaller).

    >>> [n for n, _ in batch_bodies([{"a": "x" * 10}] * 5, 60)]
    [2, 2, 1]
    """
    if not events:
        return []
    whole = orjson.dumps({"events": events})
    if len(whole) <= max_bytes:
        return [(len(events), whole)]
    out: list[tuple[int, bytes]] = []
    parts: list[bytes] = []
    size = len(_OPEN) + len(_CLOSE)
    for event in events:
        part = orjson.dumps(event)
        if parts and size + len(part) + 1 > max_bytes:
            out.append((len(parts), _OPEN + b",".join(parts) + _CLOSE))
            parts, size = [], len(_OPEN) + len(_CLOSE)
        parts.append(part)
        size += len(part) + 1
    out.append((len(parts), _OPEN + b",".join(parts) + _CLOSE))
    return out
