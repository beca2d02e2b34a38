"""Persistence of the drift service (SQLAlchemy 2): SQLite (WAL) or PostgreSQL.

Tables: request events (features always, text per privacy setting), feedback,
drift alarms, retrain triggers and reference windows (defined in
:mod:`driftgate.core.state.schema.drift`). Inserts of events are idempotent by event
id (``INSERT ... ON CONFLICT DO NOTHING``, with ``RETURNING`` on PostgreSQL), so a retried batch
stores nothing twice and the caller learns which events were new.
The retrain job reads its data through :meth:`DriftStore.requests_with_feedback`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import Engine, Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from drift.review_store import ReviewStore
from drift.training_data import (
    ConfidentAnswer,
    LabeledExample,
    confident_answers,
    requests_with_feedback,
)
from drift.version_window import VOTE_JOIN, VersionStats, plain_row, version_window
from driftgate.core.state.engine import make_engine
from driftgate.core.state.migrate import upgrade
from driftgate.core.state.schema.drift import (
    BASE_VERSION,
    FEEDBACK_CLIENT,
    FEEDBACK_REVIEW,
    REQUEST_COLUMNS,
    REQUEST_FLAG_COLUMNS,
    alarms,
    feedback,
    references,
    requests,
    review_items,
    triggers,
)

__all__ = [
    "BASE_VERSION",
    "FEEDBACK_CLIENT",
    "FEEDBACK_REVIEW",
    "ConfidentAnswer",
    "DriftStore",
    "FeedbackWrite",
    "LabeledExample",
    "Reference",
    "StoredRequest",
]

_SQLITE_INSERT_REQUESTS = (
    f"INSERT INTO drift_requests ({', '.join(REQUEST_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(REQUEST_COLUMNS))}) ON CONFLICT(event_id) DO NOTHING"
)


#: Columns a tenant's later feedback on the same request overwrites (the whole vote).
_VOTE_COLUMNS = ("event_id", "ts", "score", "label", "correction", "negative", "source")


class FeedbackWrite(StrEnum):
    """What :meth:`DriftStore.write_feedback` did."""

    NEW = "new"  # the tenant's first vote on the request
    REPLACED = "replaced"  # a later vote: it replaced the earlier one
    DUPLICATE = "duplicate"  # this event was stored already (a retry): nothing changed
    FOREIGN = "foreign"  # the request is stored under another tenant: nothing stored


class StoredRequest(NamedTuple):
    """Where a stored request is monitored, and whether a client pinned its version."""

    adapter: str
    version: int
    pinned: bool


@dataclass(frozen=True, slots=True)
class Reference:
    adapter: str
    version: int
    signal: str
    source: str
    created_ts: float
    values: list[float | str]


class DriftStore:
    """Typed access to the drift tables. Thread-safe: writes are serialized per process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write = threading.Lock()
        #: The review queue's table (:mod:`drift.review_store`), under the same write lock.
        self.reviews = ReviewStore(engine, self._write)
        name = engine.dialect.name
        if name == "sqlite":
            self._insert: Any = sqlite.insert
        elif name == "postgresql":
            self._insert = postgresql.insert
        else:
            raise ValueError(f"unsupported database {name!r} (SQLite or PostgreSQL)")

    @classmethod
    def from_url(cls, url: str, *, sqlite_synchronous: str = "FULL") -> DriftStore:
        return cls(make_engine(url, sqlite_synchronous=sqlite_synchronous))

    def create_all(self) -> None:
        """Create or upgrade every table of the shared database (:func:`upgrade`)."""
        upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(select(1))

    # --- writes -----------------------------------------------------------------------

    def _insert_new(
        self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]
    ) -> set[str]:
        stmt = (
            self._insert(table)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(table.c.event_id)
        )
        return {r[0] for r in conn.execute(stmt, list(rows))}

    def insert_requests(self, rows: Sequence[tuple[Any, ...]]) -> set[str]:
        """Insert request rows, skipping known event ids; return the ids that were new.

        Rows are tuples in :data:`~driftgate.core.state.schema.drift.REQUEST_COLUMNS` order
        (event id first), as :func:`drift.batch.request_rows` builds them; committed when
        this returns.
        """
        if not rows:
            return set()
        with self._write, self.engine.begin() as conn:
            if self.engine.dialect.name == "sqlite":
                return self._insert_requests_sqlite(conn, rows)
            dicts = [dict(zip(REQUEST_COLUMNS, r, strict=True)) for r in rows]
            for d in dicts:  # 0/1 in the rows; PostgreSQL's boolean takes no integers
                for name in REQUEST_FLAG_COLUMNS:
                    d[name] = bool(d[name])
            return self._insert_new(conn, requests, dicts)

    def _insert_requests_sqlite(
        self, conn: Connection, rows: Sequence[tuple[Any, ...]]
    ) -> set[str]:
        # SQLAlchemy's RETURNING path costs ~3x the DBAPI's executemany here. Under the
        # write lock, new rows are exactly those with an id above the maximum before.
        before = conn.execute(select(func.max(requests.c.id))).scalar() or 0
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.executemany(_SQLITE_INSERT_REQUESTS, rows)
            inserted = cur.rowcount
        finally:
            cur.close()
        if inserted == len(rows):
            return {r[0] for r in rows}
        stmt = select(requests.c.event_id).where(requests.c.id > before)
        return {r[0] for r in conn.execute(stmt)}

    def write_feedback(self, row: dict[str, Any]) -> FeedbackWrite:
        """Store one feedback row as the tenant's vote on its request, and commit.

        One vote per (request id, tenant): a later row replaces the earlier one whole
        (an upsert, on SQLite and PostgreSQL alike), it never adds a second. Feedback on
        a request stored under another tenant stores nothing. A request event may still
        be on its way (events are batched); the readers join feedback to requests on the
        tenant too, so a foreign vote that came first never counts.
        """
        request_id, tenant = row["request_id"], row["tenant"]
        with self._write, self.engine.begin() as conn:
            # Foreign: the id is stored, but under other tenants only (two tenants' requests
            # may share an id when they came through different gateway deployments).
            same_id = requests.c.request_id == request_id
            stored_by = conn.execute(
                select(
                    select(requests.c.id).where(same_id, requests.c.tenant == tenant).exists(),
                    select(requests.c.id).where(same_id, requests.c.tenant != tenant).exists(),
                )
            ).one()
            if stored_by[1] and not stored_by[0]:
                return FeedbackWrite.FOREIGN
            seen = select(feedback.c.id).where(feedback.c.event_id == row["event_id"])
            if conn.execute(seen).first() is not None:  # a retry (event ids are unique)
                return FeedbackWrite.DUPLICATE
            prior = conn.execute(
                select(feedback.c.id).where(
                    feedback.c.request_id == request_id, feedback.c.tenant == tenant
                )
            ).first()
            stmt = self._insert(feedback).values(row)
            stmt = stmt.on_conflict_do_update(
                index_elements=["request_id", "tenant"],
                set_={c: stmt.excluded[c] for c in _VOTE_COLUMNS},
            )
            conn.execute(stmt)
        return FeedbackWrite.NEW if prior is None else FeedbackWrite.REPLACED

    def record_alarm(self, row: dict[str, Any]) -> None:
        with self._write, self.engine.begin() as conn:
            conn.execute(alarms.insert(), [row])

    def record_alarms(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            with self._write, self.engine.begin() as conn:
                conn.execute(alarms.insert(), list(rows))

    def record_trigger(
        self, *, adapter: str, version: int, reason: str, mode: str, outcome: str, detail: str
    ) -> None:
        with self._write, self.engine.begin() as conn:
            conn.execute(
                triggers.insert(),
                [
                    {
                        "ts": time.time(),
                        "adapter": adapter,
                        "version": version,
                        "reason": reason,
                        "mode": mode,
                        "outcome": outcome,
                        "detail": detail,
                    }
                ],
            )

    def save_reference(self, ref: Reference) -> None:
        """Store (or replace) the reference window of one signal."""
        self.save_references([ref])

    def save_references(self, refs: Sequence[Reference]) -> None:
        """Store (or replace) reference windows, in one transaction."""
        if not refs:
            return
        with self._write, self.engine.begin() as conn:
            for ref in refs:
                conn.execute(
                    delete(references).where(
                        references.c.adapter == ref.adapter,
                        references.c.version == ref.version,
                        references.c.signal == ref.signal,
                    )
                )
            conn.execute(
                references.insert(),
                [
                    {
                        "adapter": ref.adapter,
                        "version": ref.version,
                        "signal": ref.signal,
                        "source": ref.source,
                        "created_ts": ref.created_ts,
                        "values_json": json.dumps(ref.values),
                    }
                    for ref in refs
                ],
            )

    def purge(self, older_than_ts: float) -> tuple[int, int]:
        """Delete request events and feedback older than a time; return how many of each.
        Review items queued before it go too (their requests are gone)."""
        with self._write, self.engine.begin() as conn:
            conn.execute(delete(review_items).where(review_items.c.created_ts < older_than_ts))
            n_req = conn.execute(delete(requests).where(requests.c.ts < older_than_ts)).rowcount
            n_fb = conn.execute(delete(feedback).where(feedback.c.ts < older_than_ts)).rowcount
        return int(n_req or 0), int(n_fb or 0)

    # --- reads ------------------------------------------------------------------------

    def lookup_requests(self, request_ids: Iterable[str]) -> dict[str, StoredRequest]:
        """(adapter, version, pinned) of stored requests by request id."""
        ids = list(request_ids)
        if not ids:
            return {}
        stmt = select(
            requests.c.request_id, requests.c.adapter, requests.c.version, requests.c.pinned
        ).where(requests.c.request_id.in_(ids))
        with self.engine.connect() as conn:
            return {
                r.request_id: StoredRequest(r.adapter, r.version, bool(r.pinned))
                for r in conn.execute(stmt)
            }

    def feedback_for_requests(self, request_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Stored feedback rows on the given requests, oldest first (any tenant's: the
        caller keeps those of the request's tenant)."""
        ids = list(request_ids)
        if not ids:
            return []
        stmt = select(feedback).where(feedback.c.request_id.in_(ids)).order_by(feedback.c.id)
        with self.engine.connect() as conn:
            return [plain_row(r) for r in conn.execute(stmt)]

    def orphan_feedback_request_ids(self, limit: int) -> list[str]:
        """Request ids that have feedback but no stored request event (yet)."""
        stmt = (
            select(feedback.c.request_id)
            .outerjoin(requests, requests.c.request_id == feedback.c.request_id)
            .where(requests.c.id.is_(None))
            .distinct()
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(stmt)]

    def versions(self) -> list[tuple[str, int]]:
        """Every (adapter, version) with stored request events."""
        stmt = select(requests.c.adapter, requests.c.version).distinct()
        with self.engine.connect() as conn:
            return [(r.adapter, r.version) for r in conn.execute(stmt)]

    def recent_requests(self, adapter: str, version: int, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` routed request rows of one version, oldest first (features
        only; pinned requests are stored but not watched)."""
        cols = [
            requests.c.id,
            requests.c.request_id,
            requests.c.status_code,
            requests.c.prompt_tokens,
            requests.c.completion_tokens,
            requests.c.latency_ms,
            requests.c.ttft_ms,
            requests.c.finish_reason,
            requests.c.empty,
            requests.c.refusal,
            requests.c.mean_logprob,
            requests.c.first_token_margin,
        ]
        stmt = (
            select(*cols)
            .where(
                requests.c.adapter == adapter,
                requests.c.version == version,
                requests.c.pinned.is_(False),
            )
            .order_by(requests.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = [plain_row(r) for r in conn.execute(stmt)]
        rows.reverse()
        return rows

    def recent_feedback(self, adapter: str, version: int, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` feedback rows on routed requests of one version, oldest first."""
        stmt = (
            select(feedback.c.id, feedback.c.score, feedback.c.negative)
            .join(requests, VOTE_JOIN)
            .where(
                requests.c.adapter == adapter,
                requests.c.version == version,
                requests.c.pinned.is_(False),
            )
            .order_by(feedback.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = [plain_row(r) for r in conn.execute(stmt)]
        rows.reverse()
        return rows

    def references(self) -> list[Reference]:
        with self.engine.connect() as conn:
            return [
                Reference(
                    adapter=r.adapter,
                    version=r.version,
                    signal=r.signal,
                    source=r.source,
                    created_ts=r.created_ts,
                    values=json.loads(r.values_json),
                )
                for r in conn.execute(select(references))
            ]

    def confirmed_alarms(self) -> list[dict[str, Any]]:
        stmt = select(alarms).where(alarms.c.confirmed.is_(True)).order_by(alarms.c.id)
        with self.engine.connect() as conn:
            return [plain_row(r) for r in conn.execute(stmt)]

    def alarms(self, adapter: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        stmt = select(alarms).order_by(alarms.c.id.desc()).limit(limit)
        if adapter is not None:
            stmt = stmt.where(alarms.c.adapter == adapter)
        with self.engine.connect() as conn:
            return [plain_row(r) for r in conn.execute(stmt)]

    def triggers(self, adapter: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        stmt = select(triggers).order_by(triggers.c.id.desc()).limit(limit)
        if adapter is not None:
            stmt = stmt.where(triggers.c.adapter == adapter)
        with self.engine.connect() as conn:
            return [plain_row(r) for r in conn.execute(stmt)]

    def last_started_trigger_ts(self, adapter: str) -> float | None:
        stmt = select(func.max(triggers.c.ts)).where(
            triggers.c.adapter == adapter, triggers.c.outcome == "started"
        )
        with self.engine.connect() as conn:
            value = conn.execute(stmt).scalar()
        return None if value is None else float(value)

    def version_window(
        self, adapter: str, versions: Iterable[int], since: float, *, max_tenant_share: float
    ) -> dict[int, VersionStats]:
        """What each version of ``adapter`` did on routed requests that arrived at or after
        ``since``, each tenant's votes capped at ``max_tenant_share`` of those counted
        (:mod:`drift.version_window`)."""
        return version_window(
            self.engine, adapter, versions, since, max_tenant_share=max_tenant_share
        )

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar() or 0)
                for t in (requests, feedback, alarms, triggers)
            }

    def requests_with_feedback(
        self,
        adapter: str,
        since: float | None = None,
        limit: int | None = None,
        *,
        tenants: Collection[str] | None = None,
    ) -> list[LabeledExample]:
        """The retrain job's data (:func:`drift.training_data.requests_with_feedback`)."""
        return requests_with_feedback(self.engine, adapter, since, limit, tenants=tenants)

    def confident_answers(
        self,
        adapter: str,
        version: int | None,
        *,
        before: float,
        min_mean_logprob: float,
        tenants: Collection[str],
        limit: int = 2000,
    ) -> list[ConfidentAnswer]:
        """The retrain job's anchors (:func:`drift.training_data.confident_answers`)."""
        return confident_answers(
            self.engine,
            adapter,
            version,
            before=before,
            min_mean_logprob=min_mean_logprob,
            tenants=tenants,
            limit=limit,
        )
