"""Vectorized CUSUM recursion (the Lindley recursion) for batches of values."""

from __future__ import annotations

import numpy as np


def lindley(start: float, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``S_t = max(0, S_{t-1} + d_t)`` for every t, and where each run last restarted.

    Returns the sums and, per t, the index of the last value at which the sum
    was floored at zero (-1 when it was not floored in this batch).

    >>> s, reset = lindley(1.0, np.array([-2.0, 1.0, 1.0, -0.5]))
    >>> s.tolist(), reset.tolist()
    ([0.0, 1.0, 2.0, 1.5], [0, 0, 0, 0])
    """
    c = np.cumsum(steps)
    floor = np.minimum(np.minimum.accumulate(c), -start)
    s = c - floor
    s[s < 0.0] = 0.0
    idx = np.arange(steps.size)
    reset = np.maximum.accumulate(np.where(s <= 0.0, idx, -1))
    return s, reset
