"""Streams shaped like production signals: autocorrelated, heavy-tailed, bursty.

Each maker takes a seeded ``random.Random`` and returns two draw functions over one shared
state: the stream before the change and after it (an AR(1) keeps its last value, a bursty
stream its state). They differ in one parameter only:

- ``ar1``: a Gaussian AR(1) with lag-1 autocorrelation ``phi`` and unit marginal variance
  (load that comes in waves); the change adds ``shift`` marginal standard deviations;
- ``lognormal``: ``exp(N(mu, 1))`` (a heavy-tailed latency); the change adds ``shift`` to
  ``mu`` (the latency grows by ``e**shift`` times);
- ``bursty``: a sticky two-state Bernoulli (feedback that comes in bursts): a calm state
  with rate ``0.05`` and a burst state with rate ``0.35``; the burst state is entered with
  probability 0.01 and left with probability 0.05 per value (about 1/6 of the time, bursts
  of 20 values), so the mean rate is 0.10; the change multiplies both rates by ``factor``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

Draw = Callable[[], float]
Pair = tuple[Draw, Draw]


def ar1(rng: random.Random, phi: float, shift: float = 1.0) -> Pair:
    """A stationary Gaussian AR(1) with unit marginal variance; after: plus ``shift``."""
    innovation = math.sqrt(1.0 - phi * phi)
    state = [rng.gauss(0.0, 1.0)]

    def before() -> float:
        state[0] = phi * state[0] + innovation * rng.gauss(0.0, 1.0)
        return state[0]

    return before, lambda: before() + shift


def lognormal(rng: random.Random, shift: float = 1.0) -> Pair:
    """``exp(N(0, 1))``: skewed, with a heavy right tail; after: ``exp(N(shift, 1))``."""
    return (lambda: math.exp(rng.gauss(0.0, 1.0))), (lambda: math.exp(rng.gauss(shift, 1.0)))


#: Rates of the calm and the burst state, and the chances to enter and to leave a burst.
CALM_RATE, BURST_RATE, ENTER_BURST, LEAVE_BURST = 0.05, 0.35, 0.01, 0.05


def bursty(rng: random.Random, factor: float = 2.0) -> Pair:
    """A sticky two-state Bernoulli with mean rate 0.10; after: rates times ``factor``."""
    burst = [rng.random() < ENTER_BURST / (ENTER_BURST + LEAVE_BURST)]

    def draw(scale: float) -> float:
        flip = LEAVE_BURST if burst[0] else ENTER_BURST
        if rng.random() < flip:
            burst[0] = not burst[0]
        rate = (BURST_RATE if burst[0] else CALM_RATE) * scale
        return 1.0 if rng.random() < rate else 0.0

    return (lambda: draw(1.0)), (lambda: draw(factor))
