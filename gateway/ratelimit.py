"""Per-tenant token buckets (in memory, per gateway replica); pure apart from the clock."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token bucket per key: ``rate`` tokens per second, at most ``burst`` (>= 1) banked.

    ``acquire`` returns 0.0 when the request may pass, else the seconds until it could.
    A rate of 0 or less means unlimited.

    >>> rl = RateLimiter()
    >>> rl.acquire("t", rate=1.0, burst=2, now=0.0), rl.acquire("t", rate=1.0, burst=2, now=0.0)
    (0.0, 0.0)
    >>> rl.acquire("t", rate=1.0, burst=2, now=0.5)
    0.5
    """

    __slots__ = ("_buckets",)

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str, *, rate: float, burst: int, now: float) -> float:
        if rate <= 0:
            return 0.0
        cap = float(max(burst, 1))
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Bucket(tokens=cap, stamp=now)
        else:
            b.tokens = min(cap, b.tokens + (now - b.stamp) * rate)
            b.stamp = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / rate

    def forget(self, keep: set[str]) -> None:
        """Drop buckets of keys no longer in ``keep`` (deleted tenants)."""
        for key in [k for k in self._buckets if k not in keep]:
            del self._buckets[key]
