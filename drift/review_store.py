"""The review queue's table (``drift_review_items``): candidates in, items out, labels marked.

A label itself is stored as the tenant's feedback (:meth:`drift.store.DriftStore.write_feedback`,
source ``review``), so it reaches the training query unchanged; this table only says what
was picked, why, and when it was labelled.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update

from drift.version_window import plain_row
from driftgate.core.state.schema.drift import feedback, requests, review_items


@dataclass(frozen=True, slots=True)
class NewReviewItem:
    adapter: str
    version: int
    tenant: str
    request_id: str
    created_ts: float
    rank: int
    reasons: dict[str, Any]


class ReviewStore:
    """Reads and writes of ``drift_review_items``; writes under the drift store's lock."""

    def __init__(self, engine: Engine, write_lock: threading.Lock) -> None:
        self.engine = engine
        self._write = write_lock

    def candidates(self, adapter: str, version: int, limit: int) -> list[dict[str, Any]]:
        """The newest routed, successful requests of a version with prompt text, no label
        or correction from their tenant and no review item yet; newest first."""
        labelled = (
            select(feedback.c.id)
            .where(
                feedback.c.request_id == requests.c.request_id,
                feedback.c.tenant == requests.c.tenant,
                or_(feedback.c.label.is_not(None), feedback.c.correction.is_not(None)),
            )
            .exists()
        )
        queued = (
            select(review_items.c.id)
            .where(
                review_items.c.request_id == requests.c.request_id,
                review_items.c.tenant == requests.c.tenant,
            )
            .exists()
        )
        stmt = (
            select(
                requests.c.request_id,
                requests.c.tenant,
                requests.c.prompt_text,
                requests.c.mean_logprob,
            )
            .where(
                requests.c.adapter == adapter,
                requests.c.version == version,
                requests.c.pinned.is_(False),
                requests.c.status_code < 400,
                requests.c.prompt_text.is_not(None),
                ~labelled,
                ~queued,
            )
            .order_by(requests.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [plain_row(r) for r in conn.execute(stmt)]

    def count(self, adapter: str, version: int) -> int:
        """Items ever queued for a version (labelled or not): its budget spent so far."""
        stmt = select(func.count()).where(
            review_items.c.adapter == adapter, review_items.c.version == version
        )
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def open_count(self, adapter: str, version: int) -> int:
        """Items of a version queued and not labelled yet: its round still open."""
        stmt = select(func.count()).where(
            review_items.c.adapter == adapter,
            review_items.c.version == version,
            review_items.c.labelled_ts.is_(None),
        )
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def queued_prompts(self, adapter: str, version: int) -> list[str]:
        """The prompts of every item queued for a version so far (earlier rounds' picks)."""
        stmt = (
            select(requests.c.prompt_text)
            .join(
                review_items,
                and_(
                    requests.c.request_id == review_items.c.request_id,
                    requests.c.tenant == review_items.c.tenant,
                ),
            )
            .where(
                review_items.c.adapter == adapter,
                review_items.c.version == version,
                requests.c.prompt_text.is_not(None),
            )
            .order_by(review_items.c.id)
        )
        with self.engine.connect() as conn:
            return [str(r.prompt_text) for r in conn.execute(stmt)]

    def add(self, items: Sequence[NewReviewItem]) -> None:
        if not items:
            return
        rows = [
            {
                "adapter": i.adapter,
                "version": i.version,
                "tenant": i.tenant,
                "request_id": i.request_id,
                "created_ts": i.created_ts,
                "rank": i.rank,
                "reasons": json.dumps(i.reasons, sort_keys=True),
            }
            for i in items
        ]
        with self._write, self.engine.begin() as conn:
            conn.execute(review_items.insert(), rows)

    def open_items(
        self, adapter: str | None, tenant: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Unlabelled items (of one adapter, one tenant if given), by selection then rank,
        with the request's prompt and answer as served."""
        stmt = (
            select(
                review_items,
                requests.c.prompt_text.label("prompt"),
                requests.c.completion_text.label("completion"),
            )
            .join(
                requests,
                and_(
                    requests.c.request_id == review_items.c.request_id,
                    requests.c.tenant == review_items.c.tenant,
                ),
            )
            .where(review_items.c.labelled_ts.is_(None))
            .order_by(review_items.c.id)
            .limit(limit)
        )
        if adapter is not None:
            stmt = stmt.where(review_items.c.adapter == adapter)
        if tenant is not None:
            stmt = stmt.where(review_items.c.tenant == tenant)
        with self.engine.connect() as conn:
            return [_item(plain_row(r)) for r in conn.execute(stmt)]

    def get(self, item_id: int) -> dict[str, Any] | None:
        stmt = select(review_items).where(review_items.c.id == item_id)
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _item(plain_row(row))

    def mark_labelled(self, item_id: int, ts: float) -> None:
        stmt = update(review_items).where(review_items.c.id == item_id).values(labelled_ts=ts)
        with self._write, self.engine.begin() as conn:
            conn.execute(stmt)


def _item(row: dict[str, Any]) -> dict[str, Any]:
    row["reasons"] = json.loads(row["reasons"])
    return row
