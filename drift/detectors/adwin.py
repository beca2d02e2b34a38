"""River's ADWIN behind our protocol, on standardized values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from river.drift import ADWIN

#: River's ADWIN is untyped; used through ``Any``.
_ADWIN: Any = ADWIN


class StandardizedADWIN:
    """ADWIN (River) on values standardized with a reference mean and std.

    ADWIN keeps a variable-length window and drops its older part when the
    means of the two parts differ more than a Hoeffding-style bound at
    confidence ``delta``. Standardizing first makes one ``delta`` mean the
    same for token counts and for latencies.

    Parameters
    ----------
    mean
        Reference mean of the signal.
    std
        Reference standard deviation.
    delta
        ADWIN's confidence value (River's default 0.002).
    clock
        How often (in values) ADWIN checks for a change (River's default 32).
    clip
        Standardized values are clipped to this magnitude.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(11)
    >>> detector = StandardizedADWIN(mean=10.0, std=2.0)
    >>> stream = [rng.gauss(10, 2) for _ in range(1000)] + [rng.gauss(16, 2) for _ in range(200)]
    >>> alarms = [i for i, x in enumerate(stream) if detector.update(x)]
    >>> 1000 <= alarms[0] < 1100
    True
    """

    #: ADWIN's state cannot be peeked: :meth:`first_alarm` consumes what it reads.
    scan_peeks: ClassVar[bool] = False

    def __init__(
        self, mean: float, std: float, delta: float = 0.002, clock: int = 32, clip: float = 6.0
    ) -> None:
        self.mean = mean
        self.std = std
        self.delta = delta
        self.clock = clock
        self.clip = clip
        self._scale = 1.0 / max(std, 1e-9, 1e-6 * abs(mean))
        self._reset()

    def _reset(self) -> None:
        self._adwin: Any = _ADWIN(delta=self.delta, clock=self.clock)
        self._drift = False
        self._n = 0
        self._change_start = -1
        self._scan_alarm = -1

    def reset(self) -> None:
        self._reset()

    @property
    def drift_detected(self) -> bool:
        return self._drift

    @property
    def score(self) -> float:
        return 1.0 if self._drift else 0.0

    @property
    def change_start(self) -> int:
        """Where ADWIN's kept (post-change) window begins, after an alarm; else -1."""
        return self._change_start

    @property
    def n_seen(self) -> int:
        return self._n

    def update(self, x: float) -> bool:
        z = (x - self.mean) * self._scale
        if math.isnan(z):  # no information: neutral, as in first_alarm
            z = 0.0
        z = min(self.clip, max(-self.clip, z))
        self._adwin.update(z)
        self._n += 1
        self._drift = bool(self._adwin.drift_detected)
        if self._drift:
            self._change_start = self._n - int(self._adwin.width)
        return self._drift

    def first_alarm(self, xs: Sequence[float] | np.ndarray) -> int:
        """Feed ``xs`` until the first alarm; return its index (-1: all consumed, no alarm).

        Unlike the CUSUM's, this consumes what it reads: ADWIN's state cannot be peeked.
        """
        z = (np.asarray(xs, dtype=float) - self.mean) * self._scale
        np.clip(z, -self.clip, self.clip, out=z)
        z[np.isnan(z)] = 0.0
        adwin = self._adwin
        values = z.tolist()
        # River's ADWIN.update is a Python wrapper around its Rust core (``_helper``, River
        # 0.26) that only resets after a detection; calling the core directly halves the
        # per-value cost. After a detection the wrapper's own update does the reset.
        core = None if adwin.drift_detected else getattr(adwin, "_helper", None)
        if core is not None:
            for i, value in enumerate(values):
                if core.update(value):
                    adwin._drift_detected = True
                    return self._alarm_at(i)
        else:
            for i, value in enumerate(values):
                adwin.update(value)
                if adwin.drift_detected:
                    return self._alarm_at(i)
        self._n += len(values)
        self._drift = False
        self._scan_alarm = -1
        return -1

    def advance_scanned(self, count: int) -> bool:
        """Whether the last :meth:`first_alarm` rang on value ``count - 1`` (it consumed
        the values already)."""
        alarmed = self._scan_alarm >= 0 and self._scan_alarm == count - 1
        self._scan_alarm = -1
        return alarmed

    def _alarm_at(self, i: int) -> int:
        self._n += i + 1
        self._drift = True
        self._change_start = self._n - int(self._adwin.width)
        self._scan_alarm = i
        return i
