"""One version of an adapter over a time window, read from the drift tables (read-only).

:func:`version_window` aggregates what a canary is judged on: requests that arrived
since ``since`` and the feedback given on them
(:meth:`drift.store.DriftStore.version_window` is the public entry). The row readers
give a pinned reference its values.

What counts as a vote, so that no client can steer the judge alone:

- a request counts once, with the vote of the tenant that made it (one per request
  and tenant in the store, the latest it gave; another tenant's never joins);
- traffic a client pinned to a version (``support@3``) is left out: the comparison is
  over the route's random draw, not over versions a caller chose;
- no tenant supplies more than ``max_tenant_share`` of a version's counted votes: each
  tenant's votes are capped (:func:`cap_votes`); with a single voting tenant and a
  share below 1, nothing counts.

Answer confidence needs no label: over the same routed window, the successful requests
(status 200) that carry a ``mean_logprob`` (mean token logprob of the answer) are
summarised by their count, mean and sample variance, computed in the query.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, case, func, select

from driftgate.core.state.schema.drift import feedback, requests

#: Most latencies read per version to compute a median.
MAX_LATENCIES = 5000

#: Feedback joins its request only as the vote of the tenant that made the request.
VOTE_JOIN = and_(
    feedback.c.request_id == requests.c.request_id, feedback.c.tenant == requests.c.tenant
)


@dataclass(frozen=True, slots=True)
class VersionStats:
    """What one version did over a window: the signals a canary is judged on."""

    requests: int = 0
    #: Requests that ended with a server-side error (status >= 500).
    errors: int = 0
    #: Votes counted: distinct requests with feedback, after the per-tenant cap.
    feedback: int = 0
    negative: int = 0
    #: Median latency of successful requests (ms); None when there are none.
    latency_p50_ms: float | None = None
    #: Tenants that voted, and the votes the per-tenant cap left out.
    voters: int = 0
    capped: int = 0
    #: Successful requests with an answer confidence (``mean_logprob``), their mean (nats
    #: per token) and sample variance; None when there are none (the variance: fewer
    #: than two).
    confidence_requests: int = 0
    confidence_mean: float | None = None
    confidence_var: float | None = None

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
            "voters": self.voters,
            "capped": self.capped,
            "confidence_requests": self.confidence_requests,
            "confidence_mean": self.confidence_mean,
            "confidence_var": self.confidence_var,
        }


def mean_and_variance(n: int, mean: float, mean_square: float) -> tuple[float, float | None]:
    """Mean and sample variance (n - 1) of ``n`` values from their mean and mean square.

    The subtraction loses digits only when the spread is below about 1e-8 of the values'
    size, far below what separates two adapters' confidences; it never goes negative.

    >>> mean, var = mean_and_variance(3, -0.2, (0.1**2 + 0.2**2 + 0.3**2) / 3)
    >>> mean, round(var, 12)  # of -0.1, -0.2, -0.3
    (-0.2, 0.01)
    >>> mean_and_variance(1, -0.5, 0.25)
    (-0.5, None)
    """
    if n < 2:
        return mean, None
    return mean, max(0.0, mean_square - mean * mean) * n / (n - 1)


def cap_votes(votes: Sequence[tuple[int, int]], max_share: float) -> tuple[int, int]:
    """Counted (votes, negative) of tenants' ``(votes, negative)`` under a share cap.

    Each tenant counts at most ``c`` votes, ``c`` the largest whole number with
    ``c <= max_share * counted total``, so no tenant supplies more than ``max_share`` of
    what counts; tenants under ``c`` count whole. A capped tenant's negatives are scaled
    with its votes (rounded half up), so the cap keeps its rate and only lowers its
    weight, and it cannot choose which of its votes count.

    >>> cap_votes([(100, 0), (10, 5), (10, 5)], 0.5)  # one tenant at 83%: capped to 20
    (40, 10)
    >>> cap_votes([(30, 3)], 0.5)  # one tenant alone: nothing counts
    (0, 0)
    >>> cap_votes([(30, 3)], 1.0), cap_votes([(20, 2), (20, 4)], 0.5)
    ((30, 3), (40, 6))
    """
    counts = [n for n, _ in votes if n > 0]
    total = sum(counts)
    if not counts or max_share >= 1 or max(counts) <= max_share * total:
        return total, sum(neg for n, neg in votes if n > 0)

    def fits(c: int) -> bool:  # true on an interval [0, c*]: the sum is concave in c
        return c <= max_share * sum(min(n, c) for n in counts) + 1e-9

    lo, hi = 0, max(counts)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    cap = lo
    kept = negative = 0
    for n, neg in votes:
        if n <= 0:
            continue
        if n <= cap:
            kept, negative = kept + n, negative + neg
        else:
            kept, negative = kept + cap, negative + (2 * neg * cap + n) // (2 * n)
    return kept, negative


def version_window(
    engine: Engine,
    adapter: str,
    versions: Iterable[int],
    since: float,
    *,
    max_tenant_share: float,
) -> dict[int, VersionStats]:
    """Signals of each version of ``adapter`` over requests that arrived at or after ``since``.

    Only routed traffic counts (not pinned); feedback counts as votes as the module
    says, capped at ``max_tenant_share`` (in (0, 1]) per tenant. Errors are responses
    with status >= 500 (client errors and abandoned requests, 4xx and 499, say nothing
    about the version). Answer confidence summarises the successful requests that have one.
    """
    if not 0 < max_tenant_share <= 1:
        raise ValueError("max_tenant_share must be in (0, 1]")
    wanted = sorted(set(versions))
    if not wanted:
        return {}
    in_window = (
        requests.c.adapter == adapter,
        requests.c.version.in_(wanted),
        requests.c.ts >= since,
        requests.c.pinned.is_(False),
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
    # Distinct request ids: a request event stored twice still carries one vote.
    votes = (
        select(
            requests.c.version,
            requests.c.tenant,
            func.count(requests.c.request_id.distinct()),
            func.count(case((feedback.c.negative.is_(True), requests.c.request_id)).distinct()),
        )
        .join(feedback, VOTE_JOIN)
        .where(*in_window)
        .group_by(requests.c.version, requests.c.tenant)
    )
    logprob = requests.c.mean_logprob
    confidence = (
        select(
            requests.c.version, func.count(logprob), func.avg(logprob), func.avg(logprob * logprob)
        )
        .where(*in_window, requests.c.status_code == 200, logprob.is_not(None))
        .group_by(requests.c.version)
    )
    out: dict[int, dict[str, Any]] = {v: {} for v in wanted}
    by_tenant: dict[int, list[tuple[int, int]]] = {v: [] for v in wanted}
    lat: dict[int, float | None] = {}
    with engine.connect() as conn:
        for v, n, errors in conn.execute(counts):
            out[int(v)].update(requests=int(n), errors=int(errors or 0))
        for v, _tenant, n, negative in conn.execute(votes):
            by_tenant[int(v)].append((int(n), int(negative or 0)))
        for v, tenants in by_tenant.items():
            kept, negative = cap_votes(tenants, max_tenant_share)
            raw = sum(n for n, _ in tenants)
            out[v].update(feedback=kept, negative=negative, voters=len(tenants), capped=raw - kept)
        for v, n, mean, mean_square in conn.execute(confidence):
            if n:
                m, var = mean_and_variance(int(n), float(mean), float(mean_square))
                out[int(v)].update(
                    confidence_requests=int(n), confidence_mean=m, confidence_var=var
                )
        for v in wanted:
            q = (
                select(requests.c.latency_ms)
                .where(
                    requests.c.adapter == adapter,
                    requests.c.version == v,
                    requests.c.ts >= since,
                    requests.c.pinned.is_(False),
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
        .join(requests, VOTE_JOIN)
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
