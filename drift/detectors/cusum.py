"""Two-sided CUSUM on a standardized numeric signal."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from drift.detectors.scan import lindley


class Cusum:
    """Page's two-sided CUSUM for a shift of the mean, on standardized values.

    Values are standardized with the reference ``mean`` and ``std`` and clipped
    to ``[-clip, clip]`` (heavy tails of token counts and latencies must not
    ring the alarm alone). The detector accumulates ``z - k`` (upwards) and
    ``-z - k`` (downwards), floored at zero, and alarms when either sum
    exceeds ``h``. With ``k=0.5`` and ``h=11`` the in-control run length on
    Gaussian data is about 2e5 values while a 1 sigma shift is found after
    about 20 values (Siegmund's approximation).

    Parameters
    ----------
    mean
        Reference mean of the signal.
    std
        Reference standard deviation (a tiny floor avoids division by zero).
    k
        Slack in standard deviations: half the smallest shift worth finding.
    h
        Alarm threshold in standard deviations.
    clip
        Standardized values are clipped to this magnitude.
    h_low
        The downward sum's threshold, if not ``h`` (a skewed signal's short side alarms
        less often at the same threshold: :mod:`drift.detectors.siegmund`).

    Examples
    --------
    >>> import random
    >>> rng = random.Random(7)
    >>> detector = Cusum(mean=0.0, std=1.0)
    >>> stream = [rng.gauss(0, 1) for _ in range(1000)] + [rng.gauss(1, 1) for _ in range(200)]
    >>> first = next(i for i, x in enumerate(stream) if detector.update(x))
    >>> 1000 <= first < 1040
    True
    >>> abs(detector.change_start - 1000) < 20  # estimated start of the change
    True
    """

    #: :meth:`first_alarm` leaves the state unchanged; :meth:`advance_scanned` consumes.
    scan_peeks: ClassVar[bool] = True

    def __init__(
        self,
        mean: float,
        std: float,
        k: float = 0.5,
        h: float = 11.0,
        clip: float = 6.0,
        h_low: float | None = None,
    ) -> None:
        self.mean = mean
        self.std = std
        self.k = k
        self.h = h
        self.h_low = h if h_low is None else h_low
        self.clip = clip
        self._scale = 1.0 / max(std, 1e-9, 1e-6 * abs(mean))
        self._reset()

    def _reset(self) -> None:
        self._hi = 0.0
        self._lo = 0.0
        self._n = 0
        self._hi_start = 0
        self._lo_start = 0
        self._drift = False
        self._change_start = -1
        self._scanned: tuple[np.ndarray, ...] | None = None

    def reset(self) -> None:
        self._reset()

    @property
    def drift_detected(self) -> bool:
        return self._drift

    @property
    def score(self) -> float:
        return max(self._hi / self.h, self._lo / self.h_low)

    @property
    def change_start(self) -> int:
        """Index (count of values seen before it) where the detected change began; -1 if none."""
        return self._change_start

    @property
    def n_seen(self) -> int:
        return self._n

    def update(self, x: float) -> bool:
        if self._drift:
            self._reset()
        z = (x - self.mean) * self._scale
        if not math.isfinite(z):
            z = self.clip if z > 0 else -self.clip
        z = min(self.clip, max(-self.clip, z))
        hi = self._hi + z - self.k
        if hi <= 0.0:
            hi = 0.0
            self._hi_start = self._n + 1
        lo = self._lo - z - self.k
        if lo <= 0.0:
            lo = 0.0
            self._lo_start = self._n + 1
        self._hi = hi
        self._lo = lo
        self._n += 1
        if hi > self.h or lo > self.h_low:
            self._drift = True
            self._change_start = self._hi_start if hi > self.h else self._lo_start
        return self._drift

    # --- batches ----------------------------------------------------------------------

    def first_alarm(self, xs: Sequence[float] | np.ndarray) -> int:
        """Index in ``xs`` of the first value that would ring the alarm (-1 if none).

        Does not change the detector; the scan is kept for :meth:`advance_scanned`.
        """
        if not len(xs):
            self._scanned = None
            return -1
        z = (np.asarray(xs, dtype=float) - self.mean) * self._scale
        np.clip(z, -self.clip, self.clip, out=z)
        z[np.isnan(z)] = 0.0
        fresh = self._drift
        hi, hi_reset = lindley(0.0 if fresh else self._hi, z - self.k)
        lo, lo_reset = lindley(0.0 if fresh else self._lo, -z - self.k)
        self._scanned = (hi, lo, hi_reset, lo_reset)
        over = np.flatnonzero((hi > self.h) | (lo > self.h_low))
        return int(over[0]) if over.size else -1

    def advance_scanned(self, count: int) -> bool:
        """Consume the first ``count`` values of the last :meth:`first_alarm` scan.

        The same as ``update`` on each of them; an alarm may only fall on the last one.
        """
        if self._scanned is None or count <= 0:
            return self._drift
        hi, lo, hi_reset, lo_reset = self._scanned
        self._scanned = None
        if self._drift:
            self._reset()
        n0 = self._n
        last = count - 1
        if hi_reset[last] >= 0:
            self._hi_start = n0 + int(hi_reset[last]) + 1
        if lo_reset[last] >= 0:
            self._lo_start = n0 + int(lo_reset[last]) + 1
        self._hi = float(hi[last])
        self._lo = float(lo[last])
        self._n = n0 + count
        if self._hi > self.h or self._lo > self.h_low:
            self._drift = True
            self._change_start = self._hi_start if self._hi > self.h else self._lo_start
        return self._drift

    def advance(self, xs: Sequence[float] | np.ndarray) -> bool:
        """Consume ``xs`` at once (an alarm may only fall on its last value)."""
        self.first_alarm(xs)
        return self.advance_scanned(len(xs))
