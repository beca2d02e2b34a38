"""The review queue: filled when a version's drift is confirmed, read and labelled by
reviewers (blocking methods: run them in a thread).

The candidates are the version's newest routed, successful requests with prompt text and
no label or correction yet (:meth:`drift.review_store.ReviewStore.candidates`). With an
embedder they are embedded and picked by :func:`drift.review_selection.select_for_review`
away from what is already known: the version's reference prompts (its centroid, and its
sampled reference embeddings when given, so requests like the reference's come last and
the labels go to the new region) and the earlier rounds' picks; without one, newest first
with near-duplicate prompts (word trigrams) skipped.

The budget is spent in rounds: a fill tops the version's open (unlabelled) items up to
``round_size``, never past ``budget`` items in all, labelled or not (the labels a
confirmed drift may cost). The service fills on each confirmed alarm and once a round is
all answered (:meth:`ReviewQueue.round_answered`), so each round picks among the newest
requests, away from what reviewers already labelled.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from drift.embeddings import Embedder
from drift.review_selection import Candidate, select_by_text, select_for_review
from drift.review_store import NewReviewItem
from drift.store import FEEDBACK_REVIEW, DriftStore, FeedbackWrite
from driftgate.core.errors import NotFound
from driftgate.core.events import FeedbackEvent

log = logging.getLogger(__name__)

#: Candidates read per item still to pick (the selection needs room to spread).
CANDIDATES_PER_SLOT = 10
#: At most this many candidates are embedded per fill.
MAX_CANDIDATES = 2000

Centroid = Callable[[str, int], np.ndarray | None]
#: The version's reference prompts' embeddings, one per row (``None`` when unknown).
ReferencePoints = Callable[[str, int], np.ndarray | None]
#: How sure the model was of a candidate's answer (higher = surer), from its stored row;
#: ``None`` when unknown.
Confidence = Callable[[dict[str, Any]], float | None]


def stored_confidence(row: dict[str, Any]) -> float | None:
    """The answer's geometric-mean token probability in (0, 1]: ``exp`` of the mean token
    logprob the gateway stored (``None`` without one).

    >>> stored_confidence({"mean_logprob": 0.0}), stored_confidence({"mean_logprob": None})
    (1.0, None)
    """
    value = row.get("mean_logprob")
    return None if value is None else math.exp(float(value))


def _not_found() -> NotFound:
    return NotFound("no review item with this id", param="id", code="not_found")


class ReviewQueue:
    """Fills a version's review queue in rounds up to ``budget`` items; serves and labels
    items. ``round_size``: most open items at once (default: the whole budget)."""

    def __init__(
        self,
        store: DriftStore,
        budget: int,
        *,
        round_size: int | None = None,
        embedder: Embedder | None = None,
        centroid: Centroid | None = None,
        reference: ReferencePoints | None = None,
        confidence: Confidence = stored_confidence,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.budget = budget
        self.round_size = budget if round_size is None else round_size
        self.embedder = embedder
        self.centroid = centroid
        self.reference = reference
        self.confidence = confidence
        self.clock = clock

    def room(self, adapter: str, version: int) -> int:
        """Items a fill would add now: the round's open slots, within the budget left."""
        reviews = self.store.reviews
        left = self.budget - reviews.count(adapter, version)
        return max(0, min(left, self.round_size - reviews.open_count(adapter, version)))

    def round_answered(self, adapter: str, version: int) -> bool:
        """Every queued item of the version is labelled and budget is left: time for a round."""
        reviews = self.store.reviews
        queued = reviews.count(adapter, version)
        return 0 < queued < self.budget and reviews.open_count(adapter, version) == 0

    def _covered(self, adapter: str, version: int) -> np.ndarray | None:
        """Embeddings of what is known already: the reference sample and the earlier
        rounds' picks (``None`` when neither is)."""
        assert self.embedder is not None
        parts = []
        known = self.reference(adapter, version) if self.reference is not None else None
        if known is not None and len(known):
            parts.append(np.asarray(known, dtype=np.float64))
        earlier = self.store.reviews.queued_prompts(adapter, version)
        if earlier:
            parts.append(np.asarray(self.embedder.encode(earlier), dtype=np.float64))
        return np.concatenate(parts) if parts else None

    def fill(self, adapter: str, version: int) -> int:
        """Queue one round for ``(adapter, version)``: its open items topped up to
        ``round_size`` within the budget's remainder; how many were added."""
        room = self.room(adapter, version)
        if room <= 0:
            return 0
        queued_before = self.store.reviews.count(adapter, version)
        rows = self.store.reviews.candidates(
            adapter, version, min(MAX_CANDIDATES, room * CANDIDATES_PER_SLOT)
        )
        if not rows:
            return 0
        texts = [str(r["prompt_text"]) for r in rows]
        if self.embedder is not None:
            vectors = self.embedder.encode(texts)
            cands = [
                Candidate(r["request_id"], r["tenant"], embedding=v, confidence=self.confidence(r))
                for r, v in zip(rows, vectors, strict=True)
            ]
            centre = self.centroid(adapter, version) if self.centroid is not None else None
            covered = self._covered(adapter, version)
            picked = select_for_review(cands, centre, room, covered=covered)
        else:
            cands = [
                Candidate(r["request_id"], r["tenant"], text=t)
                for r, t in zip(rows, texts, strict=True)
            ]
            picked = select_by_text(cands, room)
        now = self.clock()
        self.store.reviews.add(
            [
                NewReviewItem(
                    adapter=adapter,
                    version=version,
                    tenant=s.candidate.tenant,
                    request_id=s.candidate.request_id,
                    created_ts=now,
                    rank=s.rank,
                    reasons={**s.reasons, "candidates": len(rows), "queued_before": queued_before},
                )
                for s in picked
            ]
        )
        log.info(
            "review queue of %s@%d: %d items added from %d candidates",
            adapter, version, len(picked), len(rows),
        )  # fmt: skip
        return len(picked)

    def items(self, adapter: str | None, tenant: str | None, limit: int) -> list[dict[str, Any]]:
        """Unlabelled items, oldest selection first and by rank within it."""
        return self.store.reviews.open_items(adapter, tenant, limit)

    def label(
        self, item_id: int, tenant: str | None, label: str | None, correction: str | None
    ) -> dict[str, Any]:
        """Store a reviewer's label or correction as the item's tenant's feedback on its
        request (source ``review``, replacing any earlier vote) and mark the item labelled.

        ``tenant``: the caller's; another tenant's item is not found (404), as an unknown
        one. A labelled item may be labelled again (the vote is replaced).
        """
        item = self.store.reviews.get(item_id)
        if item is None or (tenant is not None and item["tenant"] != tenant):
            raise _not_found()
        event = FeedbackEvent(
            request_id=item["request_id"],
            tenant=item["tenant"],
            ts=self.clock(),
            label=label,
            correction=correction,
        )
        row = {
            "event_id": event.event_id,
            "request_id": event.request_id,
            "ts": event.ts,
            "tenant": event.tenant,
            "score": None,
            "label": event.label,
            "correction": event.correction,
            "negative": event.is_negative,
            "source": FEEDBACK_REVIEW,
        }
        outcome = self.store.write_feedback(row)
        if outcome is FeedbackWrite.FOREIGN:  # cannot happen: the item names the tenant
            raise _not_found()
        self.store.reviews.mark_labelled(item_id, event.ts)
        return {"id": item_id, "request_id": item["request_id"], "feedback_id": event.event_id}
