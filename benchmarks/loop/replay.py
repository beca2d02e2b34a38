"""What the retrain job would read after one recorded drifted window (pure: no I/O).

The window is the last ``pre_shift`` stable requests and the first ``drifted`` requests
after the shift, one request a second, as the drift store holds them: a
:class:`~retrain.dataset.TrafficRecord` per request with its served messages and v1's
answer. A seed decides which requests get feedback and how (users as
``driftgate.demo.traffic.FeedbackPolicy`` models them: a share of answers rated, thumbs
wrong with probability ``noise``, a share of thumbs-down with the right queue as a
correction) and, for a labelling strategy, which drifted requests a reviewer labels
(the queue's label is the true queue, wrong with the same ``noise``), source ``review``.

Strategies:

- ``selection``: sparse feedback plus ``budget`` labels picked by the review queue's own
  selection (:func:`drift.review_selection.select_for_review`: near-duplicates dropped,
  k-center over MiniLM prompt embeddings from the reference centroid, weighted by
  ``1 - confidence``, confidence from the stored mean token logprob), over the newest
  unlabelled drifted requests, as the queue reads them;
- ``random``: the same sparse feedback and the same budget on random drifted requests
  among those candidates;
- ``feedback80``: today's demo profile, feedback on 80% of requests, no labels.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from benchmarks.loop.window import ServedRow
from drift.review_queue import CANDIDATES_PER_SLOT, stored_confidence
from drift.review_selection import Candidate, select_for_review
from driftgate.core.events import FeedbackEvent, RecordedMessage, ServedRequest
from driftgate.demo.tickets import ALL_QUEUES
from retrain.dataset import TrafficRecord

TENANT = "acme"
STRATEGIES = ("selection", "random", "feedback80")
#: Strategies only the coverage table shows (no training): a diagnostic variant.
DIAGNOSTIC_STRATEGIES = ("nearest",)
#: Seconds between recorded requests in the replayed store (one request a second).
SPACING_S = 1.0
T0 = 1_800_000_000.0


@dataclass(frozen=True, slots=True)
class Feedback:
    """Users' feedback: ``share`` of answers rated; see the module docstring."""

    share: float
    noise: float = 0.03
    correction_share: float = 0.8


SPARSE = Feedback(share=0.05)
DENSE = Feedback(share=0.8)


@dataclass(frozen=True, slots=True)
class Window:
    """The replayed window: requests in order, the index where the shift starts."""

    rows: tuple[ServedRow, ...]
    shift_index: int

    @property
    def drift_start(self) -> float:
        return ts_of(self.shift_index)

    def drifted(self) -> range:
        return range(self.shift_index, len(self.rows))


def ts_of(i: int) -> float:
    return T0 + i * SPACING_S


def request_id(i: int) -> str:
    return f"req-{i:05d}"


def window_of(stable: Sequence[ServedRow], drifted: Sequence[ServedRow], pre_shift: int) -> Window:
    rows = (*stable[len(stable) - pre_shift :], *drifted)
    return Window(rows, pre_shift)


def served(row: ServedRow) -> ServedRequest:
    return ServedRequest(
        messages=tuple(RecordedMessage(**m) for m in row.ticket().messages())  # type: ignore[arg-type]
    )


def _wrong(queue: str, rng: random.Random) -> str:
    return rng.choice([q for q in ALL_QUEUES if q != queue])


def user_feedback(window: Window, policy: Feedback, rng: random.Random) -> dict[int, FeedbackEvent]:
    """Per request index, the feedback its user gave (late by 30 s), if any."""
    out: dict[int, FeedbackEvent] = {}
    for i, row in enumerate(window.rows):
        if rng.random() >= policy.share:
            continue
        good = row.correct != (rng.random() < policy.noise)
        correct_it = not good and rng.random() < policy.correction_share
        out[i] = FeedbackEvent(
            request_id=request_id(i),
            tenant=TENANT,
            ts=ts_of(i) + 30.0,
            score=1.0 if good else 0.0,
            correction=row.queue if correct_it else None,
        )
    return out


def review_label(
    i: int, row: ServedRow, noise: float, rng: random.Random, ts: float
) -> FeedbackEvent:
    """A reviewer's label: the true queue, wrong with probability ``noise``."""
    label = _wrong(row.queue, rng) if rng.random() < noise else row.queue
    return FeedbackEvent(request_id=request_id(i), tenant=TENANT, ts=ts, label=label)


def review_candidates(window: Window, feedback: dict[int, FeedbackEvent], budget: int) -> list[int]:
    """The drifted requests the queue reads: newest first, no label or correction yet,
    ``budget * CANDIDATES_PER_SLOT`` at most."""
    out = []
    for i in reversed(window.drifted()):
        f = feedback.get(i)
        if f is not None and (f.label is not None or f.correction is not None):
            continue
        out.append(i)
        if len(out) >= budget * CANDIDATES_PER_SLOT:
            break
    return out


def select_indices(
    window: Window,
    candidates: Sequence[int],
    embeddings: np.ndarray,
    centroid: np.ndarray,
    budget: int,
) -> list[int]:
    """The review queue's pick among ``candidates`` (``embeddings``: one row per window
    request, unit vectors)."""
    cands = [
        Candidate(
            request_id(i),
            TENANT,
            embedding=embeddings[i],
            confidence=stored_confidence({"mean_logprob": window.rows[i].mean_logprob}),
        )
        for i in candidates
    ]
    # As the queue picks: away from the reference prompts (the pre-shift requests) too.
    covered = embeddings[: window.shift_index]
    picked = select_for_review(cands, centroid, budget, covered=covered)
    return [int(s.candidate.request_id.split("-")[1]) for s in picked]


def select_from_nearest_reference(
    window: Window,
    candidates: Sequence[int],
    embeddings: np.ndarray,
    budget: int,
    *,
    duplicate_cosine: float = 0.95,
    min_uncertainty: float = 0.05,
) -> list[int]:
    """A diagnostic variant of the queue's selection (coverage table only): the same
    near-duplicate rule, weights and farthest-first picks, but a candidate's starting
    distance is to its *nearest* reference prompt (the pre-shift requests) instead of to
    the reference centroid, so traffic like the old stays covered."""
    rows = window.rows
    conf = np.array(
        [stored_confidence({"mean_logprob": rows[i].mean_logprob}) or 0.0 for i in candidates]
    )
    points = embeddings[list(candidates)]
    similar = points @ points.T >= duplicate_cosine
    kept = np.zeros(len(candidates), dtype=bool)
    for j in np.argsort(conf, kind="stable"):
        if not similar[j, kept].any():
            kept[j] = True
    idx = np.flatnonzero(kept)
    pts = points[idx]
    reference = embeddings[: window.shift_index]
    nearest = 1.0 - (pts @ reference.T).max(axis=1)
    weights = np.clip(1.0 - conf[idx], min_uncertainty, 1.0)
    available = np.ones(len(idx), dtype=bool)
    picked: list[int] = []
    for _ in range(min(budget, len(idx))):
        j = int(np.argmax(np.where(available, nearest * weights, -np.inf)))
        available[j] = False
        picked.append(candidates[int(idx[j])])
        nearest = np.minimum(nearest, 1.0 - pts @ pts[j])
    return picked


def traffic(
    window: Window, feedback: dict[int, FeedbackEvent], labelled: dict[int, FeedbackEvent]
) -> list[TrafficRecord]:
    """The store's records: a reviewer's label replaces the user's vote on a request."""
    out = []
    for i, row in enumerate(window.rows):
        rec = TrafficRecord(
            request_id=request_id(i),
            ts=ts_of(i),
            prompt_text=row.text,
            completion_text=row.answer,
            tenant=TENANT,
            finish_reason="stop",
            served=served(row),
            mean_logprob=row.mean_logprob,
        )
        if i in labelled:
            rec = replace(rec, feedback=(labelled[i],), feedback_source="review")
        elif i in feedback:
            rec = replace(rec, feedback=(feedback[i],))
        out.append(rec)
    return out


@dataclass(frozen=True, slots=True)
class Draw:
    """One seed's draw for one strategy: the records and what it cost."""

    records: list[TrafficRecord]
    feedback: int
    labels: int
    labelled_nova: int
    labelled_v1_wrong: int


def draw(
    window: Window,
    strategy: str,
    seed: int,
    *,
    budget: int,
    embeddings: np.ndarray | None = None,
    centroid: np.ndarray | None = None,
) -> Draw:
    """The records the job reads for ``strategy`` under ``seed``. The feedback draw of
    ``selection`` and ``random`` is the same for a seed (one rng stream per purpose)."""
    policy = DENSE if strategy == "feedback80" else SPARSE
    feedback = user_feedback(window, policy, random.Random(f"feedback-{seed}-{policy.share}"))
    picked: list[int] = []
    if strategy != "feedback80":
        cands = review_candidates(window, feedback, budget)
        if strategy == "selection":
            if embeddings is None or centroid is None:
                raise ValueError("the selection strategy needs embeddings and a centroid")
            picked = select_indices(window, cands, embeddings, centroid, budget)
        elif strategy == "nearest":
            if embeddings is None:
                raise ValueError("the nearest strategy needs embeddings")
            picked = select_from_nearest_reference(window, cands, embeddings, budget)
        elif strategy == "random":
            picked = random.Random(f"random-{seed}").sample(cands, min(budget, len(cands)))
        else:
            raise ValueError(f"unknown strategy {strategy!r}")
    label_rng = random.Random(f"review-{seed}")
    done = ts_of(len(window.rows)) + 60.0
    labelled = {i: review_label(i, window.rows[i], policy.noise, label_rng, done) for i in picked}
    rows = window.rows
    return Draw(
        records=traffic(window, feedback, labelled),
        feedback=len(feedback),
        labels=len(labelled),
        labelled_nova=sum(rows[i].queue not in ALL_QUEUES[:4] for i in picked),
        labelled_v1_wrong=sum(not rows[i].correct for i in picked),
    )
