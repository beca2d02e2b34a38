"""Per-tenant admission limits: the interface, and the in-memory limiter of one replica.

Three limits per tenant (``TenantInfo``; 0 turns each off):

* ``rate_limit_rps`` / ``burst``: a token bucket of requests (``gateway/ratelimit.py``).
* ``tokens_per_minute``: prompt + completion tokens of the requests that *finished* in the
  last 60 s. A request is refused while that sum is at or over the budget; a request
  already admitted is charged its actual size when it ends, so the budget can be
  overshot by the requests in flight (each by its own size).
* ``max_concurrent``: requests in flight at once. Each admitted request holds a lease
  until it ends (:meth:`TenantLimiter.settle`); a lease that is never given back (a
  replica died mid-request) ages out after ``lease_ttl_s``.

Feedback calls (``/v1/feedback``, review labels) have a bucket of their own at the same rate
and burst, so rating answers never eats into a tenant's inference budget, and scripted
votes are still bounded (:meth:`TenantLimiter.admit_feedback`).

A refusal raises :class:`RateLimited` (429 ``rate_limit_exceeded`` with Retry-After).

:class:`MemoryLimiter` keeps the state in this process: with N replicas a tenant gets N
times its limits. ``gateway/redis_limits.py`` shares them across replicas.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

from driftgate.core.errors import RateLimited
from driftgate.core.state.models import TenantInfo
from gateway.ratelimit import RateLimiter

#: The tokens-per-minute window, in whole seconds (one slot per second).
WINDOW_S = 60
#: Retry-After of a refusal over the concurrency cap: when a request ends is unknown.
CONCURRENCY_RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class Lease:
    """What an admitted request owes back when it ends."""

    tenant: str
    id: str
    #: Charge the request's tokens at the end (the tenant has a tokens-per-minute budget).
    charge: bool
    #: A concurrency slot is held (the tenant has a cap).
    slot: bool
    #: Admitted by this replica's memory (the shared store was unreachable).
    local: bool = False


class TenantLimiter(Protocol):
    """Admits requests under their tenant's limits; one per gateway."""

    async def admit(self, tenant: TenantInfo, lease_id: str, now: float) -> Lease:
        """Admit one request (raises :class:`RateLimited`); ``now`` is a monotonic clock."""
        ...

    async def admit_feedback(self, tenant: TenantInfo, now: float) -> None:
        """Charge one feedback call to the tenant's feedback bucket (raises
        :class:`RateLimited`); ``now`` is a monotonic clock."""
        ...

    def settle(self, lease: Lease, tokens: int, now: float, *, release: bool = True) -> None:
        """The request ended: charge its ``tokens``, give its slot back if ``release``.

        Never blocks the caller (a shared store is written in the background)."""
        ...

    async def renew_held(self, now: float) -> None:
        """Extend every concurrency slot this replica holds by the lease ttl (run every
        third of it), so a stream that outlives the ttl keeps counting; a slot a dead
        replica held still frees itself."""
        ...

    def forget(self, keep: set[str]) -> None:
        """Drop what is kept for tenants not in ``keep`` (deleted tenants)."""
        ...

    async def close(self) -> None: ...


def refusal(limit: str, tenant: TenantInfo, retry_after_s: float) -> RateLimited:
    """The 429 for the ``limit`` ("rate", "tokens", "concurrency" or "feedback") that refused."""
    if limit == "feedback":
        msg = f"feedback rate limit of {tenant.rate_limit_rps:g} per second exceeded"
    elif limit == "tokens":
        msg = f"token limit of {tenant.tokens_per_minute} tokens/minute reached"
    elif limit == "concurrency":
        msg = f"limit of {tenant.max_concurrent} concurrent requests reached"
    else:
        msg = f"rate limit of {tenant.rate_limit_rps:g} requests/s exceeded"
    return RateLimited(msg, retry_after_s=retry_after_s)


class TokenWindow:
    """Tokens spent over the last :data:`WINDOW_S` seconds, in one-second slots.

    >>> w = TokenWindow()
    >>> w.charge(100, now=0.5); w.charge(50, now=30.2)
    >>> w.used(now=59.0), w.retry_after(budget=120, now=59.0)
    (150, 1.0)
    >>> w.used(now=60.0)
    50
    """

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        self._slots: deque[list[int]] = deque()  # [second, tokens], oldest first

    def _expire(self, now: float) -> None:
        cutoff = int(now) - WINDOW_S
        while self._slots and self._slots[0][0] <= cutoff:
            self._slots.popleft()

    def charge(self, tokens: int, now: float) -> None:
        second = int(now)
        self._expire(now)
        if self._slots and self._slots[-1][0] == second:
            self._slots[-1][1] += tokens
        else:
            self._slots.append([second, tokens])

    def used(self, now: float) -> int:
        self._expire(now)
        return sum(t for _, t in self._slots)

    def retry_after(self, budget: int, now: float) -> float:
        """Seconds until the window holds less than ``budget`` again (0: it does now)."""
        left = self.used(now)
        for second, tokens in self._slots:
            if left < budget:
                break
            left -= tokens
            if left < budget:
                return second + WINDOW_S - now
        return 0.0


class MemoryLimiter:
    """Every limit in this process (the embedded stack; the fallback of a shared store).

    >>> from driftgate.core.state.models import TenantInfo
    >>> t = TenantInfo(1, "t", (), rate_limit_rps=0, burst=0, max_tokens=8, max_concurrent=1)
    >>> lim = MemoryLimiter(lease_ttl_s=300)
    >>> lease = lim.admit_now(t, "r1", now=0.0)
    >>> lim.admit_now(t, "r2", now=0.0)
    Traceback (most recent call last):
    ...
    driftgate.core.errors.RateLimited: limit of 1 concurrent requests reached
    >>> lim.settle(lease, 10, now=1.0); lim.admit_now(t, "r2", now=1.0).slot
    True
    >>> lim.renew_held_now(now=200.0)  # r2 still runs: its slot now lasts until 500
    >>> lim.admit_now(t, "r3", now=400.0)
    Traceback (most recent call last):
    ...
    driftgate.core.errors.RateLimited: limit of 1 concurrent requests reached
    """

    __slots__ = ("_buckets", "_feedback", "_leases", "_ttl", "_windows")

    def __init__(self, lease_ttl_s: float) -> None:
        self._ttl = lease_ttl_s
        self._buckets = RateLimiter()
        self._feedback = RateLimiter()
        self._windows: dict[str, TokenWindow] = {}
        self._leases: dict[str, dict[str, float]] = {}  # tenant -> lease id -> expiry

    async def admit(self, tenant: TenantInfo, lease_id: str, now: float) -> Lease:
        return self.admit_now(tenant, lease_id, now)

    def admit_now(self, tenant: TenantInfo, lease_id: str, now: float) -> Lease:
        name = tenant.name
        cap = tenant.max_concurrent
        if cap > 0:
            held = self._leases.setdefault(name, {})
            for lid in [lid for lid, expiry in held.items() if expiry <= now]:
                del held[lid]
            if len(held) >= cap:
                raise refusal("concurrency", tenant, CONCURRENCY_RETRY_S)
        budget = tenant.tokens_per_minute
        if budget > 0:
            window = self._windows.get(name)
            if window is not None and window.used(now) >= budget:
                raise refusal("tokens", tenant, window.retry_after(budget, now))
        # The bucket is taken last: a request refused by another limit costs it nothing.
        wait = self._buckets.acquire(name, rate=tenant.rate_limit_rps, burst=tenant.burst, now=now)
        if wait:
            raise refusal("rate", tenant, wait)
        if cap > 0:
            self._leases[name][lease_id] = now + self._ttl
        return Lease(name, lease_id, charge=budget > 0, slot=cap > 0, local=True)

    async def admit_feedback(self, tenant: TenantInfo, now: float) -> None:
        self.admit_feedback_now(tenant, now)

    def admit_feedback_now(self, tenant: TenantInfo, now: float) -> None:
        wait = self._feedback.acquire(
            tenant.name, rate=tenant.rate_limit_rps, burst=tenant.burst, now=now
        )
        if wait:
            raise refusal("feedback", tenant, wait)

    def settle(self, lease: Lease, tokens: int, now: float, *, release: bool = True) -> None:
        if lease.charge and tokens > 0:
            self._windows.setdefault(lease.tenant, TokenWindow()).charge(tokens, now)
        if release and lease.slot:
            self._leases.get(lease.tenant, {}).pop(lease.id, None)

    async def renew_held(self, now: float) -> None:
        self.renew_held_now(now)

    def renew_held_now(self, now: float) -> None:
        for held in self._leases.values():
            for lease_id in held:
                held[lease_id] = now + self._ttl

    def forget(self, keep: set[str]) -> None:
        self._buckets.forget(keep)
        self._feedback.forget(keep)
        for table in (self._windows, self._leases):
            for name in [n for n in table if n not in keep]:
                del table[name]

    async def close(self) -> None:
        return None
