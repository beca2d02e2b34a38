"""The review queue's choice of requests: spread, no near-duplicates, least sure first."""

from __future__ import annotations

import numpy as np

from drift.review_selection import Candidate, select_by_text, select_for_review


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _clusters(rng: np.random.Generator, dim: int, sizes: list[int]) -> list[Candidate]:
    """Clusters around orthogonal axes 1.. (axis 0 is the reference), tight (cos ~0.9)."""
    out = []
    for c, size in enumerate(sizes):
        for i in range(size):
            centre = np.zeros(dim)
            centre[c + 1] = 1.0
            out.append(Candidate(f"c{c}-{i}", "t", _unit(centre + rng.normal(0, 0.05, dim))))
    return out


def test_k_items_from_k_separated_clusters_take_one_per_cluster() -> None:
    """Five tight clusters of very different sizes (50 to 2), budget five: one each."""
    rng = np.random.default_rng(7)
    cands = _clusters(rng, 32, [50, 20, 8, 4, 2])
    reference = np.zeros(32)
    reference[0] = 1.0
    picked = select_for_review(cands, reference, 5, duplicate_cosine=0.999)
    clusters = sorted(s.candidate.request_id.split("-")[0] for s in picked)
    assert clusters == ["c0", "c1", "c2", "c3", "c4"]
    assert [s.rank for s in picked] == [0, 1, 2, 3, 4]


def test_near_duplicates_are_excluded_keeping_the_less_confident() -> None:
    e = np.eye(4)
    near = _unit(e[1] + 0.01 * e[2])
    cands = [
        Candidate("sure", "t", e[1], confidence=0.9),
        Candidate("unsure", "t", near, confidence=0.2),
        Candidate("other", "t", e[2], confidence=0.9),
    ]
    picked = select_for_review(cands, e[0], 10, duplicate_cosine=0.95)
    ids = {s.candidate.request_id for s in picked}
    assert ids == {"unsure", "other"}
    assert all(s.reasons["duplicates_dropped"] == 1 for s in picked)


def test_low_confidence_is_preferred_among_equally_new_requests() -> None:
    e = np.eye(4)
    cands = [
        Candidate("sure", "t", e[1], confidence=0.95),
        Candidate("unsure", "t", e[2], confidence=0.3),
        Candidate("middle", "t", e[3], confidence=0.6),
    ]
    picked = select_for_review(cands, e[0], 2)
    assert [s.candidate.request_id for s in picked] == ["unsure", "middle"]
    assert picked[0].reasons["confidence"] == 0.3


def test_a_budget_larger_than_the_candidates_takes_each_once() -> None:
    e = np.eye(5)
    cands = [Candidate(f"r{i}", "t", e[i]) for i in range(1, 5)]
    picked = select_for_review(cands, e[0], 40)
    assert sorted(s.candidate.request_id for s in picked) == ["r1", "r2", "r3", "r4"]
    assert select_for_review([], e[0], 40) == []
    assert select_for_review(cands, e[0], 0) == []


def test_without_embeddings_the_newest_distinct_prompts_are_taken() -> None:
    cands = [
        Candidate("n1", "t", text="my parcel never arrived, order 991"),
        Candidate("n2", "t", text="My parcel never arrived order 991"),
        Candidate("n3", "t", text="how do I change my billing address"),
        Candidate("n4", "t", text="cancel the subscription please"),
    ]
    picked = select_by_text(cands, 2)
    assert [s.candidate.request_id for s in picked] == ["n1", "n3"]
    assert [s.candidate.request_id for s in select_by_text(cands, 10)] == ["n1", "n3", "n4"]
