"""CUSUM thresholds for the shape of a signal's values, by Siegmund's approximation.

A CUSUM ``S = max(0, S + x - k)`` designed as ``(k, h)`` for standard normal values alarms
about once per ``ARL(h)`` values in control. A skewed signal (absolute residuals, queue
lengths) with the same mean and standard deviation alarms more often on its long side and
less on its short one. Siegmund's approximation gives the average run length from the
increments' adjustment coefficient ``theta`` (the positive root of ``E exp(theta (x - k)) =
1``; 2k for normal values) and their drift ``mu``:

    ARL(h) = (exp(theta (h + rho)) - 1 - theta (h + rho)) / (theta |mu|),  rho = 1.166

:func:`shape_thresholds` picks each side's threshold so that the two sides together alarm
no more often than the Gaussian design's do, never below ``h``: a side that alarms less
than its share leaves the rest of the budget to the other.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

#: Siegmund's correction for the overshoot of a CUSUM over its threshold (Gaussian steps).
OVERSHOOT = 1.166
#: Largest adjustment coefficient searched: beyond it a side alarms (almost) never.
MAX_THETA = 50.0


def adjustment_coefficient(increments: np.ndarray) -> float:
    """The positive root of ``mean(exp(theta * x)) = 1`` over the increments (inf when
    none is positive, 0 when they drift upwards).

    >>> x = np.random.default_rng(0).normal(size=100_000) - 0.5
    >>> round(adjustment_coefficient(x), 1)
    1.0
    """
    if not increments.size or float(increments.mean()) >= 0.0:
        return 0.0
    if float(increments.max()) <= 0.0:
        return math.inf
    log_n = math.log(increments.size)

    def log_mgf(theta: float) -> float:
        return float(special.logsumexp(theta * increments)) - log_n

    if log_mgf(MAX_THETA) <= 0.0:
        return math.inf
    return float(optimize.brentq(log_mgf, 1e-9, MAX_THETA, xtol=1e-6))


def log_run_length(h: float, theta: float, drift: float) -> float:
    """Log of Siegmund's average run length of a one-sided CUSUM with threshold ``h``.

    >>> round(math.exp(log_run_length(11.0, 1.0, -0.5)) / 1e5, 1)  # k = 0.5, normal values
    3.8
    """
    if theta == math.inf:
        return math.inf
    a = theta * (h + OVERSHOOT)
    # exp(a) - 1 - a, in logs: a + log1p(-(1 + a) exp(-a)), exact enough and never overflows
    return a + math.log1p(-(1.0 + a) * math.exp(-a)) - math.log(theta * abs(drift))


def _threshold(log_arl: float, theta: float, drift: float, floor: float) -> float:
    """The smallest threshold >= ``floor`` with a run length of at least ``exp(log_arl)``."""
    if theta == math.inf or log_run_length(floor, theta, drift) >= log_arl:
        return floor
    top = floor
    while log_run_length(top, theta, drift) < log_arl:
        top *= 2.0
    return float(
        optimize.brentq(lambda h: log_run_length(h, theta, drift) - log_arl, floor, top, xtol=1e-3)
    )


def shape_thresholds(values: np.ndarray, k: float, h: float) -> tuple[float, float]:
    """Upper and lower thresholds of a two-sided CUSUM ``(k, h)`` on standardized
    ``values`` (the reference), at the false-alarm rate the design has on normal values.

    Normal values keep about ``h`` on both sides; a long right tail raises the upper one.
    Sides whose increments drift upwards in control (no coefficient) keep ``h``.

    >>> rng = np.random.default_rng(1)
    >>> up, down = shape_thresholds(rng.normal(size=10_000), 0.5, 11.0)
    >>> 11.0 <= up < 11.6 and 11.0 <= down < 11.6
    True
    >>> x = rng.exponential(size=10_000)
    >>> up, down = shape_thresholds((x - x.mean()) / x.std(), 0.5, 11.0)
    >>> up > 13.0 and down == 11.0
    True
    """
    gaussian = log_run_length(h, 2.0 * k, -k)
    sides = []
    for increments in (values - k, -values - k):
        theta, drift = adjustment_coefficient(increments), float(increments.mean())
        sides.append((theta, drift, _threshold(gaussian, theta, drift, h) if theta else h))
    # the budget: both sides together alarm at 2 / ARL; what one side leaves, the other uses
    budget = 2.0 * math.exp(-gaussian)
    out = []
    for i, (theta, drift, threshold) in enumerate(sides):
        o_theta, o_drift, o_threshold = sides[1 - i]
        if threshold > h and theta and o_theta:
            other_rate = math.exp(-log_run_length(o_threshold, o_theta, o_drift))
            threshold = _threshold(-math.log(budget - other_rate), theta, drift, h)
        out.append(threshold)
    return out[0], out[1]
