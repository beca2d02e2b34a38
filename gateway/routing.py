"""Pure routing: model name -> adapter version -> replica, over immutable snapshots.

Nothing here does I/O; the caller passes the random draw so tests are exact.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from driftgate.core.adapters import BASE_LABEL, AdapterNameError, lora_name, parse_model
from driftgate.core.errors import Forbidden, NotFound, Unavailable
from driftgate.core.state.models import ControlSnapshot, TenantInfo, VersionState


@dataclass(frozen=True, slots=True)
class Target:
    """Where one request goes: the served (vLLM) name and the labels it is counted under."""

    adapter: str | None
    version: int | None
    served_name: str
    #: What the response's ``model`` field says (``support@3`` or the base model).
    public_name: str
    label_adapter: str
    label_version: str
    #: The client named the version (``support@3``) instead of taking the route's draw.
    pinned: bool = False


@dataclass(frozen=True, slots=True)
class WeightedRoute:
    """Versions of one adapter with cumulative weights, ready for a draw in [0, 1)."""

    versions: tuple[int, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def build(cls, weights: Mapping[int, float]) -> WeightedRoute | None:
        items = sorted((v, w) for v, w in weights.items() if w > 0)
        total = sum(w for _, w in items)
        if not items or total <= 0:
            return None
        acc = 0.0
        cum: list[float] = []
        for _, w in items:
            acc += w / total
            cum.append(acc)
        cum[-1] = 1.0
        return cls(versions=tuple(v for v, _ in items), cumulative=tuple(cum))

    def choose(self, u: float) -> int:
        """The version for a uniform draw ``u`` in [0, 1)."""
        i = bisect.bisect_right(self.cumulative, u)
        return self.versions[min(i, len(self.versions) - 1)]


def choose_version(weights: Mapping[int, float], u: float) -> int | None:
    route = WeightedRoute.build(weights)
    return None if route is None else route.choose(u)


class RoutingTable:
    """The hot path's view of one :class:`ControlSnapshot` (built once per refresh)."""

    def __init__(self, snapshot: ControlSnapshot, base_model: str) -> None:
        self.snapshot = snapshot
        self.base_model = base_model
        self.routes: dict[str, WeightedRoute] = {}
        for adapter, weights in snapshot.routes.items():
            route = WeightedRoute.build(weights)
            if route is not None:
                self.routes[adapter] = route
        self._targets: dict[tuple[str, int], Target] = {}
        self._pinned: dict[tuple[str, int], Target] = {}
        for adapter, versions in snapshot.versions.items():
            for v, info in versions.items():
                if info.state is VersionState.READY:
                    target = Target(
                        adapter=adapter,
                        version=v,
                        served_name=lora_name(adapter, v),
                        public_name=f"{adapter}@{v}",
                        label_adapter=adapter,
                        label_version=str(v),
                    )
                    self._targets[(adapter, v)] = target
                    self._pinned[(adapter, v)] = replace(target, pinned=True)
        self.base_target = Target(
            adapter=None,
            version=None,
            served_name=base_model,
            public_name=base_model,
            label_adapter=BASE_LABEL,
            label_version=BASE_LABEL,
        )

    def resolve(self, tenant: TenantInfo, model: str, u: float) -> Target:
        """The target for ``model`` as ``tenant`` asked for it.

        Unknown model -> 404; an adapter the tenant may not use -> 403 (whether
        named plainly or pinned); known but nothing routed or ready -> 404/503.
        """
        if model == self.base_model:
            return self.base_target
        try:
            ref = parse_model(model, self.base_model)
        except AdapterNameError:
            raise NotFound(f"model {model!r} does not exist", param="model") from None
        adapter = ref.adapter
        assert adapter is not None
        if adapter not in self.snapshot.versions:
            raise NotFound(f"model {model!r} does not exist", param="model")
        if not tenant.allows(adapter):
            raise Forbidden(f"this API key may not use model {model!r}", param="model")
        if ref.version is not None:
            target = self._pinned.get((adapter, ref.version))
            if target is None:
                raise NotFound(
                    f"version {ref.version} of {adapter!r} is not available", param="model"
                )
            return target
        route = self.routes.get(adapter)
        if route is None:
            raise Unavailable(f"no version of {adapter!r} is routed", code="no_route")
        target = self._targets.get((adapter, route.choose(u)))
        if target is None:  # a route to a version that left READY since the refresh
            raise Unavailable(f"no ready version of {adapter!r}", code="no_route")
        return target

    def models_for(self, tenant: TenantInfo) -> list[str]:
        """The base model and the logical adapters ``tenant`` may use that have a ready version."""
        ready = {adapter for adapter, _ in self._targets}
        return [self.base_model, *(a for a in sorted(ready) if tenant.allows(a))]

    def ready_loras(self) -> dict[str, str]:
        """vLLM name -> path of every READY version (what each replica should hold)."""
        out: dict[str, str] = {}
        for (adapter, v), target in self._targets.items():
            out[target.served_name] = self.snapshot.versions[adapter][v].path
        return out


class ReplicaView(Protocol):
    """What replica choice needs to know about a replica."""

    @property
    def name(self) -> str: ...
    @property
    def healthy(self) -> bool: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def loaded(self) -> Collection[str]: ...


R = TypeVar("R", bound=ReplicaView)


def choose_replica(
    replicas: Sequence[R], served_name: str | None, exclude: Collection[str] = (), tie: int = 0
) -> R | None:
    """A healthy replica that holds ``served_name`` (None = base model), least in flight first.

    Ties are broken by ``tie`` (any int, e.g. a counter) so equal replicas share load.
    """
    best: list[R] = []
    low = -1
    for r in replicas:
        if not r.healthy or r.name in exclude:
            continue
        if served_name is not None and served_name not in r.loaded:
            continue
        if low < 0 or r.in_flight < low:
            best = [r]
            low = r.in_flight
        elif r.in_flight == low:
            best.append(r)
    if not best:
        return None
    return best[tie % len(best)]
