"""The confirmation policy per signal (pure, in memory)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from drift.monitor import MonitorConfig, SignalMonitor
from drift.versions import DriftMonitor

CFG = MonitorConfig(reference_size=200, window_size=200, test_every=100)


def feed(mon: SignalMonitor, xs: Sequence[float | str]) -> list[tuple[str, bool]]:
    return [(h.detector, h.confirmed) for x in xs for h in mon.update(x)]


def test_reference_fills_first_then_monitoring() -> None:
    rng = random.Random(0)
    mon = SignalMonitor("latency_ms", CFG)
    feed(mon, [rng.gauss(100, 5) for _ in range(199)])
    assert (mon.phase, mon.reference_completed) == ("reference", False)
    feed(mon, [100.0])
    assert (mon.phase, mon.reference_completed) == ("monitoring", True)
    assert mon.ref_mean is not None and abs(mon.ref_mean - 100) < 2


def test_numeric_shift_confirmed_once_then_drifted() -> None:
    rng = random.Random(1)
    mon = SignalMonitor("completion_tokens", CFG, reference=[rng.gauss(50, 5) for _ in range(200)])
    assert not [h for h in feed(mon, [rng.gauss(50, 5) for _ in range(5000)]) if h[1]]
    hits = feed(mon, [rng.gauss(60, 5) for _ in range(200)])
    confirmed = [h for h in hits if h[1]]
    assert len(confirmed) == 1 and confirmed[0][0].endswith("+ks")
    assert mon.phase == "drifted" and mon.score >= 1.0
    # no second alarm while drifted
    assert not [h for h in feed(mon, [rng.gauss(80, 5) for _ in range(500)]) if h[1]]
    assert mon.current_mean is not None and mon.current_mean > 70


def test_unconfirmed_streaming_alarm_is_dismissed() -> None:
    # a brief burst rings the CUSUM, but the values since the change do not differ enough
    # for a KS test at a very strict level: the alarm is dismissed and monitoring goes on
    cfg = MonitorConfig(
        reference_size=200, window_size=200, test_every=100, confirm_alpha=1e-30, use_adwin=False
    )
    rng = random.Random(2)
    mon = SignalMonitor("latency_ms", cfg, reference=[rng.gauss(0, 1) for _ in range(200)])
    hits = feed(mon, [4.0] * 4 + [rng.gauss(0, 1) for _ in range(400)])
    assert ("cusum", False) in hits and not [h for h in hits if h[1]]
    assert mon.phase == "monitoring"


def test_negative_feedback_confirms_alone() -> None:
    rng = random.Random(3)
    # a 10% rate spread over the reference (one block of ones would be one burst: the
    # calibration would read it as bursty feedback and raise the threshold)
    mon = SignalMonitor("negative_feedback", CFG, reference=([0.0] * 9 + [1.0]) * 20)
    hits = feed(mon, [float(rng.random() < 0.5) for _ in range(300)])
    assert ("bernoulli", True) in hits and mon.phase == "drifted"


def test_other_rates_need_chi_square_confirmation() -> None:
    rng = random.Random(4)
    mon = SignalMonitor("refusal", CFG, reference=[float(rng.random() < 0.05) for _ in range(200)])
    hits = feed(mon, [float(rng.random() < 0.3) for _ in range(300)])
    assert ("bernoulli+chi2", True) in hits


def test_categorical_alarm_is_never_confirmed_alone() -> None:
    mon = SignalMonitor("finish_reason", CFG, reference=["stop"] * 190 + ["length"] * 10)
    hits = feed(mon, ["length"] * 300)
    assert ("chi2", False) in hits and not [h for h in hits if h[1]]
    assert mon.score > 1.0


def test_drift_monitor_keeps_versions_apart() -> None:
    rng = random.Random(5)
    dm = DriftMonitor(CFG)
    for _ in range(200):
        dm.observe("support", 1, [("latency_ms", rng.gauss(100, 5))])
        dm.observe("support", 2, [("latency_ms", rng.gauss(300, 5))])
    done = dm.take_completed()
    assert {(a, v) for a, v, _ in done} == {("support", 1), ("support", 2)}
    assert dm.take_completed() == []
    alarms = [a for _ in range(200) for a in dm.observe("support", 2, [("latency_ms", 400.0)])]
    assert any(a.confirmed and a.version == 2 for a in alarms)
    assert dm.version("support", 1).signals["latency_ms"].phase == "monitoring"


def test_batches_raise_the_same_alarms_as_values_one_by_one() -> None:
    cfg = MonitorConfig(reference_size=200, window_size=200, test_every=10**9)
    for signal, make in (
        ("latency_ms", lambda r, shift: r.gauss(100 + 30 * shift, 10)),
        ("refusal", lambda r, shift: float(r.random() < 0.05 + 0.25 * shift)),
        ("negative_feedback", lambda r, shift: float(r.random() < 0.1 + 0.3 * shift)),
    ):
        rng = random.Random(7)
        stream = [make(rng, 0) for _ in range(3000)] + [make(rng, 1) for _ in range(500)]
        one = SignalMonitor(signal, cfg)
        by_one = [(i, h) for i, x in enumerate(stream) for h in one.update(x)]
        many = SignalMonitor(signal, cfg)
        by_many = []
        pos = 0
        for size in [1, 7, 100, 333, 1000] * 10:
            chunk = stream[pos : pos + size]
            by_many.extend(many.update_many(chunk))
            pos += size
            if pos >= len(stream):
                break
        assert [h for _, h in by_one] == by_many, signal
        assert any(h.confirmed for h in by_many), signal
        assert one.phase == many.phase == "drifted"


def test_batches_match_values_one_by_one_on_a_calibrated_signal() -> None:
    """A heavy-tailed, autocorrelated latency (exp of 1.5 times an AR(1), phi 0.6): the
    reference calibrates normal scores and whitening, and batches still raise the same
    alarms.

    Spurious failure: phi's standard error at 400 values is 0.04, so phi > 0.3 fails at 7
    of them (< 1e-11); the reference's excess kurtosis was above 8 for 2,000 of 2,000 seeds
    (0.1% quantile 8.1) against the heavy-tail bound 6; the shift is 1.5 marginal sd (0.75
    innovation sd against slack 0.25) for 500 values, about 6 times the expected delay
    (~90, benchmarks/drift/RESULTS.md)."""
    cfg = MonitorConfig(reference_size=400, window_size=200, test_every=10**9)
    rng = random.Random(8)
    level, stream = 0.0, []
    for i in range(4500):
        level = 0.6 * level + 0.8 * rng.gauss(0, 1)
        stream.append(100.0 * math.exp(1.5 * (level + (1.5 if i >= 4000 else 0.0))))
    one = SignalMonitor("latency_ms", cfg)
    by_one = [h for x in stream for h in one.update(x)]
    many = SignalMonitor("latency_ms", cfg)
    by_many, pos = [], 0
    for size in [1, 7, 100, 333, 1000] * 10:
        by_many.extend(many.update_many(stream[pos : pos + size]))
        pos += size
        if pos >= len(stream):
            break
    assert one.calibration is not None and one.calibration.phi > 0.3
    assert one.calibration.quantiles
    assert by_one == by_many
    assert any(h.confirmed for h in by_many) and one.phase == many.phase == "drifted"
