"""River's own synthetic concept-drift streams in the quality benchmark.

A served adapter version does not learn online, so the model here does not either: a
River model is trained on the pre-change concept, then frozen, and the detectors watch
what the drift service would see of it:

- ``agrawal``: a Hoeffding tree on ``Agrawal(classification_function=0, perturbation=0.05)``;
  the concept switches to function 2 (``ConceptDriftStream``, width 20: abrupt); the
  signal is the error indicator (1 = wrong, like negative feedback), about 0.06 -> 0.5;
- ``sea`` / ``sea gradual``: the same on ``SEA(variant=0, noise=0.1)`` switching to
  variant 3, abrupt (width 20) and gradual (width 500); error about 0.14 -> 0.25;
- ``friedman``: a linear regression on ``FriedmanDrift("gra")`` before its global drift;
  the signal is the absolute residual (a skewed numeric quality signal), mean about
  2.1 -> 3.6 (0.9 reference standard deviations).

The change is at ``ConceptDriftStream``'s ``position`` (the middle of the transition),
after the reference window and ``PRE_CHANGE`` more values; delays count from there.
Streams are generated once per trial and every method sees the same values.

Run: ``.venv/bin/python -m benchmarks.drift.synth [--quick]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from river import linear_model, tree
from river.datasets import synth
from river.drift import ADWIN, KSWIN, PageHinkley
from river.drift.binary import DDM

from benchmarks.drift.quality import (
    PRE_CHANGE,
    REFERENCE,
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

Dataset = Any  # river.datasets.base.SyntheticDataset (River ships no type hints)
Model = Any

#: Values after the change searched for an alarm.
HORIZON = 3000
#: Samples the frozen model is trained on (a separate stream of the first concept).
TRAIN = 3000

SYNTH_BUDGET = Budget(
    stable=200_000, river_stable=200_000, trials=40, kswin_stable=5_000, kswin_trials=3
)
QUICK_BUDGET = Budget(stable=2_000, river_stable=2_000, trials=2, kswin_stable=0, kswin_trials=0)


@dataclass(frozen=True)
class Scenario:
    """A frozen model on a River stream whose concept changes, and what is watched of it."""

    name: str
    kind: str  # "rate" (an error indicator) or "numeric"
    before: Callable[[int], Dataset]  # seed -> stream of the first concept
    after: Callable[[int], Dataset]  # seed -> stream of the second
    width: int  # ConceptDriftStream's transition width
    model: Callable[[], Model]
    classify: bool

    def trained(self) -> Model:
        model = self.model()
        for x, y in self.before(10_000).take(TRAIN):
            model.learn_one(x, y)
        return model

    def signal(self, model: Model, pairs: Iterator[tuple[dict[Any, Any], Any]]) -> Iterator[float]:
        for x, y in pairs:
            guess = model.predict_one(x)
            if self.classify:
                yield 0.0 if guess == y else 1.0
            else:
                yield abs(float(y) - float(guess))

    def stable(self, model: Model, n: int, seed: int) -> list[float]:
        """Values of the first concept only: what false alarms are counted on."""
        return list(self.signal(model, iter(self.before(seed).take(n))))

    def trial(self, model: Model, seed: int) -> list[float]:
        """Reference, pre-change and post-change values of one stream with a change."""
        stream = synth.ConceptDriftStream(
            stream=self.before(seed),
            drift_stream=self.after(seed + 1),
            # ConceptDriftStream counts from 1: this puts the middle of the change right
            # after the reference and PRE_CHANGE values
            position=REFERENCE + PRE_CHANGE + 1,
            width=self.width,
            seed=seed + 2,
        )
        return list(self.signal(model, iter(stream.take(REFERENCE + PRE_CHANGE + HORIZON))))


def _agrawal(function: int) -> Callable[[int], Dataset]:
    return lambda seed: synth.Agrawal(function, seed=seed, perturbation=0.05)


def _sea(variant: int) -> Callable[[int], Dataset]:
    return lambda seed: synth.SEA(variant=variant, noise=0.1, seed=seed)


def _friedman(drifted: bool) -> Callable[[int], Dataset]:
    # "gra": one global drift at the first position (the second brings the old concept back)
    position = (1, 10**9) if drifted else (10**9, 10**9 + 1)
    return lambda seed: synth.FriedmanDrift("gra", position=position, seed=seed)


SCENARIOS = [
    Scenario(
        "agrawal",
        "rate",
        _agrawal(0),
        _agrawal(2),
        20,
        tree.HoeffdingTreeClassifier,
        classify=True,
    ),
    Scenario("sea", "rate", _sea(0), _sea(3), 20, tree.HoeffdingTreeClassifier, classify=True),
    Scenario(
        "sea gradual", "rate", _sea(0), _sea(3), 500, tree.HoeffdingTreeClassifier, classify=True
    ),
    Scenario(
        "friedman",
        "numeric",
        _friedman(False),
        _friedman(True),
        20,
        linear_model.LinearRegression,
        classify=False,
    ),
]

RATE_METHODS: dict[str, Factory] = {
    "driftgate policy (error rate as negative feedback: Bernoulli CUSUM x2)": driftgate_policy(
        "negative_feedback"
    ),
    "River ADWIN (defaults)": feeds_reference(river(ADWIN)),
    "River PageHinkley (defaults)": feeds_reference(river(PageHinkley)),
    "River KSWIN (defaults, seed 42)": feeds_reference(river(lambda: KSWIN(seed=42))),
    "River DDM (defaults)": feeds_reference(river(DDM)),
    "periodic chi-square (every 500 vs reference, alpha 0.01)": periodic("chi2"),
}
NUMERIC_METHODS: dict[str, Factory] = {
    "driftgate policy (CUSUM or ADWIN, confirmed by KS)": driftgate_policy("latency_ms"),
    "River ADWIN (defaults)": feeds_reference(river(ADWIN)),
    "River PageHinkley (defaults)": feeds_reference(river(PageHinkley)),
    "River KSWIN (defaults, seed 42)": feeds_reference(river(lambda: KSWIN(seed=42))),
    "periodic KS (every 500 vs reference, alpha 0.01)": periodic("ks"),
}


def _draw(values: list[float]) -> Callable[[], float]:
    return iter(values).__next__


def scenario_rows(scenario: Scenario, budget: Budget) -> list[Row]:
    model = scenario.trained()
    methods = RATE_METHODS if scenario.kind == "rate" else NUMERIC_METHODS
    most_trials = max(budget.of(m)[1] for m in methods)
    trials = [scenario.trial(model, seed=100 + 3 * t) for t in range(most_trials)]
    most_stable = max(budget.of(m)[0] for m in methods)
    # a fresh reference per 1e5 values: REFERENCE extra values per started 1e5
    extra = REFERENCE * (1 + most_stable // 100_000)
    stable = scenario.stable(model, most_stable + extra, seed=7)
    rows = []
    for name, factory in methods.items():
        n, k = budget.of(name)
        if k == 0:
            continue
        fa = false_alarms_on(factory, _draw(stable), n) if n else float("nan")
        runs = []
        for values in trials[:k]:
            draw = _draw(values)
            runs.append(delay_on(factory, draw, draw, HORIZON))
        delay, missed, _ = summarize(runs)
        label = f"width {scenario.width}"
        rows.append(Row(f"River {scenario.name}", name, fa, n, {label: delay}, {label: missed}, k))
    return rows


def synth_rows(budget: Budget) -> list[Row]:
    return [row for s in SCENARIOS for row in scenario_rows(s, budget)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    t0 = time.time()
    print(markdown(synth_rows(QUICK_BUDGET if args.quick else SYNTH_BUDGET)))
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
