"""Detection quality on streams with the structure real traffic has.

Autocorrelated Gaussian signals (lag-1 autocorrelation 0.3, 0.6 and 0.8; a change of 1
marginal standard deviation), a heavy-tailed latency (lognormal; the log-mean grows by 1)
and bursty feedback (a sticky two-state Bernoulli at mean 0.10; the change doubles both
states' rates), from :mod:`benchmarks.drift.streams`. The driftgate policy (service
defaults) beside River's detectors at their defaults and a periodic windowed test, counted
as in :mod:`benchmarks.drift.quality`: false alarms per 1e5 stable values (a fresh
reference per 1e5), median delays after the change over seeded trials.

Run: ``.venv/bin/python -m benchmarks.drift.structured [--quick]``
"""

from __future__ import annotations

import argparse
import functools
import platform
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from river.drift import ADWIN, KSWIN, PageHinkley
from river.drift.binary import DDM

from benchmarks.drift import streams
from benchmarks.drift.quality import (
    Budget,
    Factory,
    Row,
    delay_on,
    driftgate_policy,
    false_alarms_on,
    feeds_reference,
    markdown,
    periodic,
    river,
    summarize,
)

NUMERIC: dict[str, Factory] = {
    "driftgate policy (calibrated CUSUM or ADWIN, confirmed by KS)": driftgate_policy("latency_ms"),
    "River ADWIN (defaults)": feeds_reference(river(ADWIN)),
    "River PageHinkley (defaults)": feeds_reference(river(PageHinkley)),
    "River KSWIN (defaults, seed 42)": feeds_reference(river(lambda: KSWIN(seed=42))),
    "periodic KS (every 500 vs reference, alpha 0.01)": periodic("ks"),
}
RATE: dict[str, Factory] = {
    "driftgate policy (negative feedback: calibrated Bernoulli CUSUM)": driftgate_policy(
        "negative_feedback"
    ),
    "driftgate policy on a non-feedback rate (+chi2)": driftgate_policy("refusal"),
    "River ADWIN (defaults)": feeds_reference(river(ADWIN)),
    "River DDM (defaults)": feeds_reference(river(DDM)),
    "periodic chi-square (every 500 vs reference, alpha 0.01)": periodic("chi2"),
}


@dataclass(frozen=True)
class Stream:
    """A kind of stream: its stable-then-changed draws from a seeded generator.

    ``adwin_delta`` is River ADWIN's ``delta`` at a matched false-alarm rate: the largest
    power of ten at which it raised at most 1 false alarm per 1e5 on 1e6 stable values
    of the benchmark's seed and of another (that seed plus 7), so its delay compares with
    the policy's at the policy's false-alarm target.
    """

    name: str
    change: str
    pair: Callable[[random.Random], streams.Pair]
    rate: bool
    horizon: int
    adwin_delta: float


STREAMS = [
    Stream("AR(1) phi=0.3", "+1 sd", lambda r: streams.ar1(r, 0.3), False, 3000, 1e-4),
    Stream("AR(1) phi=0.6", "+1 sd", lambda r: streams.ar1(r, 0.6), False, 3000, 1e-10),
    Stream("AR(1) phi=0.8", "+1 sd", lambda r: streams.ar1(r, 0.8), False, 3000, 1e-20),
    Stream("lognormal", "log-mean +1", streams.lognormal, False, 3000, 1e-7),
    Stream("bursty rate 0.10", "rates x2", streams.bursty, True, 5000, 1e-12),
]

#: The matched ADWIN row's name (its stable values: as many as the policy's).
MATCHED_ADWIN = "River ADWIN (delta tuned to <= 1 false alarm / 1e5)"


def matched_adwin(delta: float) -> Factory:
    return feeds_reference(river(functools.partial(ADWIN, delta=delta)))


def stream_rows(stream: Stream, budget: Budget, seed: int) -> list[Row]:
    rows = []
    methods = dict(RATE if stream.rate else NUMERIC)
    methods[MATCHED_ADWIN] = matched_adwin(stream.adwin_delta)
    for name, factory in methods.items():
        n, k = budget.of(name)
        if name == MATCHED_ADWIN:  # its false-alarm rate is the point: measured as closely
            n = budget.stable
        if k == 0:
            continue
        stable, _ = stream.pair(random.Random(seed))
        fa = false_alarms_on(factory, stable, n) if n else float("nan")
        rng = random.Random(seed + 1)
        runs = [delay_on(factory, *stream.pair(rng), stream.horizon) for _ in range(k)]
        delay, missed, _ = summarize(runs)
        rows.append(
            Row(stream.name, name, fa, n, {stream.change: delay}, {stream.change: missed}, k)
        )
    return rows


def structured_rows(budget: Budget, log: Callable[[str], None] = print) -> list[Row]:
    rows = []
    for i, stream in enumerate(STREAMS):
        rows += stream_rows(stream, budget, seed=100 + 10 * i)
        log(f"quality ({stream.name}) done")
    return rows


#: KSWIN runs a KS test per value: a few thousand values only.
STRUCTURED_BUDGET = Budget(
    stable=1_000_000, river_stable=200_000, trials=200, kswin_stable=5_000, kswin_trials=5
)
QUICK_BUDGET = Budget(stable=20_000, river_stable=20_000, trials=5, kswin_stable=0, kswin_trials=0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer samples (smoke run)")
    ap.add_argument("--stable", type=int, help="stable values per driftgate row")
    ap.add_argument("--river-stable", type=int, help="stable values per River row")
    ap.add_argument("--trials", type=int)
    args = ap.parse_args()
    budget = QUICK_BUDGET if args.quick else STRUCTURED_BUDGET
    budget = Budget(
        stable=args.stable or budget.stable,
        river_stable=args.river_stable or budget.river_stable,
        trials=args.trials or budget.trials,
        kswin_stable=budget.kswin_stable,
        kswin_trials=budget.kswin_trials,
    )
    t0 = time.time()
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, Python {platform.python_version()}; {budget}\n", flush=True)
    rows = structured_rows(budget, lambda m: print(f"{m} ({time.time() - t0:.0f} s)", flush=True))
    print(markdown(rows))
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
