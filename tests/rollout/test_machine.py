"""The pure rollout state machine: every state's next action and the transition table."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from rollout.judge import JudgePolicy, VersionStats
from rollout.machine import (
    TRANSITIONS,
    ActionKind,
    Command,
    GatewayBeat,
    Observations,
    Policy,
    Rollout,
    RolloutState,
    TransitionError,
    next_action,
    transition,
)

S = RolloutState
POLICY = Policy(
    judge=JudgePolicy(min_feedback=20, min_requests=20, timeout_s=100),
    drain_timeout_s=30,
    drain_grace_s=3,
    loading_timeout_s=60,
)


def rollout(state: S = S.CANDIDATE, **kw: object) -> Rollout:
    base = Rollout(
        id=1, adapter="support", path="/p", state=state, candidate_version=4, serving_version=3
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_candidate_waits_for_approval_and_capacity() -> None:
    assert next_action(rollout(approved=False), Observations(), 0, POLICY).kind is ActionKind.WAIT
    full = Observations(capacity_ok=False)
    a = next_action(rollout(), full, 0, POLICY)
    assert a.kind is ActionKind.WAIT and "slot" in a.reason
    a = next_action(rollout(), Observations(), 0, POLICY)
    assert (a.kind, a.to) == (ActionKind.MOVE, S.LOADING)


def test_loading_registers_then_goes_to_canary_with_the_weights() -> None:
    r = rollout(S.LOADING, canary_weight=0.2, loading_started_at=0.0)
    assert next_action(r, Observations(), 1, POLICY).kind is ActionKind.REGISTER
    a = next_action(r, Observations(candidate_state="ready"), 1, POLICY)
    assert a.kind is ActionKind.SET_ROUTE and a.to is S.CANARY
    assert a.weights is not None
    assert dict(a.weights) == pytest.approx({3: 0.8, 4: 0.2})


def test_first_version_skips_the_canary() -> None:
    r = rollout(S.LOADING, serving_version=None, candidate_version=1)
    a = next_action(r, Observations(candidate_state="ready"), 1, POLICY)
    assert (a.kind, a.to, dict(a.weights or {})) == (ActionKind.SET_ROUTE, S.PROMOTED, {1: 1.0})
    promoted = replace(r, state=S.PROMOTED, outcome="promoted")
    a = next_action(promoted, Observations(route={1: 1.0}), 2, POLICY)
    assert (a.kind, a.to) == (ActionKind.MOVE, S.UNLOADED)


def test_loading_failure_and_timeout_fail_the_rollout() -> None:
    r = rollout(S.LOADING, loading_started_at=0.0)
    a = next_action(r, Observations(candidate_state="failed", candidate_error="rank 64"), 1, POLICY)
    assert (a.to, a.reason) == (S.FAILED, "rank 64")
    stuck = Observations(candidate_state="loading")
    assert next_action(r, stuck, 10, POLICY).kind is ActionKind.WAIT
    assert next_action(r, stuck, 61, POLICY).to is S.FAILED


def canary(**kw: object) -> Rollout:
    return rollout(S.CANARY, canary_started_at=0.0, canary_weight=0.5, **kw)


ROUTE = {3: 0.5, 4: 0.5}


def test_canary_restores_a_route_that_lost_its_shape() -> None:
    a = next_action(canary(), Observations(route={3: 1.0}), 5, POLICY)
    assert a.kind is ActionKind.SET_ROUTE and a.to is None
    assert dict(a.weights or {}) == ROUTE


def test_canary_waits_for_samples_then_judges() -> None:
    few = {3: VersionStats(requests=5, feedback=5), 4: VersionStats(requests=5, feedback=5)}
    a = next_action(canary(), Observations(route=ROUTE, stats=few), 5, POLICY)
    assert a.kind is ActionKind.WAIT and "collecting" in a.reason
    good = VersionStats(requests=50, feedback=40, negative=4, latency_p50_ms=100)
    bad = VersionStats(requests=50, feedback=40, negative=20, latency_p50_ms=100)
    a = next_action(canary(), Observations(route=ROUTE, stats={3: good, 4: good}), 5, POLICY)
    assert a.to is S.PROMOTED and a.stats and a.stats["verdict"] == "promote"
    a = next_action(canary(), Observations(route=ROUTE, stats={3: good, 4: bad}), 5, POLICY)
    assert a.to is S.ROLLED_BACK and a.stats and a.stats["p_negative"] < 0.05


def test_canary_timeout_takes_the_safe_default() -> None:
    a = next_action(canary(), Observations(route=ROUTE), 101, POLICY)
    assert a.to is S.ROLLED_BACK and "timed out" in a.reason
    promote_on_timeout = replace(POLICY, judge=replace(POLICY.judge, on_timeout="promote"))
    assert next_action(canary(), Observations(route=ROUTE), 101, promote_on_timeout).to is (
        S.PROMOTED
    )


def test_manual_override_wins_over_the_judge() -> None:
    bad = VersionStats(requests=50, feedback=40, negative=30)
    good = VersionStats(requests=50, feedback=40, negative=1)
    obs = Observations(route=ROUTE, stats={3: good, 4: bad})
    assert next_action(canary(command=Command.PROMOTE), obs, 1, POLICY).to is S.PROMOTED
    obs = Observations(route=ROUTE, stats={3: bad, 4: good})
    assert next_action(canary(command=Command.ROLLBACK), obs, 1, POLICY).to is S.ROLLED_BACK


def test_decided_states_set_their_route_then_drain() -> None:
    promoted = rollout(S.PROMOTED, outcome="promoted")
    a = next_action(promoted, Observations(route=ROUTE), 1, POLICY)
    assert (a.kind, dict(a.weights or {})) == (ActionKind.SET_ROUTE, {4: 1.0})
    a = next_action(promoted, Observations(route={4: 1.0}), 1, POLICY)
    assert (a.kind, a.to) == (ActionKind.MOVE, S.DRAINING)
    back = rollout(S.ROLLED_BACK, outcome="rolled_back")
    a = next_action(back, Observations(route=ROUTE), 1, POLICY)
    assert dict(a.weights or {}) == {3: 1.0}
    assert back.losing_version == 4 and promoted.losing_version == 3


def draining(**kw: object) -> Rollout:
    return rollout(S.DRAINING, outcome="promoted", drain_started_at=10.0, **kw)


def beat(gid: str, h: str = "H", ts: float = 11.0, in_flight: Any = None) -> GatewayBeat:
    return GatewayBeat(gateway_id=gid, ts=ts, routes_hash=h, in_flight=in_flight or {})


def test_draining_waits_for_every_gateway_then_retires_the_loser() -> None:
    route = {4: 1.0}
    stale = Observations(route=route, routes_hash="H", beats=(beat("a"), beat("b", h="old")))
    a = next_action(draining(), stale, 12, POLICY)
    assert a.kind is ActionKind.WAIT and "b" in a.reason
    busy = Observations(
        route=route, routes_hash="H", beats=(beat("a"), beat("b", in_flight={"support--v3": 2}))
    )
    assert next_action(draining(), busy, 12, POLICY).kind is ActionKind.WAIT
    old_beat = Observations(route=route, routes_hash="H", beats=(beat("a", ts=9.0),))
    assert next_action(draining(), old_beat, 12, POLICY).kind is ActionKind.WAIT
    other_busy = Observations(
        route=route, routes_hash="H", beats=(beat("a", in_flight={"support--v4": 7}), beat("b"))
    )
    a = next_action(draining(), other_busy, 12, POLICY)
    assert (a.kind, a.retire, a.to) == (ActionKind.RETIRE, 3, S.UNLOADED)
    a = next_action(draining(), busy, 41, POLICY)
    assert a.kind is ActionKind.RETIRE and "timeout" in a.reason


def test_draining_without_heartbeats_uses_the_grace_period_unless_required() -> None:
    obs = Observations(route={4: 1.0}, routes_hash="H")
    assert next_action(draining(), obs, 11, POLICY).kind is ActionKind.WAIT
    assert next_action(draining(), obs, 13.5, POLICY).kind is ActionKind.RETIRE
    strict = replace(POLICY, require_heartbeats=True)
    assert next_action(draining(), obs, 13.5, strict).kind is ActionKind.WAIT
    assert next_action(draining(), obs, 41, strict).kind is ActionKind.RETIRE


def test_transition_table_is_enforced_and_stamps_times() -> None:
    r = rollout()
    with pytest.raises(TransitionError):
        transition(r, S.CANARY, 1, "skip")
    r = transition(r, S.LOADING, 1, "go")
    assert r.loading_started_at == 1
    r = transition(r, S.CANARY, 2, "loaded")
    assert r.canary_started_at == 2
    r = replace(r, command=Command.PROMOTE)
    r = transition(r, S.PROMOTED, 3, "ok", {"verdict": "promote"})
    assert (r.outcome, r.decided_at, r.command, r.decision) == (
        "promoted",
        3,
        None,
        {"verdict": "promote"},
    )
    r = transition(r, S.DRAINING, 4, "drain")
    r = transition(r, S.UNLOADED, 5, "done")
    assert r.terminal and r.finished_at == 5
    for state in (S.UNLOADED, S.FAILED):
        assert not TRANSITIONS[state]
    # every non-terminal state can reach a terminal one
    for start in S:
        seen, todo = {start}, [start]
        while todo:
            for nxt in TRANSITIONS[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert seen & {S.UNLOADED, S.FAILED}
