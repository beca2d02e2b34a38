"""The per-tenant cap on a training set (pure)."""

from __future__ import annotations

import random

import pytest

from retrain.tenant_share import cap_by_tenant, per_tenant_limit


def test_limit_is_the_largest_that_keeps_every_share() -> None:
    assert per_tenant_limit({"a": 100, "b": 10, "c": 10}, 0.5) == 20
    assert per_tenant_limit({"a": 100, "b": 10, "c": 10}, 1.0) == 100
    assert per_tenant_limit({"a": 3, "b": 3, "c": 3}, 0.34) == 3
    assert per_tenant_limit({"a": 7}, 0.5) == 0  # alone: always 100%
    assert per_tenant_limit({}, 0.5) == 0


def test_cap_keeps_order_and_the_first_items_of_each_tenant() -> None:
    items = ["a1", "b1", "a2", "a3", "a4", "b2", "a5"]
    kept, dropped = cap_by_tenant(items, lambda x: x[0], 0.5)
    assert kept == ["a1", "b1", "a2", "b2"]
    assert dropped == {"a": 3}


@pytest.mark.parametrize("share", [0.3, 0.5, 0.75])
def test_no_tenant_exceeds_its_share_and_none_is_cut_needlessly(share: float) -> None:
    rng = random.Random(7)
    for _ in range(200):
        counts = {t: rng.randint(0, 40) for t in "abcde"[: rng.randint(2, 5)]}
        items = [f"{t}{i}" for t, n in counts.items() for i in range(n)]
        rng.shuffle(items)
        kept, _ = cap_by_tenant(items, lambda x: x[0], share)
        got: dict[str, int] = {}
        for x in kept:
            got[x[0]] = got.get(x[0], 0) + 1
        total = len(kept)
        assert all(n <= share * total + 1e-9 for n in got.values()), (counts, got)
        # One more item for the largest tenant would break the share: the cap is tight.
        limit = per_tenant_limit(counts, share)
        bigger = {t: min(c, limit + 1) for t, c in counts.items()}
        if any(c > limit for c in counts.values()):
            assert max(bigger.values()) > share * sum(bigger.values()) + 1e-9


def test_share_is_validated() -> None:
    with pytest.raises(ValueError):
        per_tenant_limit({"a": 1}, 0.0)
    with pytest.raises(ValueError):
        per_tenant_limit({"a": 1}, 1.01)
