"""The rollout state machine: pure, typed, no I/O.

A rollout moves one candidate adapter version into service::

    candidate -> loading -> canary -> promoted    -> draining -> unloaded
                    |          \\-----> rolled_back -/
                    \\-> failed

``next_action(rollout, observations, now)`` looks at a :class:`Rollout` record
and what the controller observed (the gateway's version states and routes, the
canary judgement, the gateways' heartbeats) and says what to do next. The
controller performs the action's side effect (an idempotent admin call) and
then records the transition with :func:`transition`, which refuses any move
the table :data:`TRANSITIONS` does not allow. Every action is safe to repeat,
so a controller that restarts in any state simply asks again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from driftgate.core.adapters import lora_name
from rollout.judge import JudgePolicy, Verdict, judge
from rollout.judge import VersionStats as VersionStats


class RolloutState(StrEnum):
    CANDIDATE = "candidate"  # recorded; waits for approval (and capacity)
    LOADING = "loading"  # registering the version: loaded into every healthy replica
    CANARY = "canary"  # a share of the logical adapter's traffic
    PROMOTED = "promoted"  # 100% on the candidate
    ROLLED_BACK = "rolled_back"  # 0% on the candidate (100% back on the serving version)
    DRAINING = "draining"  # the version that lost waits for in-flight requests
    UNLOADED = "unloaded"  # the version that lost is retired and unloaded (terminal)
    FAILED = "failed"  # refused at loading; serving untouched (terminal)


S = RolloutState

#: Allowed moves. ``promoted``/``rolled_back`` straight to ``unloaded`` only when
#: there is no other version to drain (the first version of an adapter).
TRANSITIONS: Mapping[RolloutState, frozenset[RolloutState]] = {
    S.CANDIDATE: frozenset({S.LOADING, S.FAILED}),
    S.LOADING: frozenset({S.CANARY, S.PROMOTED, S.FAILED}),
    S.CANARY: frozenset({S.PROMOTED, S.ROLLED_BACK}),
    S.PROMOTED: frozenset({S.DRAINING, S.UNLOADED}),
    S.ROLLED_BACK: frozenset({S.DRAINING}),
    S.DRAINING: frozenset({S.UNLOADED}),
    S.UNLOADED: frozenset(),
    S.FAILED: frozenset(),
}

TERMINAL = frozenset({S.UNLOADED, S.FAILED})


class TransitionError(ValueError):
    """A transition the state machine does not allow."""


class Command(StrEnum):
    """A manual override recorded on the rollout (admin API / CLI)."""

    PROMOTE = "promote"
    ROLLBACK = "rollback"


class ActionKind(StrEnum):
    WAIT = "wait"  # nothing to do now
    REGISTER = "register"  # POST /admin/adapters/{a}/versions with the candidate's number
    SET_ROUTE = "set_route"  # PUT /admin/routes/{a} with ``weights``
    RETIRE = "retire"  # DELETE /admin/adapters/{a}/versions/{retire}
    MOVE = "move"  # no side effect: record a transition to ``to``


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    reason: str = ""
    #: The state to record after the side effect succeeded (None: stay).
    to: RolloutState | None = None
    weights: Mapping[int, float] | None = None
    retire: int | None = None
    #: Decision statistics to record with the transition.
    stats: Mapping[str, Any] | None = None


def wait(reason: str) -> Action:
    return Action(ActionKind.WAIT, reason)


def move(to: RolloutState, reason: str, stats: Mapping[str, Any] | None = None) -> Action:
    return Action(ActionKind.MOVE, reason, to=to, stats=stats)


@dataclass(frozen=True, slots=True)
class Rollout:
    """One rollout as persisted (``dg_rollouts``)."""

    id: int
    adapter: str
    #: PEFT directory of the candidate.
    path: str
    state: RolloutState
    #: Version number of the candidate; reserved when loading starts (never reused).
    candidate_version: int | None = None
    #: The version serving 100% when the rollout began (None: the adapter's first version).
    serving_version: int | None = None
    canary_weight: float = 0.1
    approved: bool = True
    command: Command | None = None
    reason: str = ""
    #: ``promoted`` | ``rolled_back`` | ``failed`` once decided.
    outcome: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    loading_started_at: float | None = None
    canary_started_at: float | None = None
    decided_at: float | None = None
    drain_started_at: float | None = None
    finished_at: float | None = None
    decision: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def losing_version(self) -> int | None:
        """The version to drain and unload once decided."""
        if self.outcome == "promoted":
            return self.serving_version
        if self.outcome == "rolled_back":
            return self.candidate_version
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "adapter": self.adapter,
            "path": self.path,
            "state": self.state.value,
            "candidate_version": self.candidate_version,
            "serving_version": self.serving_version,
            "canary_weight": self.canary_weight,
            "approved": self.approved,
            "command": self.command.value if self.command else None,
            "reason": self.reason,
            "outcome": self.outcome,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "loading_started_at": self.loading_started_at,
            "canary_started_at": self.canary_started_at,
            "decided_at": self.decided_at,
            "drain_started_at": self.drain_started_at,
            "finished_at": self.finished_at,
            "decision": dict(self.decision),
            "meta": dict(self.meta),
        }


@dataclass(frozen=True, slots=True)
class GatewayBeat:
    """One gateway replica's latest heartbeat (see ``gateway/heartbeat.py``)."""

    gateway_id: str
    ts: float
    #: Hash of the route table the gateway has applied.
    routes_hash: str
    #: In-flight requests per vLLM served name on that gateway.
    in_flight: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Observations:
    """What the controller saw this tick."""

    #: State of the candidate's version in the gateway's registry (None: not registered).
    candidate_state: str | None = None
    candidate_error: str | None = None
    #: The adapter's current route (version -> weight > 0).
    route: Mapping[int, float] = field(default_factory=dict)
    #: Hash of the whole route table as stored now (what every gateway must have applied).
    routes_hash: str = ""
    #: Live signals per version since the canary started.
    stats: Mapping[int, VersionStats] = field(default_factory=dict)
    #: Heartbeats seen recently (already filtered for freshness).
    beats: tuple[GatewayBeat, ...] = ()
    #: Room to load one more adapter version into the engines.
    capacity_ok: bool = True


@dataclass(frozen=True, slots=True)
class Policy:
    """Timing and judgement knobs (from the controller's settings)."""

    judge: JudgePolicy = field(default_factory=JudgePolicy)
    #: A version stuck in ``loading`` at the gateway this long is given up.
    loading_timeout_s: float = 300.0
    #: Longest drain before the losing version is unloaded anyway.
    drain_timeout_s: float = 60.0
    #: With no gateway heartbeat at all, wait this long after the route change, then
    #: unload (the admin's retire call still drains the gateway that answers it).
    drain_grace_s: float = 3.0
    #: Refuse to unload without every gateway's heartbeat (never fall back to the grace).
    require_heartbeats: bool = False


def _same_route(a: Mapping[int, float], b: Mapping[int, float]) -> bool:
    pa = {v: w for v, w in a.items() if w > 0}
    pb = {v: w for v, w in b.items() if w > 0}
    if pa.keys() != pb.keys():
        return False
    ta, tb = sum(pa.values()), sum(pb.values())
    return all(abs(pa[v] / ta - pb[v] / tb) < 1e-6 for v in pa)


def canary_route(r: Rollout) -> dict[int, float]:
    assert r.candidate_version is not None and r.serving_version is not None
    return {r.serving_version: 1.0 - r.canary_weight, r.candidate_version: r.canary_weight}


def wanted_route(r: Rollout) -> dict[int, float] | None:
    """The route this rollout's state demands (None: it does not own the route)."""
    if r.state is S.CANARY:
        return canary_route(r)
    if r.state is S.PROMOTED or (r.state is S.DRAINING and r.outcome == "promoted"):
        assert r.candidate_version is not None
        return {r.candidate_version: 1.0}
    if r.state is S.ROLLED_BACK or (r.state is S.DRAINING and r.outcome == "rolled_back"):
        assert r.serving_version is not None
        return {r.serving_version: 1.0}
    return None


def _decide(r: Rollout, obs: Observations, now: float, policy: Policy) -> Action:
    """In canary: manual command, then the judge, then the timeout."""
    assert r.candidate_version is not None and r.serving_version is not None
    if r.command is Command.PROMOTE:
        return move(S.PROMOTED, "promoted by an operator", {"manual": True})
    if r.command is Command.ROLLBACK:
        return move(S.ROLLED_BACK, "rolled back by an operator", {"manual": True})
    started = r.canary_started_at if r.canary_started_at is not None else now
    verdict = judge(
        obs.stats.get(r.candidate_version, VersionStats()),
        obs.stats.get(r.serving_version, VersionStats()),
        policy.judge,
        elapsed_s=now - started,
    )
    stats = verdict.as_dict()
    if verdict.verdict is Verdict.PROMOTE:
        return move(S.PROMOTED, verdict.reason, stats)
    if verdict.verdict is Verdict.ROLLBACK:
        return move(S.ROLLED_BACK, verdict.reason, stats)
    return wait(verdict.reason)


def _drained(r: Rollout, obs: Observations, now: float, policy: Policy) -> Action:
    losing = r.losing_version
    assert losing is not None
    name = lora_name(r.adapter, losing)
    started = r.drain_started_at if r.drain_started_at is not None else now
    waited = now - started
    retire = Action(ActionKind.RETIRE, to=S.UNLOADED, retire=losing, reason="")
    if not obs.beats:
        if policy.require_heartbeats:
            if waited >= policy.drain_timeout_s:
                return replace(retire, reason=f"drain timeout ({waited:.0f} s, no heartbeats)")
            return wait("waiting for gateway heartbeats")
        if waited >= policy.drain_grace_s:
            return replace(retire, reason="no gateway heartbeats: drained by grace period")
        return wait("drain grace period")
    stale = [b.gateway_id for b in obs.beats if b.routes_hash != obs.routes_hash]
    busy = {b.gateway_id: b.in_flight.get(name, 0) for b in obs.beats}
    busy = {g: n for g, n in busy.items() if n > 0}
    if not stale and not busy and all(b.ts >= started for b in obs.beats):
        n = len(obs.beats)
        return replace(retire, reason=f"drained: {n} gateway(s) on new routes, 0 in flight")
    if waited >= policy.drain_timeout_s:
        return replace(
            retire, reason=f"drain timeout after {waited:.0f} s (stale {stale}, busy {busy})"
        )
    return wait(f"draining {name}: stale routes on {stale}, in flight {busy}")


def next_action(r: Rollout, obs: Observations, now: float, policy: Policy | None = None) -> Action:
    """What to do next for rollout ``r`` (pure)."""
    p = policy or Policy()
    if r.state is S.CANDIDATE:
        if not r.approved:
            return wait("waiting for approval (driftgate rollout start --id ...)")
        if not obs.capacity_ok:
            return wait("waiting for a free adapter slot in the engines")
        return move(S.LOADING, "approved")
    if r.state is S.LOADING:
        if obs.candidate_state is None:
            return Action(ActionKind.REGISTER, "loading into every healthy replica")
        if obs.candidate_state == "failed":
            return move(S.FAILED, obs.candidate_error or "refused at loading")
        if obs.candidate_state == "loading":
            started = r.loading_started_at if r.loading_started_at is not None else now
            if now - started >= p.loading_timeout_s:
                return move(S.FAILED, "loading did not finish in time")
            return wait("the gateway is loading the version")
        if obs.candidate_state != "ready":
            return move(S.FAILED, f"candidate version is {obs.candidate_state}")
        assert r.candidate_version is not None
        if r.serving_version is None:
            return Action(
                ActionKind.SET_ROUTE,
                "first version of the adapter: no canary",
                to=S.PROMOTED,
                weights={r.candidate_version: 1.0},
            )
        return Action(
            ActionKind.SET_ROUTE,
            f"loaded; canary at {r.canary_weight:.0%}",
            to=S.CANARY,
            weights=canary_route(r),
        )
    want = wanted_route(r)
    if want is not None and not _same_route(obs.route, want):
        # The route lost its shape (a restart between two steps, or someone edited it):
        # restore what this state demands before anything else.
        return Action(ActionKind.SET_ROUTE, "restoring the route of this state", weights=want)
    if r.state is S.CANARY:
        return _decide(r, obs, now, p)
    if r.state in (S.PROMOTED, S.ROLLED_BACK):
        if r.losing_version is None:
            return move(S.UNLOADED, "nothing to drain")
        return move(S.DRAINING, f"draining version {r.losing_version}")
    if r.state is S.DRAINING:
        return _drained(r, obs, now, p)
    return wait("finished")


def transition(
    r: Rollout,
    to: RolloutState,
    now: float,
    reason: str,
    stats: Mapping[str, Any] | None = None,
) -> Rollout:
    """The record after moving to ``to``; raises :class:`TransitionError` if not allowed."""
    if to not in TRANSITIONS[r.state]:
        raise TransitionError(f"rollout {r.id}: {r.state.value} -> {to.value} is not allowed")
    changes: dict[str, Any] = {"state": to, "reason": reason, "updated_at": now}
    if to is S.LOADING:
        changes["loading_started_at"] = now
    elif to is S.CANARY:
        changes["canary_started_at"] = now
    elif to in (S.PROMOTED, S.ROLLED_BACK):
        changes["outcome"] = to.value
        changes["decided_at"] = now
        changes["command"] = None
        if stats is not None:
            changes["decision"] = dict(stats)
    elif to is S.DRAINING:
        changes["drain_started_at"] = now
    elif to is S.FAILED:
        changes["outcome"] = "failed"
        changes["finished_at"] = now
    elif to is S.UNLOADED:
        changes["finished_at"] = now
    return replace(r, **changes)
