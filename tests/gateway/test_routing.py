"""Pure routing: weighted version choice, model resolution per tenant, replica choice."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest

from driftgate.core.errors import Forbidden, NotFound, Unavailable
from driftgate.core.state import ControlSnapshot, TenantInfo, VersionInfo, VersionState
from gateway.routing import RoutingTable, WeightedRoute, choose_replica, choose_version

BASE = "SmolLM2-135M-Instruct"


def _tenant(name: str, *adapters: str) -> TenantInfo:
    return TenantInfo(
        id=hash(name) % 1000, name=name, adapters=adapters, rate_limit_rps=0, burst=0, max_tokens=64
    )


def _snapshot() -> ControlSnapshot:
    def v(adapter: str, n: int, state: VersionState = VersionState.READY) -> VersionInfo:
        return VersionInfo(adapter=adapter, version=n, path=f"/r/{adapter}/{n}", state=state)

    return ControlSnapshot(
        tenants_by_key_hash={},
        versions={
            "support": {
                1: v("support", 1),
                2: v("support", 2),
                3: v("support", 3, VersionState.RETIRED),
            },
            "billing": {1: v("billing", 1)},
            "draft": {1: v("draft", 1, VersionState.LOADING)},
        },
        routes={"support": {1: 0.75, 2: 0.25}},
    )


def test_weighted_choice_is_exact_at_the_boundaries() -> None:
    route = WeightedRoute.build({1: 3.0, 2: 1.0})
    assert route is not None
    assert route.choose(0.0) == 1
    assert route.choose(0.7499) == 1
    assert route.choose(0.75) == 2
    assert route.choose(0.999999) == 2
    assert choose_version({1: 0.0, 2: 0.0}, 0.5) is None
    assert choose_version({5: 0.0, 6: 2.0}, 0.0) == 6


def test_weighted_choice_follows_the_weights() -> None:
    route = WeightedRoute.build({3: 0.9, 4: 0.1})
    assert route is not None
    counts = Counter(route.choose(i / 10_000) for i in range(10_000))
    assert counts == {3: 9000, 4: 1000}


def test_resolve_plain_pinned_and_base() -> None:
    table = RoutingTable(_snapshot(), BASE)
    t = _tenant("a", "support")
    assert table.resolve(t, "support", 0.1).served_name == "support--v1"
    assert table.resolve(t, "support", 0.9).served_name == "support--v2"
    pinned = table.resolve(t, "support@2", 0.1)
    assert (pinned.served_name, pinned.public_name, pinned.label_version) == (
        "support--v2",
        "support@2",
        "2",
    )
    # the canary judge leaves out versions the caller chose; the route's draw is judged
    assert pinned.pinned and not table.resolve(t, "support", 0.9).pinned
    base = table.resolve(t, BASE, 0.5)
    assert (base.adapter, base.label_adapter, base.label_version) == (None, "base", "base")
    assert not base.pinned


@pytest.mark.parametrize(
    ("model", "error"),
    [
        ("billing", Forbidden),  # exists, not allowed
        ("billing@1", Forbidden),
        ("nosuch", NotFound),
        ("support@9", NotFound),  # no such version
        ("support@3", NotFound),  # retired
        ("support--v1", NotFound),  # vLLM names are not client names
        ("Support", NotFound),
        ("", NotFound),
        ("base", NotFound),
    ],
)
def test_resolve_refusals(model: str, error: type[Exception]) -> None:
    table = RoutingTable(_snapshot(), BASE)
    with pytest.raises(error):
        table.resolve(_tenant("a", "support"), model, 0.5)


def test_no_route_is_unavailable_and_wildcard_tenant() -> None:
    table = RoutingTable(_snapshot(), BASE)
    star = _tenant("s", "*")
    with pytest.raises(Unavailable):
        table.resolve(star, "billing", 0.5)  # a version, but no route
    assert table.resolve(star, "billing@1", 0.5).served_name == "billing--v1"
    with pytest.raises(NotFound):
        table.resolve(star, "draft@1", 0.5)  # still loading
    assert table.models_for(star) == [BASE, "billing", "support"]
    assert table.models_for(_tenant("a", "support")) == [BASE, "support"]
    assert table.models_for(_tenant("n")) == [BASE]
    assert table.ready_loras() == {
        "support--v1": "/r/support/1",
        "support--v2": "/r/support/2",
        "billing--v1": "/r/billing/1",
    }


@dataclass
class R:
    name: str
    healthy: bool = True
    in_flight: int = 0
    loaded: set[str] = field(default_factory=set)


def test_replica_choice_least_outstanding_healthy_holder() -> None:
    a = R("a", in_flight=3, loaded={"support--v1"})
    b = R("b", in_flight=1, loaded={"support--v1"})
    c = R("c", in_flight=0, loaded=set())
    d = R("d", healthy=False, in_flight=0, loaded={"support--v1"})
    reps = [a, b, c, d]
    assert choose_replica(reps, "support--v1") is b
    assert choose_replica(reps, None) is c
    assert choose_replica(reps, "support--v1", exclude={"b"}) is a
    assert choose_replica(reps, "support--v1", exclude={"a", "b"}) is None
    assert choose_replica(reps, "support--v9") is None


def test_replica_ties_are_shared() -> None:
    reps = [R("a"), R("b")]
    picked = {choose_replica(reps, None, tie=i).name for i in range(4)}  # type: ignore[union-attr]
    assert picked == {"a", "b"}
