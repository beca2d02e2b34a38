"""A binary detector for rates (negative feedback, refusals, cut-by-length share)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from drift.detectors.scan import lindley


class BernoulliCusum:
    """Bernoulli CUSUM: finds a rate growing from ``p0`` to ``ratio * p0``.

    Each 0/1 value adds its log-likelihood ratio of the two rates to a sum
    floored at zero; the alarm rings when the sum exceeds ``h``. The expected
    run length without a change is about ``exp(h)`` values (``h=11.5``: about
    1e5), the delay after a change to ``ratio * p0`` about ``h`` divided by the
    Kullback-Leibler divergence of the two rates (0.10 -> 0.20: about 260).
    Only increases are watched: a rate of bad outcomes that falls is no drift
    to retrain for.

    Parameters
    ----------
    p0
        The in-control rate (from the reference window); floored at 1e-4.
    ratio
        The rate increase to detect, as a factor of ``p0`` (capped below 1).
    h
        Alarm threshold on the log-likelihood ratio sum.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(3)
    >>> detector = BernoulliCusum(p0=0.1)
    >>> stable = [rng.random() < 0.1 for _ in range(20000)]
    >>> any(detector.update(x) for x in stable)
    False
    >>> worse = [rng.random() < 0.2 for _ in range(2000)]
    >>> delay = next(i for i, x in enumerate(worse) if detector.update(x))
    >>> delay < 600
    True
    """

    #: :meth:`first_alarm` leaves the state unchanged; :meth:`advance_scanned` consumes.
    scan_peeks: ClassVar[bool] = True

    def __init__(self, p0: float, ratio: float = 2.0, h: float = 11.5) -> None:
        self.p0 = p0
        self.ratio = ratio
        self.h = h
        self._up, self._down = self._steps(p0, ratio)
        self._reset()

    @staticmethod
    def _steps(p0: float, ratio: float) -> tuple[float, float]:
        """Log-likelihood ratios of a 1 and of a 0 (``ratio * p0`` against ``p0``)."""
        base = min(max(p0, 1e-4), 0.99)
        alt = min(base * ratio, (1.0 + base) / 2.0 if base * ratio >= 1.0 else 0.999)
        return math.log(alt / base), math.log((1.0 - alt) / (1.0 - base))

    def recalibrate(self, p0: float, h: float) -> None:
        """A new in-control rate and threshold; the sum so far is kept."""
        self.p0 = p0
        self.h = h
        self._up, self._down = self._steps(p0, self.ratio)

    def _reset(self) -> None:
        self._sum = 0.0
        self._n = 0
        self._start = 0
        self._drift = False
        self._change_start = -1
        self._scanned: tuple[np.ndarray, np.ndarray] | None = None

    def reset(self) -> None:
        self._reset()

    @property
    def drift_detected(self) -> bool:
        return self._drift

    @property
    def score(self) -> float:
        return self._sum / self.h

    @property
    def change_start(self) -> int:
        return self._change_start

    @property
    def n_seen(self) -> int:
        return self._n

    @property
    def in_control(self) -> int:
        """How many of the values seen lie before the sum's last return to zero."""
        return self._start

    def update(self, x: float) -> bool:
        if self._drift:
            self._reset()
        s = self._sum + (self._up if x >= 0.5 else self._down)
        if s <= 0.0:
            s = 0.0
            self._start = self._n + 1
        self._sum = s
        self._n += 1
        if s > self.h:
            self._drift = True
            self._change_start = self._start
        return self._drift

    # --- batches ----------------------------------------------------------------------

    def first_alarm(self, xs: Sequence[float] | np.ndarray) -> int:
        """Index in ``xs`` of the first value that would ring the alarm (-1 if none).

        Does not change the detector; the scan is kept for :meth:`advance_scanned`.
        """
        if not len(xs):
            self._scanned = None
            return -1
        steps = np.where(np.asarray(xs, dtype=float) >= 0.5, self._up, self._down)
        s, reset = lindley(0.0 if self._drift else self._sum, steps)
        self._scanned = (s, reset)
        over = np.flatnonzero(s > self.h)
        return int(over[0]) if over.size else -1

    def advance_scanned(self, count: int) -> bool:
        """Consume the first ``count`` values of the last :meth:`first_alarm` scan."""
        if self._scanned is None or count <= 0:
            return self._drift
        s, reset = self._scanned
        self._scanned = None
        if self._drift:
            self._reset()
        n0 = self._n
        last = count - 1
        if reset[last] >= 0:
            self._start = n0 + int(reset[last]) + 1
        self._sum = float(s[last])
        self._n = n0 + count
        if self._sum > self.h:
            self._drift = True
            self._change_start = self._start
        return self._drift

    def advance(self, xs: Sequence[float] | np.ndarray) -> bool:
        """Consume ``xs`` at once (an alarm may only fall on its last value)."""
        self.first_alarm(xs)
        return self.advance_scanned(len(xs))
