"""Per-version live signals for the canary judgement, read through the drift store."""

from __future__ import annotations

from collections.abc import Iterable

from drift.store import DriftStore
from rollout.judge import VersionStats


def version_stats(
    store: DriftStore, adapter: str, versions: Iterable[int], since: float
) -> dict[int, VersionStats]:
    """Signals of each version of ``adapter`` over requests that arrived at or after ``since``.

    Errors are responses with status >= 500 (client errors and abandoned requests, 4xx
    and 499, say nothing about the version).
    """
    return {
        v: VersionStats(
            requests=w.requests,
            errors=w.errors,
            feedback=w.feedback,
            negative=w.negative,
            latency_p50_ms=w.latency_p50_ms,
        )
        for v, w in store.version_window(adapter, versions, since).items()
    }
