"""The gateway's live state (built in the app's lifespan, never at import).

Holds the cached control-plane view (routing table and key index, refreshed
from the state store about every second), the replica pool, the upstream
client, the event sink, the tenants' limits and the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable

import aiohttp
from sqlalchemy.exc import SQLAlchemyError

from driftgate.core.adapters import lora_name
from driftgate.core.credentials import bearer_headers
from driftgate.core.errors import Conflict, NotFound
from driftgate.core.loops import run_forever
from driftgate.core.state import ControlSnapshot, StateStore, VersionState
from gateway.auth import KeyIndex
from gateway.event_sink import EventSink
from gateway.limits import MemoryLimiter, TenantLimiter
from gateway.metrics import GatewayMetrics
from gateway.redis_limits import RedisLimiter
from gateway.replicas import ReplicaPool
from gateway.request_ids import RequestIds
from gateway.routing import RoutingTable
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream

log = logging.getLogger(__name__)

_EMPTY = ControlSnapshot(tenants_by_key_hash={}, versions={}, routes={})


def make_limits(settings: GatewaySettings, metrics: GatewayMetrics) -> TenantLimiter:
    """Shared limits when a Redis is configured, else this replica's own (in memory).

    A lease (a concurrency slot) outlives a lost release by at most the longest request.
    """
    url = settings.limits_redis_url
    if url is None:
        return MemoryLimiter(lease_ttl_s=settings.request_timeout_s)
    return RedisLimiter(
        url.get_secret_value(),
        metrics,
        prefix=settings.limits_redis_prefix,
        lease_ttl_s=settings.request_timeout_s,
        timeout_s=settings.limits_redis_timeout_s,
        retry_s=settings.limits_redis_retry_s,
    )


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        metrics: GatewayMetrics | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        #: Unix seconds now: decides API-key expiry (tests pass a controllable one).
        self.clock = clock
        self.metrics = metrics or GatewayMetrics()
        self.store = StateStore(settings.state_url)
        #: Requests' and feedback's per-tenant limits (feedback has buckets of its own).
        self.limits = make_limits(settings, self.metrics)
        secret = settings.request_id_secret
        self.request_ids = RequestIds.from_secret(secret.get_secret_value() if secret else None)
        self.table = RoutingTable(_EMPTY, settings.base_model)
        self.keys = KeyIndex({}, clock=clock)
        self.state_loaded = False
        #: In-flight requests on this gateway per vLLM name (for draining before unload).
        self.served_in_flight: defaultdict[str, int] = defaultdict(int)
        self._engine_session: aiohttp.ClientSession | None = None
        self._drift_session: aiohttp.ClientSession | None = None
        self._control_session: aiohttp.ClientSession | None = None
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
        # Health polls and LoRA loads get their own connections: they never queue behind
        # inference streams (a poll that waits times out and marks a busy replica down).
        # Unbounded: their number follows the replicas and versions, not the traffic.
        self._control_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30), headers=engine_auth
        )
        self.drift_session = self._drift_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=16), headers=bearer_headers(s.ingest_key)
        )
        self.pool = ReplicaPool(
            s.upstreams,
            self._control_session,
            self.metrics,
            base_model=s.base_model,
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
            queue_timeout_s=s.upstream_queue_timeout_s,
            headers=engine_auth,
        )
        admission = self.upstream.admission
        self.metrics.upstream_slots_in_use.set_function(lambda: admission.in_use)
        self.metrics.upstream_queued.set_function(lambda: admission.waiting)
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
                run_forever(
                    "replica_health",
                    self._replica_step,
                    s.health_interval_s,
                    metrics=self.metrics.loops,
                    expected=(SQLAlchemyError, OSError),
                ),
                name="driftgate-replicas",
            ),
            asyncio.create_task(
                run_forever(
                    "lease_renewal",
                    lambda: self.limits.renew_held(time.perf_counter()),
                    s.request_timeout_s / 3,
                    metrics=self.metrics.loops,
                    delay_first=True,
                ),
                name="driftgate-lease-renewal",
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
        await self.limits.close()
        self.upstream.close()
        for session in (self._engine_session, self._control_session, self._drift_session):
            if session is not None:
                await session.close()
        await asyncio.to_thread(self.store.dispose)

    # -- control-plane cache ---------------------------------------------------------

    def apply(self, snap: ControlSnapshot) -> None:
        self.table = RoutingTable(snap, self.settings.base_model)
        self.keys = KeyIndex(snap.tenants_by_key_hash, snap.key_expiry, clock=self.clock)
        self.metrics.set_route_weights({a: dict(w) for a, w in snap.routes.items()})
        names = {t.name for t in snap.tenants_by_key_hash.values()}
        self.limits.forget(names)
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
        # A failed refresh keeps serving on the last snapshot. ``refresh`` is looked up
        # on every tick (tests count refreshes by wrapping it).
        await run_forever(
            "state_refresh",
            lambda: self.refresh(),
            self.settings.state_refresh_s,
            metrics=self.metrics.loops,
            expected=(SQLAlchemyError, OSError),
            delay_first=True,
        )

    async def _replica_step(self) -> None:
        await self.pool.reconcile(self.table_wanted(), self.table_unwanted())
        await self.fail_stale_loading()

    async def fail_stale_loading(self, now: float | None = None) -> list[str]:
        """Mark versions ``loading`` for longer than ``loading_timeout_s`` failed, unload them.

        A gateway that died between recording a version and finishing its load leaves it
        ``loading`` for ever; any gateway's replica loop settles it. Only a version still
        ``loading`` is moved, so a load that finishes meanwhile is not undone (its
        ``ready`` then fails instead: see ``gateway.admin.register_version``).
        """
        cutoff = (time.time() if now is None else now) - self.settings.loading_timeout_s
        stale = [
            (adapter, v)
            for adapter, versions in self.table.snapshot.versions.items()
            for v, info in versions.items()
            if info.state is VersionState.LOADING and info.updated_at < cutoff
        ]
        failed: list[str] = []
        for adapter, v in stale:
            reason = f"still loading after {self.settings.loading_timeout_s:g} s (gateway gone?)"
            try:
                await asyncio.to_thread(
                    self.store.set_version_state,
                    adapter,
                    v,
                    VersionState.FAILED,
                    error=reason,
                    expect=VersionState.LOADING,
                )
            except (Conflict, NotFound):  # finished, or settled by another gateway
                continue
            served = lora_name(adapter, v)
            log.warning("version %s: %s; marked failed and unloaded", served, reason)
            await self.pool.unload_everywhere(served)
            failed.append(served)
        if failed:
            await self.refresh()
        return failed

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
