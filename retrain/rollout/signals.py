"""Per-version live signals for the canary judgement, read from the drift tables (read-only).

``drift/store.py`` has no aggregate per-version query over a time window, so
this module runs its own against the drift service's tables: requests that
arrived since ``since`` and the feedback given on them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

from sqlalchemy import Engine, case, func, select

from drift.store import feedback, requests
from retrain.rollout.judge import VersionStats

#: Most latencies read per version to compute a median.
MAX_LATENCIES = 5000


def version_stats(
    engine: Engine, adapter: str, versions: Iterable[int], since: float
) -> dict[int, VersionStats]:
    """Signals of each version of ``adapter`` over requests that arrived at or after ``since``.

    Errors are responses with status >= 500 (client errors and abandoned
    requests, 4xx and 499, say nothing about the version).
    """
    wanted = sorted(set(versions))
    if not wanted:
        return {}
    in_window = (
        requests.c.adapter == adapter,
        requests.c.version.in_(wanted),
        requests.c.ts >= since,
    )
    counts = (
        select(
            requests.c.version,
            func.count(),
            func.sum(case((requests.c.status_code >= 500, 1), else_=0)),
        )
        .where(*in_window)
        .group_by(requests.c.version)
    )
    fb = (
        select(
            requests.c.version,
            func.count(feedback.c.id),
            func.sum(case((feedback.c.negative.is_(True), 1), else_=0)),
        )
        .join(feedback, feedback.c.request_id == requests.c.request_id)
        .where(*in_window)
        .group_by(requests.c.version)
    )
    out: dict[int, dict[str, int]] = {v: {} for v in wanted}
    lat: dict[int, float | None] = {}
    with engine.connect() as conn:
        for v, n, errors in conn.execute(counts):
            out[int(v)].update(requests=int(n), errors=int(errors or 0))
        for v, n, negative in conn.execute(fb):
            out[int(v)].update(feedback=int(n), negative=int(negative or 0))
        for v in wanted:
            q = (
                select(requests.c.latency_ms)
                .where(
                    requests.c.adapter == adapter,
                    requests.c.version == v,
                    requests.c.ts >= since,
                    requests.c.status_code == 200,
                )
                .order_by(requests.c.id.desc())
                .limit(MAX_LATENCIES)
            )
            values = [float(x) for x in conn.execute(q).scalars()]
            lat[v] = statistics.median(values) if values else None
    return {v: VersionStats(latency_p50_ms=lat[v], **out[v]) for v in wanted}
