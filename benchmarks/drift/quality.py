"""Detection quality on synthetic streams with known change points.

For every method: false alarms per 1e5 stable samples, and the median delay
(in samples after the change) for a 1 sigma and a 3 sigma mean shift of a
Gaussian signal and for an error rate going 0.10 -> 0.20. The driftgate
policy (``drift.monitor.SignalMonitor``, default settings) is shown beside
River's detectors at their default settings and a periodic windowed test.

Run: ``.venv/bin/python -m benchmarks.drift.quality [--quick]`` (``benchmarks.drift.run``
runs it with the throughput benchmark and writes the suite's result document).
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from river.drift import ADWIN, KSWIN, PageHinkley
from river.drift.binary import DDM, EDDM, FHDDM, HDDMA, HDDMW

from drift.detectors.cusum import Cusum
from drift.detectors.rate import BernoulliCusum
from drift.detectors.windowed import chi_square_test, ks_test
from drift.monitor import MonitorConfig, SignalMonitor

REFERENCE = 1000
PRE_CHANGE = 1000

Detect = Callable[[float], bool]
Factory = Callable[[list[float]], Detect]
Draw = Callable[[], float]


def driftgate_policy(signal: str) -> Factory:
    def make(reference: list[float]) -> Detect:
        box: dict[str, SignalMonitor] = {}

        def fresh() -> SignalMonitor:
            return SignalMonitor(signal, MonitorConfig(), reference=list(reference))

        box["m"] = fresh()

        def detect(x: float) -> bool:
            if any(h.confirmed for h in box["m"].update(x)):
                box["m"] = fresh()
                return True
            return False

        return detect

    return make


def _stats(reference: list[float]) -> tuple[float, float]:
    return statistics.fmean(reference), statistics.stdev(reference)


def driftgate_cusum(reference: list[float]) -> Detect:
    mean, std = _stats(reference)
    return Cusum(mean, std, h=11.0).update


def driftgate_bernoulli(reference: list[float]) -> Detect:
    return BernoulliCusum(statistics.fmean(reference)).update


def river(cls: Callable[[], Any]) -> Factory:
    def make(_reference: list[float]) -> Detect:
        det = cls()

        def detect(x: float) -> bool:
            det.update(x)
            return bool(det.drift_detected)

        return detect

    return make


def periodic(kind: str, every: int = 500, alpha: float = 0.01) -> Factory:
    """The baseline: every ``every`` samples, test the last ``every`` against the reference."""

    def make(reference: list[float]) -> Detect:
        buf: list[float] = []
        ref_counts = {"1": sum(1 for v in reference if v >= 0.5)}
        ref_counts["0"] = len(reference) - ref_counts["1"]

        def detect(x: float) -> bool:
            buf.append(x)
            if len(buf) < every:
                return False
            if kind == "ks":
                p = ks_test(reference, buf).p_value
            else:
                ones = sum(1 for v in buf if v >= 0.5)
                p = chi_square_test(ref_counts, {"1": ones, "0": len(buf) - ones}).p_value
            buf.clear()
            return p < alpha

        return detect

    return make


def gauss(rng: random.Random, mean: float) -> Callable[[], float]:
    return lambda: rng.gauss(mean, 1.0)


def bern(rng: random.Random, p: float) -> Callable[[], float]:
    return lambda: 1.0 if rng.random() < p else 0.0


def false_alarms_on(factory: Factory, draw: Draw, samples: int) -> float:
    """Alarms per 1e5 values of a stable stream (a detector that alarms goes on)."""
    reference = [draw() for _ in range(REFERENCE)]
    detect = factory(reference)
    alarms = 0
    chunk = 100_000
    done = 0
    while done < samples:
        # a fresh reference per 1e5 samples, as for a new version going live
        if done:
            reference = [draw() for _ in range(REFERENCE)]
            detect = factory(reference)
        n = min(chunk, samples - done)
        alarms += sum(1 for _ in range(n) if detect(draw()))
        done += n
    return alarms * 1e5 / samples


def delay_on(factory: Factory, before: Draw, after: Draw, horizon: int) -> tuple[int | None, int]:
    """One trial: (delay in values after the change or None if missed, alarms before it)."""
    reference = [before() for _ in range(REFERENCE)]
    detect = factory(reference)
    early = sum(1 for _ in range(PRE_CHANGE) if detect(before()))
    for i in range(1, horizon + 1):
        if detect(after()):
            return i, early
    return None, early


def summarize(trials: list[tuple[int | None, int]]) -> tuple[float | None, int, int]:
    """Median delay, missed changes and alarms before the change over trials."""
    found = [d for d, _ in trials if d is not None]
    missed = len(trials) - len(found)
    early = sum(e for _, e in trials)
    return (statistics.median(found) if found else None), missed, early


def false_alarms(factory: Factory, kind: str, samples: int, seed: int) -> float:
    rng = random.Random(seed)
    draw = gauss(rng, 0.0) if kind == "gauss" else bern(rng, 0.10)
    return false_alarms_on(factory, draw, samples)


def delays(
    factory: Factory, kind: str, shift: float, trials: int, horizon: int, seed: int
) -> tuple[float | None, int, int]:
    """Median delay, missed changes and false alarms before the change over ``trials``."""
    rng = random.Random(seed)
    out = []
    for _ in range(trials):
        before = gauss(rng, 0.0) if kind == "gauss" else bern(rng, 0.10)
        after = gauss(rng, shift) if kind == "gauss" else bern(rng, shift)
        out.append(delay_on(factory, before, after, horizon))
    return summarize(out)


def feeds_reference(factory: Factory) -> Factory:
    """River's detectors have no reference: let them see the reference part of the stream."""

    def make(reference: list[float]) -> Detect:
        detect = factory(reference)
        for x in reference:
            detect(x)
        return detect

    return make


NUMERIC: dict[str, Factory] = {
    "driftgate policy (CUSUM or ADWIN, confirmed by KS)": driftgate_policy("latency_ms"),
    "driftgate CUSUM alone (k=0.5, h=11)": driftgate_cusum,
    "River ADWIN (defaults)": feeds_reference(river(ADWIN)),
    "River PageHinkley (defaults)": feeds_reference(river(PageHinkley)),
    "River KSWIN (defaults, seed 42)": feeds_reference(river(lambda: KSWIN(seed=42))),
    "periodic KS (every 500 vs reference, alpha 0.01)": periodic("ks"),
}
RATE: dict[str, Factory] = {
    "driftgate policy (Bernoulli CUSUM, x2, h=11.5)": driftgate_policy("negative_feedback"),
    "driftgate policy on a non-feedback rate (+chi2)": driftgate_policy("refusal"),
    "River ADWIN (defaults)": feeds_reference(river(ADWIN)),
    "River DDM (defaults)": feeds_reference(river(DDM)),
    "River EDDM (defaults)": feeds_reference(river(EDDM)),
    "River HDDM_A (defaults)": feeds_reference(river(HDDMA)),
    "River HDDM_W (defaults)": feeds_reference(river(HDDMW)),
    "River FHDDM (defaults)": feeds_reference(river(FHDDM)),
    "periodic chi-square (every 500 vs reference, alpha 0.01)": periodic("chi2"),
}


def fmt(x: float | None) -> str:
    return "-" if x is None else (f"{x:.0f}" if x >= 10 else f"{x:.1f}")


@dataclass(frozen=True)
class Budget:
    """How many values each measurement gets (River's KSWIN runs a KS test per value)."""

    stable: int = 1_000_000  # stable values for the driftgate rows' false alarms
    river_stable: int = 200_000  # ... for the other rows
    trials: int = 200
    kswin_stable: int = 10_000
    kswin_trials: int = 10

    def of(self, method: str) -> tuple[int, int]:
        """(stable values, trials) for one method."""
        if "KSWIN" in method:
            return min(self.stable, self.kswin_stable), min(self.trials, self.kswin_trials)
        if "driftgate" in method:
            return self.stable, self.trials
        return min(self.stable, self.river_stable), self.trials


#: A smoke run: a few short trials, KSWIN left out (it runs a KS test per value).
QUICK = Budget(stable=20_000, river_stable=20_000, trials=5, kswin_stable=0, kswin_trials=0)


@dataclass(frozen=True)
class Row:
    """One method on one kind of stream: false alarms and median delays per change."""

    stream: str
    method: str
    false_alarms: float  # per 1e5 stable values
    stable: int
    delays: dict[str, float | None]  # change -> median delay (values after the change)
    missed: dict[str, int]  # change -> trials without an alarm within the horizon
    trials: int

    @property
    def river(self) -> bool:
        return self.method.startswith("River")


def gaussian_rows(budget: Budget) -> list[Row]:
    """Mean shifts of 1 and 3 standard deviations of a Gaussian signal."""
    rows = []
    for name, factory in NUMERIC.items():
        n, k = budget.of(name)
        if k == 0:  # KSWIN in a smoke run
            continue
        fa = false_alarms(factory, "gauss", n, seed=1)
        d1, m1, _ = delays(factory, "gauss", 1.0, k, 2000, seed=2)
        d3, m3, _ = delays(factory, "gauss", 3.0, k, 2000, seed=3)
        rows.append(
            Row(
                "gaussian",
                name,
                fa,
                n,
                {"1 sigma": d1, "3 sigma": d3},
                {"1 sigma": m1, "3 sigma": m3},
                k,
            )
        )
    return rows


def rate_rows(budget: Budget) -> list[Row]:
    """A rate going 0.10 -> 0.20 (negative feedback, or any other bad-outcome rate)."""
    rows = []
    for name, factory in RATE.items():
        n, k = budget.of(name)
        if k == 0:
            continue
        fa = false_alarms(factory, "rate", n, seed=4)
        d, m, _ = delays(factory, "rate", 0.20, k, 5000, seed=5)
        rows.append(Row("rate", name, fa, n, {"0.10 -> 0.20": d}, {"0.10 -> 0.20": m}, k))
    return rows


def markdown(rows: list[Row]) -> str:
    """One table per stream kind, a column per change."""
    out: list[str] = []
    for stream in dict.fromkeys(r.stream for r in rows):
        group = [r for r in rows if r.stream == stream]
        changes = list(group[0].delays)
        head = " | ".join(f"median delay {c}" for c in changes)
        out += [
            f"\n**{stream}**\n",
            f"| method | false alarms / 1e5 (of values) | {head} | missed (of trials) |",
            "|---|---|" + "---|" * len(changes) + "---|",
        ]
        for r in group:
            cells = " | ".join(fmt(r.delays[c]) for c in changes)
            missed = "/".join(str(r.missed[c]) for c in changes)
            out.append(
                f"| {r.method} | {r.false_alarms:.2f} (of {r.stable:,}) | {cells} "
                f"| {missed} of {r.trials} |"
            )
    return "\n".join(out).strip() + "\n"


def main() -> None:
    from benchmarks.drift import synth

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer samples (smoke run)")
    ap.add_argument("--stable", type=int, default=1_000_000, help="stable samples per method")
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--no-synth", action="store_true", help="skip River's synthetic streams")
    args = ap.parse_args()
    budget = QUICK if args.quick else Budget(stable=args.stable, trials=args.trials)
    t0 = time.time()
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, Python {platform.python_version()}")
    print(f"reference {REFERENCE} values, change after {PRE_CHANGE} more; {budget}\n")
    rows = gaussian_rows(budget) + rate_rows(budget)
    if not args.no_synth:
        rows += synth.synth_rows(synth.SYNTH_BUDGET if not args.quick else synth.QUICK_BUDGET)
    print(markdown(rows))
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
