"""A rate detector that keeps learning its in-control rate while it watches.

A pinned reference of 1,000 values of a bursty 0/1 signal (bursts of ~20 values every
~100) holds a handful of bursts: the standard error of its rate is a fifth of the rate,
that of its dispersion about a third, and a reference that happened to catch few bursts
makes the stable stream look like a rise. What such a reference cannot tell, the stream
can: values the Bernoulli CUSUM has seen its sum return to zero after are in control, and
they extend the reference (a self-starting CUSUM, Hawkins 1987), until the estimate rests on
:data:`LEARN_CAP` values.

- :class:`LearnedRate` is the estimate: the rate of the reference and the learned
  values, and their dispersion index over non-overlapping batches of :data:`BATCH`
  values, kept only when it rejects independence at
  :data:`~drift.detectors.calibration.DISPERSION_LEVEL`; until :data:`TRUST` values it
  is never below the reference's own (overlapping batches of 25-100) estimate.
- :class:`LearningBernoulliCusum` is the :class:`~drift.detectors.rate.BernoulliCusum`
  redesigned from it every :data:`BATCH` values consumed (``p0``, and the threshold
  times the dispersion), in O(1) per value. Once the learned values are overdispersed
  and :data:`FIRST_BURST_FIT` or more, it fits a two-state model of the bursts to them
  (:mod:`drift.detectors.bursts`, again each time they grow :data:`REFIT_GROWTH` times, and
  at :data:`LEARN_CAP`); while a fit beats independent values, the
  :class:`~drift.detectors.bursts.BurstCusum` raises the alarms instead (the Bernoulli
  CUSUM still tells which values are in control).

Values of an excursion that ends in an alarm are never learned, so a change is not
absorbed into the reference it is judged against; a change slower than the CUSUM's
excursions can be, in part, until :data:`LEARN_CAP`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from scipy import stats

from drift.detectors.bursts import BurstCusum, TwoStateRate, fit_bursts
from drift.detectors.calibration import DISPERSION_LEVEL, RateCalibration
from drift.detectors.rate import BernoulliCusum

#: Values per batch of the learned dispersion index: longer than a typical burst.
BATCH = 100
#: Values after which the learned dispersion replaces the reference's (50 batches).
TRUST = 5_000
#: Values the estimate learns at most; it is fixed from then on.
LEARN_CAP = 20_000
#: Learned values needed for a first fit of the bursts (over 1e6 stable values of the
#: benchmark's bursty stream, fits on 1,000 values alarmed 9.9 times per 1e5, on 1,500 and
#: 2,000 never), and the growth after which it is refitted.
FIRST_BURST_FIT = 1_500
REFIT_GROWTH = 4


class LearnedRate:
    """Rate and dispersion of a 0/1 signal: its reference, then in-control values.

    Examples
    --------
    >>> rng = np.random.default_rng(4)
    >>> rate = LearnedRate((rng.random(1000) < 0.1).astype(float))
    >>> rate.learn((rng.random(9000) < 0.1).astype(float))
    True
    >>> rate.n, round(rate.p0, 2), rate.dispersion
    (10000, 0.1, 1.0)
    """

    def __init__(self, reference: Sequence[float] | np.ndarray) -> None:
        ref = (np.asarray(reference, dtype=float) >= 0.5).astype(float)
        self._reference_dispersion = RateCalibration(ref).dispersion
        self.n = 0
        self._ones = 0
        self._batches = 0  # complete batches, their counts' sum and sum of squares
        self._sum = 0.0
        self._squares = 0.0
        self._partial = np.empty(0)
        self._values: list[np.ndarray] = []
        self.dispersion = self._reference_dispersion
        self.learn(ref)

    @property
    def p0(self) -> float:
        """The smoothed rate: an estimate without a single bad outcome is still usable."""
        return (self._ones + 0.5) / (self.n + 1.0)

    @property
    def ones(self) -> int:
        """How many of the :attr:`n` values were 1."""
        return self._ones

    @property
    def full(self) -> bool:
        return self.n >= LEARN_CAP

    @property
    def values(self) -> np.ndarray:
        """The learned 0/1 values, in the order learned."""
        return np.concatenate(self._values) if self._values else np.empty(0)

    def learn(self, xs: np.ndarray) -> bool:
        """Add in-control 0/1 values; True when a batch completed (the estimate moved)."""
        xs = (np.asarray(xs, dtype=float)[: max(LEARN_CAP - self.n, 0)] >= 0.5).astype(float)
        if not xs.size:
            return False
        self.n += xs.size
        self._ones += int(xs.sum())
        self._values.append(xs.astype(np.int8))
        values = np.concatenate((self._partial, xs))
        whole = values.size // BATCH * BATCH
        self._partial = values[whole:]
        if not whole:
            return False
        counts = values[:whole].reshape(-1, BATCH).sum(axis=1)
        self._batches += counts.size
        self._sum += float(counts.sum())
        self._squares += float(counts @ counts)
        self.dispersion = self._dispersion()
        return True

    def _dispersion(self) -> float:
        learned = 1.0
        k = self._batches
        p = self._ones / self.n
        if k >= 2 and 0.0 < p < 1.0:
            variance = (self._squares - self._sum * self._sum / k) / (k - 1)
            index = variance / (BATCH * p * (1.0 - p))
            if index > float(stats.chi2.ppf(1.0 - DISPERSION_LEVEL, k - 1)) / (k - 1):
                learned = index
        if self.n < TRUST:
            return max(learned, self._reference_dispersion)
        return learned


class LearningBernoulliCusum:
    """A Bernoulli CUSUM for ``ratio * p0`` whose ``p0`` and threshold follow a
    :class:`LearnedRate` (threshold ``h`` times its dispersion).

    The design changes only after every :data:`BATCH` values consumed, whatever the
    batches fed: a scan must stop there (:attr:`redesign_in`), so batches raise the same
    alarms as single values. ``reset()`` restarts the CUSUM and keeps what was learned: it
    is the reference's extension, not the stream's state. Values since the sum's last
    return to zero wait until the next one; an alarm or a reset drops them.

    Examples
    --------
    >>> rng = np.random.default_rng(5)
    >>> burst = np.repeat(rng.random(400) < 0.1, 10).astype(float)  # runs of 10
    >>> det = LearningBernoulliCusum(burst[:1000])
    >>> alarms = []
    >>> for start in range(1000, 4000, 100):
    ...     alarms.append(det.first_alarm(burst[start : start + 100]))
    ...     _ = det.advance_scanned(100)
    >>> max(alarms), det.rate.n > 3000
    (-1, True)
    """

    scan_peeks: ClassVar[bool] = True

    def __init__(
        self, reference: Sequence[float] | np.ndarray, ratio: float = 2.0, h: float = 11.5
    ) -> None:
        self.ratio = ratio
        self.h = h
        self.rate = LearnedRate(reference)
        self._cusum = BernoulliCusum(self.rate.p0, ratio, h * self.rate.dispersion)
        self._consumed = 0  # values consumed, across the CUSUM's restarts
        self._waiting: deque[float] = deque()  # seen, not yet known to be in control
        self._first = 0  # the CUSUM's count of the first waiting value
        self._ready: list[float] = []  # in control, handed to the estimate at a redesign
        self._scanned: np.ndarray | None = None
        self._bursts: BurstCusum | None = None
        self._next_fit = FIRST_BURST_FIT

    # --- the detector protocol ----------------------------------------------------

    @property
    def _alarms(self) -> BernoulliCusum | BurstCusum:
        """The detector whose alarms count: the bursts' CUSUM while a fit holds."""
        return self._cusum if self._bursts is None else self._bursts

    @property
    def bursts(self) -> TwoStateRate | None:
        """The two-state model of the bursts in use (None: the Bernoulli CUSUM alarms)."""
        return None if self._bursts is None else self._bursts.model

    @property
    def drift_detected(self) -> bool:
        return self._alarms.drift_detected

    @property
    def score(self) -> float:
        return self._alarms.score

    @property
    def n_seen(self) -> int:
        return self._alarms.n_seen

    @property
    def change_start(self) -> int:
        return self._alarms.change_start

    @property
    def threshold(self) -> float:
        """The Bernoulli CUSUM's threshold now (``h`` times the learned dispersion)."""
        return self._cusum.h

    @property
    def redesign_in(self) -> int:
        """Values a scan may cover before the design can change (learning done: all)."""
        if self.rate.full:
            return 2**62
        return BATCH - self._consumed % BATCH

    def reset(self) -> None:
        self._cusum.reset()
        if self._bursts is not None:
            self._bursts.reset()
        self._forget_waiting()

    def update(self, x: float) -> bool:
        self._restart_after_alarm()
        alarm = self._cusum.update(x)
        if self._bursts is not None:
            alarm = self._bursts.update(x)
        self._learn([x])
        return alarm

    def first_alarm(self, xs: Sequence[float] | np.ndarray) -> int:
        """The first alarm in ``xs`` (-1: none); ``xs`` must not pass :attr:`redesign_in`.

        While the bursts' CUSUM alarms, the Bernoulli CUSUM's first alarm is a stop too
        (it restarts there), so batches learn the same values as single ones."""
        self._scanned = np.asarray(xs, dtype=float)
        first = self._cusum.first_alarm(self._scanned)
        if self._bursts is None:
            return first
        burst = self._bursts.first_alarm(self._scanned)
        return burst if first < 0 else first if burst < 0 else min(first, burst)

    def advance_scanned(self, count: int) -> bool:
        scanned, self._scanned = self._scanned, None
        if scanned is None or count <= 0:
            return self._alarms.drift_detected
        self._restart_after_alarm()
        alarm = self._cusum.advance_scanned(count)
        if self._bursts is not None:
            alarm = self._bursts.advance_scanned(count)
        self._learn(scanned[:count])
        return alarm

    # --- learning -------------------------------------------------------------------

    def _restart_after_alarm(self) -> None:
        # the CUSUM restarts its count at the value after an alarm
        if self._cusum.drift_detected:
            self._forget_waiting()

    def _forget_waiting(self) -> None:
        self._waiting.clear()
        self._first = 0

    def _learn(self, seen: Sequence[float] | np.ndarray) -> None:
        if self.rate.full:
            return
        redesign = len(seen) >= self.redesign_in
        self._consumed += len(seen)
        waiting = self._waiting
        waiting.extend(seen)
        ready = self._cusum.in_control - self._first
        if ready > 0:
            self._first += ready
            self._ready.extend(waiting.popleft() for _ in range(ready))
        elif len(waiting) > LEARN_CAP:  # a long excursion: its start is never learned
            drop = len(waiting) - LEARN_CAP
            self._first += drop
            for _ in range(drop):
                waiting.popleft()
        if redesign and self._ready:
            self.rate.learn(np.asarray(self._ready, dtype=float))
            self._ready.clear()
            self._cusum.recalibrate(self.rate.p0, self.h * self.rate.dispersion)
        if redesign and self.rate.n >= self._next_fit and not self._alarms.drift_detected:
            self._fit_bursts()

    def _fit_bursts(self) -> None:
        """(Re)fit the bursts when the learned values are overdispersed; a refit goes on
        with the sum where the last fit left it."""
        self._next_fit = LEARN_CAP if self.rate.n < LEARN_CAP else 2**62
        self._next_fit = min(self._next_fit, self.rate.n * REFIT_GROWTH)
        if self.rate.dispersion <= 1.0:
            self._bursts = None
            return
        last = self._bursts
        model = fit_bursts(self.rate.values, None if last is None else last.model)
        self._bursts = None if model is None else BurstCusum(model, self.ratio, self.h)
        if self._bursts is not None and last is not None:
            self._bursts.carry(last)
