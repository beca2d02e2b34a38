"""Two-sample test on embeddings: the maximum mean discrepancy (MMD) with a permutation
p-value (pure functions; the random draw is passed in).

The kernel is Gaussian, its bandwidth the median pairwise distance of the pooled sample
(the "median heuristic"). The bandwidth does not depend on which rows are labelled
reference or current, so the permutation test stays exact: under the null hypothesis
(both samples from one distribution, exchangeable), ``P(p_value <= a) <= a`` for every
level ``a``, whatever the dimension. The statistic is the unbiased MMD² estimate
(Gretton et al., 2012). All permutations are scored in one matrix product: for a 0/1
membership column ``s``, the within-reference kernel sum is ``s' K s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class MMDResult:
    """Unbiased MMD² of the two samples, its permutation p-value, the kernel bandwidth."""

    statistic: float
    p_value: float
    bandwidth: float
    permutations: int


def squared_distances(points: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances of the rows (non-negative, zero diagonal).

    >>> squared_distances(np.array([[0.0, 0.0], [3.0, 4.0]])).tolist()
    [[0.0, 25.0], [25.0, 0.0]]
    """
    x = np.asarray(points, dtype=np.float64)
    norms = np.einsum("ij,ij->i", x, x)
    d2: np.ndarray = norms[:, None] + norms[None, :] - 2.0 * (x @ x.T)
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return d2


def _mmd2(kernel: np.ndarray, members: np.ndarray, n: int, m: int) -> np.ndarray:
    """Unbiased MMD² for each membership column of ``members`` (1: first sample).

    The kernel's diagonal is 1 (Gaussian), so the within-sample sums without ``i = j``
    are the quadratic forms minus the sample sizes.
    """
    total = kernel.sum()
    k_s = kernel @ members  # (N, B)
    within_x = np.einsum("ib,ib->b", members, k_s) - n
    row_sums = kernel.sum(axis=1)
    cross_plus_x = members.T @ row_sums  # s' K 1 = within_x (with diagonal) + cross
    cross = cross_plus_x - (within_x + n)
    within_y = total - 2.0 * cross - (within_x + n) - m
    mmd2: np.ndarray = within_x / (n * (n - 1)) + within_y / (m * (m - 1)) - 2.0 * cross / (n * m)
    return mmd2


def mmd_test(
    reference: np.ndarray,
    current: np.ndarray,
    rng: np.random.Generator,
    permutations: int = 1999,
) -> MMDResult:
    """Whether ``current`` comes from the distribution of ``reference`` (rows are points).

    ``p_value`` is ``(1 + #{permuted >= observed}) / (1 + permutations)``, so it is never
    below ``1 / (1 + permutations)``: choose ``permutations`` so that this floor is under
    the level the caller tests at.

    >>> rng = np.random.default_rng(0)
    >>> same = mmd_test(rng.normal(size=(60, 4)), rng.normal(size=(60, 4)), rng, 499)
    >>> bool(same.p_value > 0.01)
    True
    >>> moved = mmd_test(rng.normal(size=(60, 4)), rng.normal(1.0, 1.0, (60, 4)), rng, 499)
    >>> moved.p_value
    0.002
    """
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(current, dtype=np.float64)
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError("each sample needs at least 2 points")
    if permutations < 1:
        raise ValueError("permutations must be >= 1")
    d2 = squared_distances(np.vstack([x, y]))
    upper = d2[np.triu_indices(n + m, k=1)]
    positive = upper[upper > 0]
    median = float(np.median(positive)) if positive.size else 1.0
    kernel = np.exp(-d2 / median)
    observed_members = np.zeros((n + m, 1))
    observed_members[:n, 0] = 1.0
    observed = float(_mmd2(kernel, observed_members, n, m)[0])
    members = np.zeros((n + m, permutations))
    for b in range(permutations):
        members[rng.permutation(n + m)[:n], b] = 1.0
    permuted = _mmd2(kernel, members, n, m)
    # A small tolerance: permutations that equal the observed split must count as ties.
    exceed = int(np.count_nonzero(permuted >= observed - 1e-12))
    return MMDResult(
        statistic=observed,
        p_value=(1 + exceed) / (1 + permutations),
        bandwidth=float(np.sqrt(median)),
        permutations=permutations,
    )
