"""Detector behaviour on seeded synthetic streams (pure, no I/O)."""

from __future__ import annotations

import random

import pytest

from drift.detectors import (
    BernoulliCusum,
    Cusum,
    Detector,
    StandardizedADWIN,
    StreamingDetector,
    WindowedTest,
    chi_square_test,
    ks_test,
    psi,
)


def first_alarm(det: Detector, xs: list[float]) -> int | None:
    return next((i for i, x in enumerate(xs) if det.update(x)), None)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Cusum(0.0, 1.0),
        lambda: StandardizedADWIN(0.0, 1.0),
        lambda: BernoulliCusum(0.1),
        lambda: WindowedTest([0.0, 1.0] * 100, window=50, every=10),
    ],
)
def test_every_detector_meets_the_protocol(make: object) -> None:
    det = make()  # type: ignore[operator]
    assert isinstance(det, Detector)
    assert det.drift_detected is False
    det.update(0.0)
    det.reset()
    assert det.drift_detected is False and det.score == 0.0


def test_cusum_stays_quiet_on_stable_data_and_finds_one_sigma_fast() -> None:
    rng = random.Random(1)
    det = Cusum(0.0, 1.0)
    assert first_alarm(det, [rng.gauss(0, 1) for _ in range(50_000)]) is None
    delays = []
    for _ in range(50):
        det.reset()
        delay = first_alarm(det, [rng.gauss(1, 1) for _ in range(500)])
        assert delay is not None
        delays.append(delay)
    delays.sort()
    assert delays[len(delays) // 2] <= 30


def test_cusum_finds_decreases_and_estimates_the_change_start() -> None:
    rng = random.Random(2)
    det = Cusum(10.0, 2.0)
    stream = [rng.gauss(10, 2) for _ in range(500)] + [rng.gauss(4, 2) for _ in range(100)]
    at = first_alarm(det, stream)
    assert at is not None and 500 <= at < 520
    assert abs(det.change_start - 500) <= 5


def test_cusum_is_robust_to_nan_and_constant_references() -> None:
    det = Cusum(5.0, 0.0)
    assert not det.update(5.0)
    # An infinite value counts as one value at the clip (6 sigma): no alarm on its own,
    # the sum grows by clip - k = 5.5, and the third one in a row passes h = 11.
    assert det.update(float("inf")) is False and det.drift_detected is False
    assert det.score == (det.clip - det.k) / det.h
    assert first_alarm(det, [float("inf")] * 5) == 1  # the third inf, counting the one above
    for sign in (1.0, -1.0):  # both directions, and the batch scan agrees with update
        det.reset()
        assert first_alarm(det, [sign * float("inf")] * 5) == 2
        assert det.change_start == 0
        assert Cusum(5.0, 0.0).first_alarm([sign * float("inf")] * 5) == 2
    det.reset()
    assert any(det.update(6.0) for _ in range(5))


def test_bernoulli_cusum_detects_doubling_and_ignores_improvement() -> None:
    rng = random.Random(3)
    det = BernoulliCusum(0.1)
    assert first_alarm(det, [float(rng.random() < 0.02) for _ in range(20_000)]) is None
    delay = first_alarm(det, [float(rng.random() < 0.2) for _ in range(3000)])
    assert delay is not None and delay < 800


def test_bernoulli_cusum_with_zero_reference_rate_still_works() -> None:
    det = BernoulliCusum(0.0)
    assert first_alarm(det, [0.0] * 1000) is None
    assert first_alarm(det, [1.0] * 20) is not None  # ln(2) per bad outcome, h=11.5


def test_adwin_wrapper_detects_shift_and_reports_post_change_window() -> None:
    rng = random.Random(4)
    det = StandardizedADWIN(100.0, 10.0)
    stream = [rng.gauss(100, 10) for _ in range(2000)] + [rng.gauss(130, 10) for _ in range(300)]
    at = first_alarm(det, stream)
    assert at is not None and 2000 <= at < 2100
    assert 0 < det.n_seen - det.change_start <= at - 2000 + 40


def test_windowed_tests_and_psi() -> None:
    rng = random.Random(5)
    ref = [rng.gauss(0, 1) for _ in range(1000)]
    same = ks_test(ref, [rng.gauss(0, 1) for _ in range(500)])
    moved = ks_test(ref, [rng.gauss(0.5, 1) for _ in range(500)])
    assert same.p_value > 0.01 > 1e-6 > moved.p_value
    assert psi(ref, ref) < 0.01 and moved.psi > same.psi
    chi = chi_square_test({"stop": 95, "length": 5}, {"stop": 50, "length": 50})
    assert chi.p_value < 1e-6 and chi.psi > 0.5
    assert chi_square_test({"stop": 10}, {"stop": 10}).p_value == 1.0
    assert ks_test([], [1.0]).p_value == 1.0


def test_windowed_chi2_detector_on_categories() -> None:
    rng = random.Random(6)
    ref = ["stop" if rng.random() < 0.9 else "length" for _ in range(1000)]
    det = WindowedTest(ref, kind="chi2", window=200, every=50)
    same = ["stop" if rng.random() < 0.9 else "length" for _ in range(2000)]
    assert not any(det.update(x) for x in same)
    moved = ["stop" if rng.random() < 0.5 else "length" for _ in range(400)]
    assert any(det.update(x) for x in moved)


def test_adwin_batch_scan_finds_the_same_alarms_as_value_by_value_updates() -> None:
    rng = random.Random(8)
    stream = (
        [rng.gauss(0, 1) for _ in range(800)]
        + [rng.gauss(2, 1) for _ in range(400)]
        + [rng.gauss(-1, 1) for _ in range(400)]
        + [float("nan"), float("inf")]
        + [rng.gauss(0, 1) for _ in range(200)]
    )
    one_by_one = StandardizedADWIN(0.0, 1.0)
    expected = [(i, one_by_one.change_start) for i, x in enumerate(stream) if one_by_one.update(x)]
    scanned = StandardizedADWIN(0.0, 1.0)
    found: list[tuple[int, int]] = []
    start = 0
    while start < len(stream):  # uneven chunks, resuming after each alarm as the monitor does
        chunk = stream[start : start + 97]
        at = scanned.first_alarm(chunk)
        if at < 0:
            start += len(chunk)
            continue
        found.append((start + at, scanned.change_start))
        start += at + 1
    assert len(expected) >= 2 and found == expected
    assert scanned.n_seen == len(stream)


@pytest.mark.parametrize(
    ("make", "stream_of"),
    [
        (lambda: Cusum(0.0, 1.0), lambda rng, mu: rng.gauss(mu, 1)),
        (lambda: StandardizedADWIN(0.0, 1.0), lambda rng, mu: rng.gauss(mu, 1)),
        (lambda: BernoulliCusum(0.1), lambda rng, mu: float(rng.random() < 0.1 + 0.15 * mu)),
    ],
)
def test_streaming_detectors_scan_batches_as_the_monitor_does(
    make: object, stream_of: object
) -> None:
    """Through the protocol alone (first_alarm, then advance_scanned over what the scan
    allowed), every streaming detector finds the alarms that value-by-value updates find,
    whether its scan peeks or consumes."""
    rng = random.Random(5)
    draw = stream_of  # type: ignore[assignment]
    stream = [draw(rng, mu) for mu in [0.0] * 600 + [2.0] * 300 + [0.0] * 400]  # type: ignore[operator]
    one_by_one: StreamingDetector = make()  # type: ignore[operator]
    assert isinstance(one_by_one, StreamingDetector)
    expected = [(i, one_by_one.change_start) for i, x in enumerate(stream) if one_by_one.update(x)]
    scanned: StreamingDetector = make()  # type: ignore[operator]
    found: list[tuple[int, int]] = []
    start = 0
    while start < len(stream):
        chunk = stream[start : start + 61]
        at = scanned.first_alarm(chunk)
        count = len(chunk) if at < 0 else at + 1
        if scanned.advance_scanned(count):
            found.append((start + count - 1, scanned.change_start))
        start += count
    assert expected and found == expected
    assert scanned.n_seen == one_by_one.n_seen  # counted since the last reset
