"""The rollout controller: observes, asks the state machine, acts through the admin API.

It talks to the gateway only over HTTP (``driftgate.core.admin_api`` calls sent by a
``driftgate.core.client.AsyncClient``), reads live signals through the drift store and
gateway heartbeats from the state store, and persists every transition in
``dg_rollouts``. ``tick()`` advances
every active rollout as far as it can go now; ``run()`` ticks forever (the
drift service runs it as a background task). Everything it does is idempotent,
so a controller that restarts resumes from the persisted state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from drift.store import DriftStore
from driftgate.core import admin_api
from driftgate.core.client import AsyncClient, ServiceError, ServiceRefused, ServiceUnreachable
from driftgate.core.errors import Conflict
from driftgate.core.loops import LoopMetrics, run_forever
from driftgate.core.state.heartbeats import read_beats, routes_hash
from rollout.machine import (
    Action,
    ActionKind,
    GatewayBeat,
    Observations,
    Policy,
    Rollout,
    RolloutState,
    next_action,
)
from rollout.metrics import RolloutMetrics
from rollout.store import RolloutStore

log = logging.getLogger(__name__)

S = RolloutState
#: Most state moves one rollout makes in one tick (each is one admin call at most).
MAX_STEPS_PER_TICK = 8


class RolloutController:
    def __init__(
        self,
        store: RolloutStore,
        admin: AsyncClient,
        metrics: RolloutMetrics,
        *,
        policy: Policy | None = None,
        signals: DriftStore | None = None,
        heartbeat_fresh_s: float = 5.0,
        max_loaded: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.admin = admin
        self.metrics = metrics
        self.policy = policy or Policy()
        #: The drift store (None: no live signals; only manual or timeout).
        self.signals = signals
        self.heartbeat_fresh_s = heartbeat_fresh_s
        self.max_loaded = max_loaded
        self.clock = clock

    # -- observation -------------------------------------------------------------------

    async def observe(self, r: Rollout) -> Observations:
        now = self.clock()
        versions = await self.admin.send(admin_api.list_versions(r.adapter))
        routes = await self.admin.send(admin_api.get_routes())
        cand_state: str | None = None
        cand_error: str | None = None
        if r.candidate_version is not None:
            for v in versions:
                if int(v["version"]) == r.candidate_version:
                    if (v.get("meta") or {}).get("rollout_id") != r.id:
                        cand_state, cand_error = (
                            "failed",
                            (f"version {r.candidate_version} was taken by someone else"),
                        )
                    else:
                        cand_state, cand_error = str(v["state"]), v.get("error")
        stats = {}
        if r.state is S.CANARY and self.signals is not None:
            assert r.candidate_version is not None and r.serving_version is not None
            since = r.canary_started_at or now
            stats = await asyncio.to_thread(
                self.signals.version_window,
                r.adapter,
                [r.candidate_version, r.serving_version],
                since,
                max_tenant_share=self.policy.judge.max_tenant_vote_share,
            )
            self.metrics.signals(r.adapter, stats)
        beats: tuple[GatewayBeat, ...] = ()
        if r.state is S.DRAINING:
            rows = await asyncio.to_thread(
                read_beats, self.store.engine, now - self.heartbeat_fresh_s
            )
            beats = tuple(
                GatewayBeat(
                    gateway_id=b["gateway_id"],
                    ts=b["ts"],
                    routes_hash=b["routes_hash"],
                    in_flight=b["in_flight"],
                )
                for b in rows
            )
        capacity_ok = True
        if r.state is S.CANDIDATE and self.max_loaded > 0:
            every = await self.admin.send(admin_api.list_versions())
            capacity_ok = sum(1 for v in every if v["state"] == "ready") < self.max_loaded
        return Observations(
            candidate_state=cand_state,
            candidate_error=cand_error,
            route=routes.get(r.adapter, {}),
            routes_hash=routes_hash(routes),
            stats=stats,
            beats=beats,
            capacity_ok=capacity_ok,
        )

    # -- acting ------------------------------------------------------------------------

    async def _reserve(self, r: Rollout) -> Rollout:
        """Pick the candidate's version number and note the version serving now.

        The number the retrain job chose (``meta["version"]``, its registry directory)
        is kept when still free; otherwise the next one (numbers are never reused).
        """
        versions = await self.admin.send(admin_api.list_versions(r.adapter))
        route = (await self.admin.send(admin_api.get_routes())).get(r.adapter, {})
        top = max((int(v["version"]) for v in versions), default=0)
        wanted = r.meta.get("version")
        number = wanted if isinstance(wanted, int) and wanted > top else top + 1
        serving = max(route, key=lambda v: (route[v], v)) if route else None
        return await asyncio.to_thread(self.store.reserve_version, r, number, serving)

    async def _record(
        self, r: Rollout, to: RolloutState, reason: str, stats: Any = None
    ) -> Rollout:
        new = await asyncio.to_thread(self.store.record, r, to, reason, stats=stats)
        self.metrics.moved(new, to)
        self.metrics.observe(new)
        log.info(
            "rollout %d (%s@%s): %s -> %s: %s",
            r.id, r.adapter, new.candidate_version, r.state.value, to.value, reason,
        )  # fmt: skip
        return new

    async def _perform(self, r: Rollout, a: Action) -> Rollout | None:
        """Do the side effect of ``a`` and record its transition; None: stop for this tick."""
        if a.kind is ActionKind.WAIT:
            await asyncio.to_thread(self.store.set_reason, r, a.reason)
            return None
        if a.kind is ActionKind.MOVE:
            assert a.to is not None
            if a.to is S.LOADING:
                r = await self._reserve(r)
            return await self._record(r, a.to, a.reason, a.stats)
        if a.kind is ActionKind.REGISTER:
            assert r.candidate_version is not None
            try:
                await self.admin.send(
                    admin_api.register_version(
                        r.adapter,
                        r.path,
                        version=r.candidate_version,
                        meta={**r.meta, "rollout_id": r.id},
                    )
                )
            except ServiceRefused as exc:
                if exc.status == 400 or exc.status == 404:
                    return await self._record(r, S.FAILED, f"refused at loading: {exc}")
                if exc.status == 409:  # registered meanwhile: the next observation tells
                    return r
                await asyncio.to_thread(self.store.set_reason, r, f"loading: {exc}")
                return None
            return r  # observe again: the version is now ready
        if a.kind is ActionKind.SET_ROUTE:
            assert a.weights is not None
            await self.admin.send(admin_api.set_route(r.adapter, a.weights))
            return r if a.to is None else await self._record(r, a.to, a.reason, a.stats)
        if a.kind is ActionKind.RETIRE:
            assert a.retire is not None and a.to is not None
            try:
                result = await self.admin.send(admin_api.retire_version(r.adapter, a.retire))
            except ServiceRefused as exc:
                if exc.status != 404:
                    await asyncio.to_thread(self.store.set_reason, r, f"unloading: {exc}")
                    return None
                result = {"unloaded": [], "note": "version not found"}
            stats = {k: result.get(k) for k in ("drained", "unloaded", "unload_failed", "note")}
            return await self._record(r, a.to, a.reason, stats)
        raise AssertionError(f"unknown action {a.kind}")

    async def step(self, r: Rollout) -> Rollout:
        """Advance one rollout as far as it goes now."""
        for _ in range(MAX_STEPS_PER_TICK):
            if r.terminal:
                break
            obs = await self.observe(r)
            action = next_action(r, obs, self.clock(), self.policy)
            nxt = await self._perform(r, action)
            if nxt is None:
                break
            r = nxt
        self.metrics.observe(r)
        return r

    async def tick(self) -> list[Rollout]:
        """Advance every active rollout; errors of one never stop the others."""
        out: list[Rollout] = []
        active = await asyncio.to_thread(self.store.rollouts, None, active=True)
        for r in active:
            try:
                out.append(await self.step(r))
            except Conflict as exc:  # moved by someone else (API) between read and write
                log.info("rollout %d: %s", r.id, exc)
            except ServiceUnreachable as exc:
                log.warning("rollout %d: gateway unreachable: %s", r.id, exc)
            except ServiceError as exc:
                log.warning("rollout %d: gateway refused: %s", r.id, exc)
                await asyncio.to_thread(self.store.set_reason, r, f"gateway: {exc}")
        return out

    async def run(self, interval_s: float, loops: LoopMetrics | None = None) -> None:
        """Tick every ``interval_s`` until cancelled; a failed tick is logged, never fatal
        (the database may come back), and ``loops`` exports the last good one."""
        await run_forever(
            "rollout_controller",
            self.tick,
            interval_s,
            metrics=loops,
            expected=(SQLAlchemyError,),
        )
