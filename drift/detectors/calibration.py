"""What a pinned reference window teaches the detectors about its signal.

The CUSUM thresholds and the KS / chi-square confirmations assume independent,
light-tailed values. Real signals are not: latencies are heavy-tailed, load comes in
waves (autocorrelation), feedback arrives in bursts (overdispersion). A calibration
is fitted once on the reference and then maps each value in constant time (a binary
search among the reference's distinct values, a few multiplications):

- :class:`NumericCalibration`: a normal-score transform through the reference's
  quantiles for heavy-tailed signals (heavy tails then weigh like Gaussian ones), else
  mean/std standardization, with CUSUM thresholds corrected for the values' shape where
  it departs from the normal
  (:mod:`drift.detectors.siegmund`: a skewed signal keeps its power against a change of
  scale, which normal scores blunt); and AR(1) pre-whitening with ``phi`` estimated on the
  reference, so the streaming detectors see nearly independent unit-variance innovations;
  ``ess_factor`` scales sample sizes for the confirmation tests;
- :class:`RateCalibration`: the dispersion index of a 0/1 signal (variance of batch
  counts over the binomial variance), which scales the Bernoulli CUSUM's threshold and
  divides the chi-square statistic.

Dependence that the reference cannot tell from chance (``phi`` below two standard
errors, a dispersion index below its 99% quantile under independence) is treated as
none, so independent signals keep the detectors' plain behaviour and delays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from drift.detectors.siegmund import shape_thresholds

#: A reference with fewer distinct values (binary scores, ratings) keeps mean/std
#: standardization: normal scores of a few tied values would blunt the shifts that matter.
MIN_DISTINCT_FOR_QUANTILES = 20
#: Excess kurtosis above which a reference goes through normal scores: tails heavier than
#: an exponential distribution's (6). Lighter tails keep their values, with a threshold
#: corrected for their shape; heavier ones would need one so high that the CUSUM went deaf.
HEAVY_TAIL_KURTOSIS = 6.0
#: How far beyond the reference's extreme scores a value may go: a reference says little
#: about its own tail, and one value must not push the CUSUM halfway to its threshold.
TAIL_SPAN = 1.5
#: Largest autocorrelation used: beyond it the reference cannot estimate the innovations.
MAX_PHI = 0.95
#: Standardized values are clipped to this magnitude before whitening.
CLIP = 6.0
#: Significance of the dispersion test under independence (below it: no overdispersion).
DISPERSION_LEVEL = 0.01
#: Largest magnitude a value keeps: beyond any real signal, and small enough that squares
#: summed over a reference stay finite (fuzzed or corrupt values near 1e308 overflow).
MAX_MAGNITUDE = 1e150


def bounded(xs: np.ndarray) -> np.ndarray:
    """Values clipped to :data:`MAX_MAGNITUDE` (NaN stays NaN: it carries no information).

    >>> bounded(np.array([1e308, -np.inf, 2.5])).tolist()
    [1e+150, -1e+150, 2.5]
    """
    return np.clip(xs, -MAX_MAGNITUDE, MAX_MAGNITUDE)


def lag1_autocorrelation(values: np.ndarray) -> float:
    """Lag-1 autocorrelation (the Yule-Walker estimate of an AR(1)'s ``phi``).

    >>> rng = np.random.default_rng(0)
    >>> abs(lag1_autocorrelation(rng.normal(size=10_000))) < 0.05
    True
    """
    if values.size < 3:
        return 0.0
    centred = values - values.mean()
    denom = float(centred @ centred)
    return float(centred[1:] @ centred[:-1]) / denom if denom > 0 else 0.0


def heavy_tailed(values: np.ndarray) -> bool:
    """Whether the values' excess kurtosis exceeds :data:`HEAVY_TAIL_KURTOSIS`.

    >>> rng = np.random.default_rng(0)
    >>> heavy_tailed(np.exp(rng.normal(size=1000))), heavy_tailed(rng.exponential(size=1000) ** 0.5)
    (True, False)
    """
    if values.size < 4 or float(values.std()) == 0.0:
        return False
    return float(stats.kurtosis(values)) > HEAVY_TAIL_KURTOSIS


def non_normal(values: np.ndarray, ess_factor: float = 1.0) -> bool:
    """Whether the values' skewness, or their excess kurtosis above 0, passes three
    standard errors under normality (``sqrt(6 / n)`` and ``sqrt(24 / n)``, ``n`` the
    effective sample size): below it a shape correction would fit noise.

    >>> rng = np.random.default_rng(0)
    >>> non_normal(rng.normal(size=1000)), non_normal(np.abs(rng.normal(size=1000)))
    (False, True)
    """
    n = values.size * ess_factor
    if n < 8 or float(values.std()) == 0.0:
        return False
    skew, kurtosis = float(stats.skew(values)), float(stats.kurtosis(values))
    return abs(skew) > 3.0 * math.sqrt(6.0 / n) or kurtosis > 3.0 * math.sqrt(24.0 / n)


def effective_sample_factor(phi: float) -> float:
    """Effective sample size per value of the mean of an AR(1): ``(1 - phi) / (1 + phi)``.

    >>> effective_sample_factor(0.6)
    0.25
    """
    phi = min(max(phi, 0.0), MAX_PHI)
    return (1.0 - phi) / (1.0 + phi)


@dataclass(frozen=True, slots=True)
class _Scores:
    """The reference's distinct values and their normal scores (mid-ranks)."""

    values: np.ndarray
    scores: np.ndarray
    low_slope: float  # reference units per normal score, below the smallest value
    high_slope: float  # ... above the largest

    @classmethod
    def fit(cls, ref: np.ndarray) -> _Scores:
        values, counts = np.unique(ref, return_counts=True)
        mid = (np.cumsum(counts) - counts / 2.0) / ref.size
        scores = special.ndtri(mid)
        # tails beyond the reference: continue with the slope of its outer tenth
        lo = int(np.searchsorted(mid, 0.1))
        hi = min(int(np.searchsorted(mid, 0.9)), values.size - 2)
        floor = max(1e-9, 1e-6 * float(np.abs(values).max()))
        low = (values[lo] - values[0]) / (scores[lo] - scores[0]) if lo > 0 else floor
        high = (values[-1] - values[hi]) / (scores[-1] - scores[hi])
        return cls(values, scores, max(float(low), floor), max(float(high), floor))

    def of(self, xs: np.ndarray) -> np.ndarray:
        z: np.ndarray = np.asarray(np.interp(xs, self.values, self.scores), dtype=float)
        below = xs < self.values[0]
        above = xs > self.values[-1]
        z[below] = self.scores[0] + np.maximum(
            (xs[below] - self.values[0]) / self.low_slope, -TAIL_SPAN
        )
        z[above] = self.scores[-1] + np.minimum(
            (xs[above] - self.values[-1]) / self.high_slope, TAIL_SPAN
        )
        return z


class NumericCalibration:
    """Standardization and AR(1) pre-whitening fitted on a numeric reference window.

    :meth:`scan` maps values to innovations in units of their reference standard
    deviation (what the CUSUM and ADWIN watch) without changing the state; ``advance``
    then keeps the last consumed value for the next innovation. With ``phi = 0`` and a
    reference of few distinct values, innovations are the plain standardized values.

    Parameters
    ----------
    reference
        The pinned reference window.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = np.zeros(5000)
    >>> for t in range(1, x.size):
    ...     x[t] = 0.6 * x[t - 1] + 0.8 * rng.normal()
    >>> cal = NumericCalibration(x)
    >>> round(cal.phi, 1), round(cal.ess_factor, 2) > 0.2
    (0.6, True)
    >>> e = cal.scan(x)
    >>> round(float(e.std()), 1), abs(lag1_autocorrelation(e)) < 0.05
    (1.0, True)
    """

    def __init__(self, reference: Sequence[float] | np.ndarray) -> None:
        ref = np.asarray(reference, dtype=float)
        ref = bounded(ref[np.isfinite(ref)])
        self._n = ref.size
        self.mean = float(ref.mean()) if ref.size else 0.0
        self.std = float(ref.std(ddof=1)) if ref.size > 1 else 0.0
        self._scale = 1.0 / max(self.std, 1e-9, 1e-6 * abs(self.mean))
        continuous = np.unique(ref).size >= MIN_DISTINCT_FOR_QUANTILES
        quantiles = continuous and heavy_tailed(ref)
        self._scores = _Scores.fit(ref) if quantiles else None
        z = self._standardize(ref)
        phi = lag1_autocorrelation(z)
        # below two standard errors the reference cannot tell dependence from chance
        self.phi = min(phi, MAX_PHI) if ref.size and phi > 2.0 / math.sqrt(ref.size) else 0.0
        innovations = z[1:] - self.phi * z[:-1]
        spread = float(innovations.std(ddof=1)) if innovations.size > 1 else 1.0
        self._innovation_scale = 1.0 / spread if self.phi > 0 and spread > 0 else 1.0
        self.ess_factor = effective_sample_factor(self.phi)
        self._innovations = innovations * self._innovation_scale if self.phi > 0 else z
        #: continuous values kept as they are, whose shape departs from the normal
        self.shaped = continuous and not quantiles and non_normal(ref, self.ess_factor)
        self._prev = float(z[-1]) if z.size and self.phi > 0 else 0.0
        self._scanned: np.ndarray | None = None

    @property
    def quantiles(self) -> bool:
        """Whether values go through the reference's normal scores (heavy tails; else
        mean/std)."""
        return self._scores is not None

    @property
    def shift_factor(self) -> float:
        """How much a sustained mean shift shrinks in innovation units:
        ``sqrt((1 - phi) / (1 + phi))``; the CUSUM's slack is scaled by it
        (:meth:`cusum_design`)."""
        return math.sqrt(self.ess_factor)

    def cusum_design(self, k: float, h: float) -> tuple[float, float, float]:
        """CUSUM slack and upper and lower thresholds in innovation units for a design
        ``(k, h)`` in signal units: the slack shrinks with the shift (:attr:`shift_factor`),
        and the threshold grows so that the reference's own error (the mean of its
        innovations, two standard errors ``2 / sqrt(n)``) eats no more of ``k * h`` than it
        does for independent values. Continuous light-tailed values whose skewness or
        kurtosis departs from the normal's (:attr:`shaped`) then get each side's threshold
        corrected for the shape of their innovations
        (:func:`~drift.detectors.siegmund.shape_thresholds`, never lower); normal values
        keep ``(k, h, h)``.

        >>> rng = np.random.default_rng(3)
        >>> k, up, down = NumericCalibration(rng.normal(size=1000)).cusum_design(0.5, 11.0)
        >>> k, up, down
        (0.5, 11.0, 11.0)
        >>> x = np.repeat(rng.normal(size=250), 4)  # runs of 4: phi about 0.75
        >>> k, up, down = NumericCalibration(x).cusum_design(0.5, 11.0)
        >>> 0.15 < k < 0.25 and 30 < min(up, down) < 50
        True
        """
        k_w = k * self.shift_factor
        h_w = h
        if self.phi > 0.0:
            margin = min(2.0 / math.sqrt(max(self._n, 1)), 0.5 * k_w)
            h_w = h * (k - margin) / (k_w - margin)
        if not self.shaped or self._n < 2:
            return k_w, h_w, h_w
        return (k_w, *shape_thresholds(self._innovations, k_w, h_w))

    def _standardize(self, xs: np.ndarray) -> np.ndarray:
        scores = self._scores
        xs = bounded(xs)
        z = scores.of(xs) if scores is not None else (xs - self.mean) * self._scale
        z[np.isnan(z)] = 0.0  # no information: neutral
        np.clip(z, -CLIP, CLIP, out=z)
        return z

    def scan(self, xs: Sequence[float] | np.ndarray) -> np.ndarray:
        """Innovations of ``xs`` following the consumed values; kept for :meth:`advance`."""
        z = self._standardize(np.asarray(xs, dtype=float))
        self._scanned = z
        if self.phi == 0.0:
            return z
        e = z.copy()
        if z.size:
            e[0] -= self.phi * self._prev
            e[1:] -= self.phi * z[:-1]
        e *= self._innovation_scale
        return e

    def advance(self, count: int) -> None:
        """Consume the first ``count`` values of the last :meth:`scan`."""
        if self._scanned is not None and count > 0:
            self._prev = float(self._scanned[count - 1])
        self._scanned = None

    def step(self, x: float) -> float:
        """The innovation of one value, consumed."""
        e = float(self.scan([x])[0])
        self.advance(1)
        return e


class RateCalibration:
    """The rate and the overdispersion of a 0/1 reference window.

    ``dispersion`` is the variance of the counts in overlapping batches over the binomial
    variance (1 for independent values; bursts make it larger), the largest over batches
    of ``batches`` values: bursts longer than a batch hide from it, and an underestimate
    costs false alarms exponentially while an overestimate costs delay linearly. It is 1
    unless some batch size rejects independence at :data:`DISPERSION_LEVEL` (in all).

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> RateCalibration((rng.random(1000) < 0.1).astype(float)).dispersion
    1.0
    >>> burst = np.repeat(rng.random(100) < 0.1, 10).astype(float)  # runs of 10
    >>> RateCalibration(burst).dispersion > 3
    True
    """

    def __init__(
        self, reference: Sequence[float] | np.ndarray, batches: tuple[int, ...] = (25, 50, 100)
    ) -> None:
        ref = (np.asarray(reference, dtype=float) >= 0.5).astype(float)
        n = ref.size
        #: smoothed rate: a reference without a single bad outcome still gives a usable p0
        self.p0 = (float(ref.sum()) + 0.5) / (n + 1.0)
        self.dispersion = 1.0
        if not 0 < ref.sum() < n:
            return
        p = float(ref.mean())
        significant = False
        sizes = [b for b in batches if 2 <= b <= n // 10]
        level = DISPERSION_LEVEL / max(len(sizes), 1)  # one test per batch size
        for b in sizes:
            sums = np.convolve(ref, np.ones(b), mode="valid")  # overlapping batch counts
            index = float(np.mean((sums - b * p) ** 2)) / (b * p * (1.0 - p)) * n / (n - b)
            # overlapping batch means: about 1.5 n / b degrees of freedom when independent
            dof = 1.5 * n / b
            significant |= index > float(stats.chi2.ppf(1.0 - level, dof)) / dof
            self.dispersion = max(self.dispersion, index)
        if not significant:
            self.dispersion = 1.0
