"""How the retrain job hands a passing candidate to the rollout controller.

The job writes the rollout straight into the shared state store (no service
needs to be up): approved at once when approval is ``auto``, else it waits for
``driftgate rollout start --id N``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from rollout.machine import Rollout
from rollout.store import RolloutStore


def submit_candidate(
    state_url: str,
    adapter: str,
    path: str,
    *,
    approval: Literal["auto", "manual"] = "auto",
    canary_weight: float = 0.1,
    meta: Mapping[str, Any] | None = None,
) -> Rollout:
    """Record a rollout of the PEFT directory ``path`` as the next version of ``adapter``."""
    store = RolloutStore(state_url)
    try:
        store.create_all()
        return store.create(
            adapter,
            path,
            canary_weight=canary_weight,
            approved=approval == "auto",
            meta=meta,
        )
    finally:
        store.dispose()
