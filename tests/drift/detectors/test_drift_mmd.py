"""The MMD two-sample test on embeddings: its statistic, its level, its power."""

from __future__ import annotations

import numpy as np
import pytest

from drift.detectors.mmd import mmd_test, squared_distances


def test_statistic_is_the_unbiased_mmd2_of_the_gaussian_kernel() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(9, 4)), rng.normal(0.3, 1.0, size=(6, 4))
    result = mmd_test(x, y, rng, permutations=19)
    d2 = squared_distances(np.vstack([x, y]))
    median = np.median(d2[np.triu_indices(15, k=1)])
    k = np.exp(-d2 / median)
    kxx = (k[:9, :9].sum() - 9) / (9 * 8)
    kyy = (k[9:, 9:].sum() - 6) / (6 * 5)
    kxy = k[:9, 9:].sum() / (9 * 6)
    assert result.statistic == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-9)
    assert result.bandwidth == pytest.approx(np.sqrt(median))


def test_level_holds_under_the_null() -> None:
    """400 tests of two samples from one distribution at level 0.05 (99 permutations, so
    P(p <= 0.05) = 0.05 exactly): the count of rejections is Bin(400, 0.05), mean 20. It
    fails above 40 or below 5: P = 1.4e-5 + 1.2e-5 = 2.6e-5 for a valid test (the draws are
    seeded, so a run either always passes or always fails)."""
    rng = np.random.default_rng(11)
    rejected = 0
    for _ in range(400):
        x, y = rng.standard_t(4, size=(25, 6)), rng.standard_t(4, size=(25, 6))
        rejected += mmd_test(x, y, rng, permutations=99).p_value <= 0.05
    assert 5 <= rejected <= 40, rejected


def test_a_moved_cluster_is_found_at_the_p_value_floor() -> None:
    """40% of the current points come from a new cluster (as new-product tickets do): with
    100 points a side, the permutation p-value is at its floor 1 / 2000."""
    rng = np.random.default_rng(5)
    reference = rng.normal(size=(100, 16))
    current = rng.normal(size=(100, 16))
    current[:40] += 1.0
    result = mmd_test(reference, current, rng)
    assert result.p_value == pytest.approx(1 / 2000)
    assert result.statistic > 0


def test_small_samples_and_no_permutations_are_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least 2"):
        mmd_test(np.zeros((1, 3)), np.zeros((5, 3)), rng)
    with pytest.raises(ValueError, match="permutations"):
        mmd_test(np.zeros((5, 3)), np.zeros((5, 3)), rng, permutations=0)


def test_identical_points_do_not_divide_by_zero() -> None:
    rng = np.random.default_rng(0)
    result = mmd_test(np.ones((5, 3)), np.ones((5, 3)), rng, permutations=9)
    assert result.p_value == 1.0 and np.isfinite(result.statistic)
