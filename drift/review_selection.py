"""Which drifted requests are most worth a reviewer's label (pure: no I/O, no clock).

Given candidate requests with unit-vector prompt embeddings, the version's reference
centroid and a budget ``k``:

1. near-duplicates go first: of two candidates whose cosine similarity is at least
   ``duplicate_cosine``, only the less confident stays (a label on one says what a
   label on the other would);
2. then ``k`` are picked farthest-first (k-center greedy): each pick is the candidate
   farthest from the reference centroid and from every earlier pick, so the labels
   spread over the new region of the embedding space instead of piling onto its
   densest cluster. With confidences given (higher = surer), each distance is weighted
   by the uncertainty ``1 - confidence`` (clipped to ``[min_uncertainty, 1]``), so
   among equally new requests the ones the model is least sure of come first. Points
   already ``covered`` (earlier rounds' picks) count as picks: a later round spreads
   away from them too.

Without embeddings, :func:`select_by_text` keeps the newest requests whose prompts are
not near-duplicates by word shingles.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Two prompts at least this similar (cosine of their embeddings) count as one.
DEFAULT_DUPLICATE_COSINE = 0.95
#: Two prompts whose word-trigram sets overlap at least this much (Jaccard) count as one.
DEFAULT_DUPLICATE_JACCARD = 0.8


@dataclass(frozen=True, slots=True)
class Candidate:
    """One request that could be reviewed."""

    request_id: str
    tenant: str
    #: The prompt's embedding, a unit vector (``None`` when selecting by text).
    embedding: np.ndarray | None = None
    #: How sure the model was of its answer (higher = surer), when known.
    confidence: float | None = None
    #: The prompt text (used only by :func:`select_by_text`).
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Selection:
    """One picked candidate, in pick order, with why it was picked."""

    candidate: Candidate
    rank: int
    reasons: dict[str, Any] = field(default_factory=dict)


def _dedupe_by_embedding(
    candidates: Sequence[Candidate], threshold: float
) -> tuple[list[int], int]:
    """Indices kept (the less confident of each near-duplicate group) and how many went."""
    order = sorted(
        range(len(candidates)),
        key=lambda i: (
            candidates[i].confidence if candidates[i].confidence is not None else 0.0,
            i,
        ),
    )
    points = np.stack([np.asarray(c.embedding, dtype=np.float32) for c in candidates])
    similar = (points @ points.T) >= threshold  # one product: n is at most a few thousand
    kept_mask = np.zeros(len(candidates), dtype=bool)
    for i in order:
        if not similar[i, kept_mask].any():
            kept_mask[i] = True
    kept = [int(i) for i in np.flatnonzero(kept_mask)]
    return sorted(kept), len(candidates) - len(kept)


def _uncertainty(confidence: float | None, floor: float) -> float:
    if confidence is None:
        return 1.0
    return float(min(1.0, max(floor, 1.0 - confidence)))


def select_for_review(
    candidates: Sequence[Candidate],
    reference_centroid: np.ndarray | None,
    k: int,
    *,
    duplicate_cosine: float = DEFAULT_DUPLICATE_COSINE,
    min_uncertainty: float = 0.05,
    covered: np.ndarray | None = None,
) -> list[Selection]:
    """Up to ``k`` candidates, near-duplicates dropped, picked farthest-first.

    ``reference_centroid`` is the version's reference centroid (``None``: the first
    pick is the most uncertain candidate, ties to the earliest). ``covered``: unit
    vectors (one per row) of points already labelled or queued, which the picks spread
    away from as from each other. Confidences are used
    only when every kept candidate has one; mixing weighted and unweighted distances
    would favour whichever kind lacks them.

    >>> e = np.eye(3, dtype=np.float32)
    >>> cands = [Candidate("a", "t", e[0]), Candidate("b", "t", e[0]), Candidate("c", "t", e[1])]
    >>> [s.candidate.request_id for s in select_for_review(cands, e[2], 5)]
    ['a', 'c']
    >>> [s.candidate.request_id for s in select_for_review(cands, e[2], 1, covered=e[:1])]
    ['c']
    """
    if k <= 0 or not candidates:
        return []
    if any(c.embedding is None for c in candidates):
        raise ValueError("every candidate needs an embedding (or use select_by_text)")
    kept, dropped = _dedupe_by_embedding(candidates, duplicate_cosine)
    points = np.stack([np.asarray(candidates[i].embedding, dtype=np.float64) for i in kept])
    confidences = [candidates[i].confidence for i in kept]
    weighted = all(c is not None for c in confidences)
    weights = np.array([_uncertainty(c, min_uncertainty) if weighted else 1.0 for c in confidences])
    if reference_centroid is not None:
        centre = np.asarray(reference_centroid, dtype=np.float64)
        norm = float(np.linalg.norm(centre))
        centre = centre / norm if norm > 0 else centre
        nearest = 1.0 - points @ centre  # cosine distance to the nearest "covered" point
    else:
        nearest = np.ones(len(kept))
    if covered is not None and len(covered):
        done = np.asarray(covered, dtype=np.float64).reshape(len(covered), -1)
        nearest = np.minimum(nearest, (1.0 - points @ done.T).min(axis=1))
    picked: list[Selection] = []
    available = np.ones(len(kept), dtype=bool)
    for rank in range(min(k, len(kept))):
        score = np.where(available, nearest * weights, -np.inf)
        j = int(np.argmax(score))
        available[j] = False
        cand = candidates[kept[j]]
        reasons: dict[str, Any] = {
            "strategy": "k_center",
            "distance": round(float(nearest[j]), 6),
            "score": round(float(score[j]), 6),
            "duplicates_dropped": dropped,
        }
        if weighted:
            reasons["confidence"] = cand.confidence
        picked.append(Selection(cand, rank, reasons))
        nearest = np.minimum(nearest, 1.0 - points @ points[j])
    return picked


def shingles(text: str, n: int = 3) -> frozenset[str]:
    """Lower-cased word ``n``-grams of a text (the whole text when shorter).

    >>> sorted(shingles("Reset my  password now", 3))
    ['my password now', 'reset my password']
    """
    words = re.findall(r"\w+", text.lower())
    if len(words) <= n:
        return frozenset({" ".join(words)})
    return frozenset(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def select_by_text(
    candidates: Sequence[Candidate],
    k: int,
    *,
    duplicate_jaccard: float = DEFAULT_DUPLICATE_JACCARD,
) -> list[Selection]:
    """Up to ``k`` candidates in the given order (newest first), skipping any whose
    prompt's word trigrams overlap an earlier pick's by at least ``duplicate_jaccard``.

    >>> cands = [Candidate(i, "t", text=t) for i, t in
    ...          [("a", "refund my order 12"), ("b", "Refund my order 12!"), ("c", "hello")]]
    >>> [s.candidate.request_id for s in select_by_text(cands, 5)]
    ['a', 'c']
    """
    picked: list[Selection] = []
    seen: list[frozenset[str]] = []
    dropped = 0
    for cand in candidates:
        if len(picked) >= k:
            break
        grams = shingles(cand.text or "")
        if any(_jaccard(grams, s) >= duplicate_jaccard for s in seen):
            dropped += 1
            continue
        seen.append(grams)
        picked.append(Selection(cand, len(picked), {"strategy": "newest"}))
    for s in picked:
        s.reasons["duplicates_dropped"] = dropped
    return picked
