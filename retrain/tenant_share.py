"""No tenant supplies more than a share of a training set: a cap on examples per tenant.

Pure. The items come in order of preference (curation passes them newest first); each
tenant keeps its first ``k`` items, with ``k`` the largest number for which no tenant
holds more than ``max_share`` of what is kept. A tenant with more than the others loses
its oldest items; the others lose nothing unless the share cannot be met at all.

The cap needs at least two tenants to share among: with one, it would keep nothing
(one tenant is always 100%), so the caller decides when it applies (curation: when two
or more tenants are opted in to train the adapter; see docs/SECURITY.md).

>>> kept, dropped = cap_by_tenant(["a1", "a2", "a3", "a4", "b1", "b2"], lambda x: x[0], 0.5)
>>> kept, dict(dropped)
(['a1', 'a2', 'b1', 'b2'], {'a': 2})
>>> cap_by_tenant(["a1", "a2"], lambda x: x[0], 0.5)[0]  # b gave nothing: a keeps nothing
[]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")

#: Float slack: 0.5 * 20 must admit 10.
_EPS = 1e-9


def _ok(counts: Mapping[str, int], k: int, max_share: float) -> bool:
    kept = [min(c, k) for c in counts.values()]
    return max(kept, default=0) <= max_share * sum(kept) + _EPS


def per_tenant_limit(counts: Mapping[str, int], max_share: float) -> int:
    """The largest number of items each tenant may keep so that none holds more than
    ``max_share`` of the total kept (0 when no positive number does).

    The slack ``max_share * sum(min(c, k)) - min(max(c), k)`` is concave in ``k`` and 0
    at ``k = 0``, so the ``k`` that satisfy it form an interval from 0: bisect it.

    >>> per_tenant_limit({"a": 100, "b": 10, "c": 10}, 0.5)
    20
    >>> per_tenant_limit({"a": 5, "b": 5}, 0.5)
    5
    >>> per_tenant_limit({"a": 5, "b": 5}, 0.4)
    0
    """
    if not 0.0 < max_share <= 1.0:
        raise ValueError(f"max_share {max_share} outside (0, 1]")
    lo, hi = 0, max(counts.values(), default=0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _ok(counts, mid, max_share):
            lo = mid
        else:
            hi = mid - 1
    return lo


def cap_by_tenant(
    items: Sequence[T], tenant_of: Callable[[T], str], max_share: float
) -> tuple[list[T], Counter[str]]:
    """(the items kept, in their order; how many were dropped per tenant)."""
    counts = Counter(tenant_of(x) for x in items)
    limit = per_tenant_limit(counts, max_share)
    seen: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    kept: list[T] = []
    for x in items:
        t = tenant_of(x)
        seen[t] += 1
        if seen[t] <= limit:
            kept.append(x)
        else:
            dropped[t] += 1
    return kept, dropped
