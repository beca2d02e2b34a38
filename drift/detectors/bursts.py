"""Rates that come in bursts: a two-state model learned from the signal, and its CUSUM.

Feedback arrives in bursts (an incident, a bad session): calm stretches at a low rate and
bursts at a high one. A CUSUM on the rate alone must wait until a doubled rate differs from
a long burst, which is hundreds of values more than a detector that knows the bursts.
:class:`TwoStateRate` is a two-state Markov-modulated Bernoulli (Gilbert-Elliott) fitted by
EM (Baum-Welch) on the signal's in-control values; :class:`BurstCusum` is the CUSUM of the
log-likelihood ratios of each value's forward-filtered predictive probability under that
model and under the model with both rates times ``ratio`` (O(1) per value). Its sums are
likelihood ratios, so the in-control run length is at least ``exp(h)`` when the model is
right; :func:`fit_bursts` keeps a fit only when a likelihood-ratio test prefers it over
independent values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

#: Likelihood-ratio statistic (twice the log-likelihood gain over independent values) a
#: fit must pass: the 0.1% point of chi-square with 3 degrees of freedom is 16.3; the two
#: extra states are not identified under independence, so a margin above it.
BURST_EVIDENCE = 20.0
#: Largest number of EM iterations; it stops earlier when the log-likelihood gains less
#: than :data:`EM_TOLERANCE`.
EM_ITERATIONS = 200
EM_TOLERANCE = 1e-3
#: Bounds that keep the states distinguishable and the logarithms finite.
_EPS = 1e-5


@dataclass(frozen=True, slots=True)
class TwoStateRate:
    """A calm and a burst state with their rates, the chances to enter and to leave a burst
    per value, and the fit's log-likelihoods (of the model and of independent values)."""

    calm: float
    burst: float
    enter: float
    leave: float
    log_likelihood: float
    independent_log_likelihood: float

    @property
    def evidence(self) -> float:
        """Twice the log-likelihood gain over independent values (the LR statistic)."""
        return 2.0 * (self.log_likelihood - self.independent_log_likelihood)

    @property
    def burst_share(self) -> float:
        """The stationary chance of being in a burst."""
        return self.enter / (self.enter + self.leave)

    @property
    def mean(self) -> float:
        share = self.burst_share
        return share * self.burst + (1.0 - share) * self.calm

    @classmethod
    def fit(
        cls, values: Sequence[float] | np.ndarray, start: TwoStateRate | None = None
    ) -> TwoStateRate:
        """Baum-Welch on a 0/1 sequence (from ``start``, else from a generic guess: half
        and three times the mean rate, bursts entered once per 50 values, left after 10).

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> fit = TwoStateRate.fit((rng.random(2000) < 0.1).astype(float))
        >>> fit.evidence < BURST_EVIDENCE
        True
        """
        xs = [1 if v >= 0.5 else 0 for v in np.asarray(values, dtype=float).tolist()]
        n = len(xs)
        ones = sum(xs)
        mean = (ones + 0.5) / (n + 1.0)
        independent = ones * math.log(mean) + (n - ones) * math.log(1.0 - mean)
        if start is None:
            calm, burst, enter, leave = mean / 2.0, min(3.0 * mean, 0.9), 0.02, 0.1
        else:
            calm, burst, enter, leave = start.calm, start.burst, start.enter, start.leave
        loglik = -math.inf
        for _ in range(EM_ITERATIONS):
            new, step = _em_step(xs, calm, burst, enter, leave)
            calm, burst, enter, leave = new
            if step - loglik < EM_TOLERANCE:
                loglik = step
                break
            loglik = step
        if calm > burst:  # name the states by their rates
            calm, burst, enter, leave = burst, calm, leave, enter
        return cls(calm, burst, enter, leave, loglik, independent)


def _clip(p: float, high: float = 1.0 - _EPS) -> float:
    return min(max(p, _EPS), high)


def _em_step(
    xs: list[int], calm: float, burst: float, enter: float, leave: float
) -> tuple[tuple[float, float, float, float], float]:
    """One Baum-Welch step: the re-estimated parameters and the log-likelihood of the given
    ones (scaled forward-backward; the state is the burst's probability)."""
    n = len(xs)
    forward = [0.0] * n
    loglik = 0.0
    b = enter / (enter + leave)
    for t, x in enumerate(xs):
        if t:
            b = b * (1.0 - leave) + (1.0 - b) * enter
        in_burst = b * (burst if x else 1.0 - burst)
        in_calm = (1.0 - b) * (calm if x else 1.0 - calm)
        total = in_burst + in_calm
        b = in_burst / total
        forward[t] = b
        loglik += math.log(total)
    burst_time = burst_ones = calm_ones = 0.0
    entered = left = from_calm = from_burst = 0.0
    beta_b = beta_c = 1.0
    for t in range(n - 1, -1, -1):
        x = xs[t]
        f = forward[t]
        g = f * beta_b / (f * beta_b + (1.0 - f) * beta_c)
        burst_time += g
        if x:
            burst_ones += g
            calm_ones += 1.0 - g
        if t:
            p = forward[t - 1]
            e_b = burst if x else 1.0 - burst
            e_c = calm if x else 1.0 - calm
            cb = (1.0 - p) * enter * e_b * beta_b
            bc = p * leave * e_c * beta_c
            bb = p * (1.0 - leave) * e_b * beta_b
            cc = (1.0 - p) * (1.0 - enter) * e_c * beta_c
            total = cb + bc + bb + cc
            entered += cb / total
            left += bc / total
            from_calm += (cb + cc) / total
            from_burst += (bc + bb) / total
            next_b = (1.0 - leave) * e_b * beta_b + leave * e_c * beta_c
            next_c = enter * e_b * beta_b + (1.0 - enter) * e_c * beta_c
            top = max(next_b, next_c)
            beta_b, beta_c = next_b / top, next_c / top
    calm_time = n - burst_time
    new = (
        _clip(calm_ones / max(calm_time, _EPS)),
        _clip(burst_ones / max(burst_time, _EPS)),
        _clip(entered / max(from_calm, _EPS), 0.5),
        _clip(left / max(from_burst, _EPS), 0.9),
    )
    return new, loglik


def fit_bursts(
    values: Sequence[float] | np.ndarray, start: TwoStateRate | None = None
) -> TwoStateRate | None:
    """The two-state fit if it beats independent values by :data:`BURST_EVIDENCE`."""
    fit = TwoStateRate.fit(values, start)
    return fit if fit.evidence > BURST_EVIDENCE and fit.burst > fit.calm else None


class BurstCusum:
    """CUSUM of predictive log-likelihood ratios: ``model`` against its rates times
    ``ratio``, each forward-filtered on the values seen.

    When the sum returns to zero the alternative's filter restarts from the in-control
    one (a change starts from the state the stream is in). After an alarm it restarts.

    Examples
    --------
    >>> model = TwoStateRate(0.05, 0.35, 0.01, 0.05, 0.0, 0.0)
    >>> det = BurstCusum(model)
    >>> rng = np.random.default_rng(1)
    >>> det.first_alarm((rng.random(1000) < 0.05).astype(float))
    -1
    >>> det.first_alarm((rng.random(1000) < 0.7).astype(float)) > 0
    True
    """

    scan_peeks: ClassVar[bool] = True

    def __init__(self, model: TwoStateRate, ratio: float = 2.0, h: float = 11.5) -> None:
        self.model = model
        self.ratio = ratio
        self.h = h
        self._calm1 = min(model.calm * ratio, 1.0 - _EPS)
        self._burst1 = min(model.burst * ratio, 1.0 - _EPS)
        self._sum = 0.0
        self._b0 = self._b1 = model.burst_share
        self._n = 0
        self._start = 0
        self._drift = False
        self._change_start = -1
        self._scanned: np.ndarray | None = None

    def carry(self, other: BurstCusum) -> None:
        """Take over another's sum and counts (a refitted model goes on where it was)."""
        self._sum, self._n, self._start = other._sum, other._n, other._start

    @property
    def drift_detected(self) -> bool:
        return self._drift

    @property
    def score(self) -> float:
        return self._sum / self.h

    @property
    def n_seen(self) -> int:
        return self._n

    @property
    def change_start(self) -> int:
        return self._change_start

    @property
    def in_control(self) -> int:
        """How many of the values seen lie before the sum's last return to zero."""
        return self._start

    def reset(self) -> None:
        self._sum = 0.0
        self._b1 = self._b0
        self._n = 0
        self._start = 0
        self._drift = False
        self._change_start = -1

    def _run(self, xs: list[float], count: int) -> tuple[int, tuple[float, float, float, int]]:
        """Step through ``xs[:count]`` from the current state; (first alarm or -1, state)."""
        m = self.model
        enter, stay = m.enter, 1.0 - m.leave
        calm0, burst0, calm1, burst1 = m.calm, m.burst, self._calm1, self._burst1
        s = 0.0 if self._drift else self._sum
        b0 = self._b0
        b1 = b0 if self._drift else self._b1
        start = 0 if self._drift else self._start
        n0 = 0 if self._drift else self._n
        for i in range(count):
            p0 = b0 * stay + (1.0 - b0) * enter
            p1 = b1 * stay + (1.0 - b1) * enter
            q0 = p0 * burst0 + (1.0 - p0) * calm0
            q1 = p1 * burst1 + (1.0 - p1) * calm1
            if xs[i] >= 0.5:
                s += math.log(q1 / q0)
                b0 = p0 * burst0 / q0
                b1 = p1 * burst1 / q1
            else:
                s += math.log((1.0 - q1) / (1.0 - q0))
                b0 = p0 * (1.0 - burst0) / (1.0 - q0)
                b1 = p1 * (1.0 - burst1) / (1.0 - q1)
            if s <= 0.0:
                s = 0.0
                b1 = b0
                start = n0 + i + 1
            if s > self.h:
                return i, (s, b0, b1, start)
        return -1, (s, b0, b1, start)

    def _consume(self, xs: list[float], count: int) -> bool:
        fresh = self._drift
        n0 = 0 if fresh else self._n
        first, (s, b0, b1, start) = self._run(xs, count)
        if fresh:
            self.reset()
        self._sum, self._b0, self._b1, self._start = s, b0, b1, start
        self._n = n0 + count
        if first >= 0:
            self._drift = True
            self._change_start = start
        return self._drift

    def update(self, x: float) -> bool:
        return self._consume([x], 1)

    def first_alarm(self, xs: Sequence[float] | np.ndarray) -> int:
        """Index in ``xs`` of the first value that would ring the alarm (-1 if none)."""
        values = np.asarray(xs, dtype=float)
        self._scanned = values
        first, _ = self._run(values.tolist(), values.size)
        return first

    def advance_scanned(self, count: int) -> bool:
        """Consume the first ``count`` values of the last scan (an alarm only on the last)."""
        scanned, self._scanned = self._scanned, None
        if scanned is None or count <= 0:
            return self._drift
        return self._consume(scanned[:count].tolist(), count)
