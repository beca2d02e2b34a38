"""The gateway's live state (built in the app's lifespan, never at import).

Holds the cached control-plane view (routing table and key index, refreshed
from the state store about every second), the replica pool, the upstream
client, the event sink, the rate limiter and the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

import aiohttp
from sqlalchemy.exc import SQLAlchemyError

from driftgate.core.adapters import lora_name
from driftgate.core.credentials import bearer_headers
from driftgate.core.state import ControlSnapshot, StateStore, VersionState
from gateway.auth import KeyIndex
from gateway.event_sink import EventSink
from gateway.metrics import GatewayMetrics
from gateway.ratelimit import RateLimiter
from gateway.replicas import ReplicaPool
from gateway.request_ids import RequestIds
from gateway.routing import RoutingTable
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream

log = logging.getLogger(__name__)

_EMPTY = ControlSnapshot(tenants_by_key_hash={}, versions={}, routes={})


class Gateway:
    def __init__(self, settings: GatewaySettings, metrics: GatewayMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or GatewayMetrics()
        self.store = StateStore(settings.state_url)
        self.limiter = RateLimiter()
        #: Feedback's own buckets (same per-tenant rate and burst as requests), so rating
        #: answers never eats into a tenant's inference budget.
        self.feedback_limiter = RateLimiter()
        secret = settings.request_id_secret
        self.request_ids = RequestIds.from_secret(secret.get_secret_value() if secret else None)
        self.table = RoutingTable(_EMPTY, settings.base_model)
        self.keys = KeyIndex({})
        self.state_loaded = False
        #: In-flight requests on this gateway per vLLM name (for draining before unload).
        self.served_in_flight: defaultdict[str, int] = defaultdict(int)
        self._engine_session: aiohttp.ClientSession | None = None
        self._drift_session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.admin_lock = asyncio.Lock()
        self._refresh_started = 0
        self._refresh_applied = 0

    # the parts built in start()
    pool: ReplicaPool
    upstream: Upstream
    sink: EventSink
    drift_session: aiohttp.ClientSession

    async def start(self) -> None:
        s = self.settings
        # Each session carries its peer's credential, so every call through it has one.
        engine_auth = bearer_headers(s.engine_api_key)
        self._engine_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=s.upstream_connections, keepalive_timeout=30, ttl_dns_cache=300
            ),
            auto_decompress=False,
            headers=engine_auth,
        )
        self.drift_session = self._drift_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=16), headers=bearer_headers(s.ingest_key)
        )
        self.pool = ReplicaPool(
            s.upstreams,
            self._engine_session,
            self.metrics,
            base_model=s.base_model,
            interval_s=s.health_interval_s,
            timeout_s=s.health_timeout_s,
            admin_timeout_s=s.admin_timeout_s,
        )
        self.upstream = Upstream(
            self.pool,
            self._engine_session,
            self.metrics,
            max_attempts=s.max_attempts,
            connect_timeout_s=s.connect_timeout_s,
            read_timeout_s=s.read_timeout_s,
            request_timeout_s=s.request_timeout_s,
            connections=s.upstream_connections,
            headers=engine_auth,
        )
        self.sink = EventSink(
            s.drift_url,
            self._drift_session,
            self.metrics,
            queue_size=s.event_queue_size,
            batch_size=s.event_batch_size,
            flush_interval_s=s.event_flush_interval_s,
            timeout_s=s.event_timeout_s,
        )
        try:
            await asyncio.to_thread(self.store.create_all)
            await self.refresh()
        except (SQLAlchemyError, OSError) as exc:  # a down database must not stop the gateway
            log.error("state store %s unreachable at start: %s", s.state_url, exc)
        await self.pool.poll_all()
        self.sink.start()
        self._tasks = [
            asyncio.create_task(self._refresh_loop(), name="driftgate-state-refresh"),
            asyncio.create_task(
                self.pool.run(self.table_wanted, self.table_unwanted), name="driftgate-replicas"
            ),
        ]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        await self.sink.stop()
        self.upstream.close()
        for session in (self._engine_session, self._drift_session):
            if session is not None:
                await session.close()
        await asyncio.to_thread(self.store.dispose)

    # -- control-plane cache ---------------------------------------------------------

    def apply(self, snap: ControlSnapshot) -> None:
        self.table = RoutingTable(snap, self.settings.base_model)
        self.keys = KeyIndex(snap.tenants_by_key_hash)
        self.metrics.set_route_weights({a: dict(w) for a, w in snap.routes.items()})
        names = {t.name for t in snap.tenants_by_key_hash.values()}
        self.limiter.forget(names)
        self.feedback_limiter.forget(names)
        self.state_loaded = True

    async def refresh(self) -> None:
        # Refreshes overlap (the periodic loop and an admin change); a snapshot read
        # before a later one was applied must not overwrite it with older routes.
        self._refresh_started += 1
        ticket = self._refresh_started
        snapshot = await asyncio.to_thread(self.store.snapshot)
        if ticket > self._refresh_applied:
            self._refresh_applied = ticket
            self.apply(snapshot)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.state_refresh_s)
            try:
                await self.refresh()
            except (SQLAlchemyError, OSError) as exc:  # keep serving on the last snapshot
                log.warning("state refresh failed (serving the last snapshot): %s", exc)

    def table_wanted(self) -> dict[str, str]:
        return self.table.ready_loras()

    def table_unwanted(self) -> set[str]:
        return {
            lora_name(a, v)
            for a, versions in self.table.snapshot.versions.items()
            for v, info in versions.items()
            if info.state in (VersionState.FAILED, VersionState.RETIRED)
        }

    async def drain(self, served_name: str, timeout_s: float) -> bool:
        """Wait until this gateway has no request in flight on ``served_name``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.served_in_flight.get(served_name, 0) > 0:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True
