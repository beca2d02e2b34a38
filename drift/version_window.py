"""One version of an adapter over a time window, read from the drift tables (read-only).

:func:`version_window` aggregates what a canary is judged on: requests that arrived
since ``since`` and the feedback given on them
(:meth:`drift.store.DriftStore.version_window` is the public entry). The row readers
give a pinned reference its values.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, case, func, select

from driftgate.core.state.schema.drift import feedback, requests

#: Most latencies read per version to compute a median.
MAX_LATENCIES = 5000


@dataclass(frozen=True, slots=True)
class VersionStats:
    """What one version did over a window: the signals a canary is judged on."""

    requests: int = 0
    #: Requests that ended with a server-side error (status >= 500).
    errors: int = 0
    feedback: int = 0
    negative: int = 0
    #: Median latency of successful requests (ms); None when there are none.
    latency_p50_ms: float | None = None

    @property
    def negative_rate(self) -> float | None:
        return self.negative / self.feedback if self.feedback else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "feedback": self.feedback,
            "negative": self.negative,
            "latency_p50_ms": self.latency_p50_ms,
        }


def version_window(
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


def plain_row(row: Any) -> dict[str, Any]:
    """A result row as a dict with plain ``str`` keys (SQLAlchemy's are a str subclass)."""
    return {str(k): v for k, v in row._mapping.items()}


def request_rows_between(
    engine: Engine,
    adapter: str,
    version: int,
    since: float | None,
    until: float | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Request rows of one version in a time range, oldest first (for a pinned reference)."""
    stmt = (
        select(requests)
        .where(requests.c.adapter == adapter, requests.c.version == version)
        .order_by(requests.c.id)
        .limit(limit)
    )
    if since is not None:
        stmt = stmt.where(requests.c.ts >= since)
    if until is not None:
        stmt = stmt.where(requests.c.ts < until)
    with engine.connect() as conn:
        return [plain_row(r) for r in conn.execute(stmt)]


def feedback_rows_between(
    engine: Engine,
    adapter: str,
    version: int,
    since: float | None,
    until: float | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Feedback rows on one version's requests in a time range (feedback time), oldest first."""
    stmt = (
        select(feedback.c.score, feedback.c.negative)
        .join(requests, requests.c.request_id == feedback.c.request_id)
        .where(requests.c.adapter == adapter, requests.c.version == version)
        .order_by(feedback.c.id)
        .limit(limit)
    )
    if since is not None:
        stmt = stmt.where(feedback.c.ts >= since)
    if until is not None:
        stmt = stmt.where(feedback.c.ts < until)
    with engine.connect() as conn:
        return [plain_row(r) for r in conn.execute(stmt)]
