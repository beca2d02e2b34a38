"""Windowed two-sample tests against a reference window (scipy).

KS for numeric signals, chi-square for categorical ones, and the population
stability index (PSI) reported beside them. The functions are pure; the
:class:`WindowedTest` detector runs one of them every ``every`` values on a
sliding current window.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special, stats

_EPS = 1e-4


@dataclass(frozen=True, slots=True)
class TestResult:
    """A two-sample test: its statistic, p-value and the PSI of the same samples."""

    __test__ = False  # not a pytest test class

    statistic: float
    p_value: float
    psi: float


def psi(reference: Sequence[float], current: Sequence[float], bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference``.

    Bins are the reference's quantiles; empty bins get a small floor.

    >>> import random
    >>> rng = random.Random(1)
    >>> ref = [rng.gauss(0, 1) for _ in range(2000)]
    >>> round(psi(ref, [rng.gauss(0, 1) for _ in range(2000)]), 2) < 0.05
    True
    >>> psi(ref, [rng.gauss(1, 1) for _ in range(2000)]) > 0.25
    True
    """
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    if ref.size == 0 or cur.size == 0:
        return 0.0
    edges = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    ref_share = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1)
    cur_share = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1)
    p = np.maximum(ref_share / ref.size, _EPS)
    q = np.maximum(cur_share / cur.size, _EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def categorical_psi(reference: Mapping[str, int], current: Mapping[str, int]) -> float:
    """PSI of two categorical count tables.

    >>> categorical_psi({"stop": 90, "length": 10}, {"stop": 90, "length": 10})
    0.0
    """
    keys = sorted(set(reference) | set(current))
    n_ref = sum(reference.values()) or 1
    n_cur = sum(current.values()) or 1
    total = 0.0
    for key in keys:
        p = max(reference.get(key, 0) / n_ref, _EPS)
        q = max(current.get(key, 0) / n_cur, _EPS)
        total += (q - p) * math.log(q / p)
    return total


def ks_test(reference: Sequence[float], current: Sequence[float]) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test plus PSI.

    >>> import random
    >>> rng = random.Random(2)
    >>> ref = [rng.gauss(0, 1) for _ in range(1000)]
    >>> ks_test(ref, [rng.gauss(0, 1) for _ in range(300)]).p_value > 0.01
    True
    >>> ks_test(ref, [rng.gauss(1, 1) for _ in range(300)]).p_value < 1e-6
    True
    """
    if len(reference) == 0 or len(current) == 0:
        return TestResult(0.0, 1.0, 0.0)
    res = stats.ks_2samp(reference, current, method="asymp")
    return TestResult(float(res.statistic), float(res.pvalue), psi(reference, current))


class ReferenceSample:
    """A numeric reference window prepared for repeated KS and PSI tests.

    The reference is sorted and its PSI bins computed once; :meth:`test` then
    costs a sort of the current window and a few binary searches. The p-value
    is the asymptotic Kolmogorov distribution (as ``ks_2samp(method="asymp")``
    for large samples).

    >>> import random
    >>> rng = random.Random(3)
    >>> ref = ReferenceSample([rng.gauss(0, 1) for _ in range(1000)])
    >>> ref.test([rng.gauss(0, 1) for _ in range(500)]).p_value > 0.01
    True
    >>> ref.test([rng.gauss(0.5, 1) for _ in range(500)]).p_value < 1e-6
    True
    """

    def __init__(self, values: Iterable[float], bins: int = 10) -> None:
        self.sorted = np.sort(np.asarray(list(values), dtype=float))
        self.bins = bins
        n = self.sorted.size
        self._edges = (
            np.unique(np.quantile(self.sorted, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
            if n
            else np.array([])
        )
        counts = np.bincount(
            np.searchsorted(self._edges, self.sorted, side="right"), minlength=self._edges.size + 1
        )
        self._shares = np.maximum(counts / max(n, 1), _EPS)

    def psi(self, current: np.ndarray) -> float:
        counts = np.bincount(
            np.searchsorted(self._edges, current, side="right"), minlength=self._edges.size + 1
        )
        q = np.maximum(counts / current.size, _EPS)
        return float(np.sum((q - self._shares) * np.log(q / self._shares)))

    def test(self, current: Sequence[float] | np.ndarray, ess_factor: float = 1.0) -> TestResult:
        """KS test of ``current``; ``ess_factor`` (<= 1) scales both sample sizes to their
        effective sizes when values are dependent."""
        cur = np.sort(np.asarray(current, dtype=float))
        m, n = self.sorted.size, cur.size
        if not m or not n:
            return TestResult(0.0, 1.0, 0.0)
        points = np.concatenate([self.sorted, cur])
        cdf_ref = np.searchsorted(self.sorted, points, side="right") / m
        cdf_cur = np.searchsorted(cur, points, side="right") / n
        d = float(np.max(np.abs(cdf_ref - cdf_cur)))
        p = float(special.kolmogorov(np.sqrt(ess_factor * m * n / (m + n)) * d))
        return TestResult(d, min(1.0, p), self.psi(cur))


def chi_square_test(
    reference: Mapping[str, int], current: Mapping[str, int], dispersion: float = 1.0
) -> TestResult:
    """Chi-square test of homogeneity of two categorical count tables, plus PSI.

    ``dispersion`` (>= 1) divides the statistic: counts of bursty values vary that many
    times more than multinomial ones (a quasi-likelihood correction).

    >>> ref = {"stop": 900, "length": 100}
    >>> chi_square_test(ref, {"stop": 450, "length": 50}).p_value > 0.5
    True
    >>> chi_square_test(ref, {"stop": 300, "length": 200}).p_value < 1e-6
    True
    """
    both = set(reference) | set(current)
    keys = sorted(k for k in both if reference.get(k, 0) + current.get(k, 0))
    if len(keys) < 2 or not sum(current.values()) or not sum(reference.values()):
        return TestResult(0.0, 1.0, 0.0)
    table = np.array(
        [[reference.get(k, 0) for k in keys], [current.get(k, 0) for k in keys]], dtype=float
    )
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    chi2 = float(np.sum((table - expected) ** 2 / expected)) / max(dispersion, 1.0)
    p = float(special.chdtrc(len(keys) - 1, chi2))  # Pearson's test, no continuity correction
    return TestResult(chi2, p, categorical_psi(reference, current))


def _score(p_value: float, alpha: float) -> float:
    """-log10(p) / -log10(alpha): 1.0 exactly at the test's level."""
    return -math.log10(max(p_value, 1e-300)) / -math.log10(alpha)


class WindowedTest:
    """Periodic two-sample test of a sliding window against a fixed reference.

    Every ``every`` values the last ``window`` values are tested against the
    reference (KS for ``kind="ks"``, chi-square on category counts for
    ``kind="chi2"``, where values are category labels); the detector is in
    drift while the p-value is below ``alpha``.

    Parameters
    ----------
    reference
        The reference sample (numbers for KS, labels for chi-square).
    kind
        ``"ks"`` or ``"chi2"``.
    window
        Size of the current window.
    every
        Test after this many new values (and once the window is full).
    alpha
        Significance level.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(5)
    >>> test = WindowedTest([rng.gauss(0, 1) for _ in range(1000)], window=200, every=50)
    >>> any(test.update(rng.gauss(0, 1)) for _ in range(2000))
    False
    >>> any(test.update(rng.gauss(2, 1)) for _ in range(200))
    True
    >>> test.last is not None and test.last.p_value < 0.001
    True
    """

    def __init__(
        self,
        reference: Iterable[float | str],
        kind: Literal["ks", "chi2"] = "ks",
        window: int = 500,
        every: int = 250,
        alpha: float = 1e-4,
    ) -> None:
        self.reference = list(reference)
        self.kind = kind
        self.window = window
        self.every = every
        self.alpha = alpha
        self._ref_counts = Counter(str(v) for v in self.reference) if kind == "chi2" else Counter()
        self._reset()

    def _reset(self) -> None:
        self._values: deque[float | str] = deque(maxlen=self.window)
        self._since = 0
        self._drift = False
        self.last: TestResult | None = None

    def reset(self) -> None:
        self._reset()

    @property
    def drift_detected(self) -> bool:
        return self._drift

    @property
    def score(self) -> float:
        return 0.0 if self.last is None else _score(self.last.p_value, self.alpha)

    @property
    def values(self) -> list[float | str]:
        return list(self._values)

    def run(self) -> TestResult:
        """Test the current window now."""
        if self.kind == "chi2":
            self.last = chi_square_test(self._ref_counts, Counter(str(v) for v in self._values))
        else:
            ref = [float(v) for v in self.reference]
            self.last = ks_test(ref, [float(v) for v in self._values])
        self._drift = self.last.p_value < self.alpha
        return self.last

    def update(self, x: float | str) -> bool:
        self._values.append(x)
        self._since += 1
        if self._since >= self.every and len(self._values) >= min(self.window, self.every):
            self._since = 0
            self.run()
        return self._drift
