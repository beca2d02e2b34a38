"""CUSUM thresholds corrected for the shape of a signal (Siegmund's approximation)."""

from __future__ import annotations

import numpy as np

from drift.detectors.calibration import NumericCalibration
from drift.detectors.siegmund import adjustment_coefficient, shape_thresholds


def test_adjustment_coefficient_of_normal_increments_is_twice_the_slack() -> None:
    """N(-k, 1) increments: theta = 2k exactly; on 100,000 values within 5%.

    Spurious failure: the root's standard error (delta method on the empirical
    moment-generating function at theta = 2k) is about 0.006 for k = 0.5; 5% of 1.0 is 8 of
    those: below 1e-12.
    """
    x = np.random.default_rng(31).normal(size=100_000)
    for k in (0.25, 0.5):
        assert abs(adjustment_coefficient(x - k) - 2.0 * k) < 0.05 * 2.0 * k


def test_a_right_skewed_reference_raises_only_its_upper_threshold() -> None:
    """A standardized exponential reference of 10,000 values (skewness 2): the upper
    threshold rises well above h = 11 (about 16.4), the lower one stays at 11 (its side
    alarms less than the Gaussian's); a normal reference keeps both near 11.

    Spurious failure: over 150 seeds the exponential's upper threshold had mean 16.35 and
    standard deviation 0.18 (14.5 is 10 of those) and its lower one was always 11; the
    normal's thresholds had mean 11.08, standard deviation 0.14, maximum 11.8 (12.5 is 10
    standard deviations): below 1e-6.
    """
    rng = np.random.default_rng(32)
    x = rng.exponential(size=10_000)
    up, down = shape_thresholds(np.clip((x - x.mean()) / x.std(ddof=1), -6, 6), 0.5, 11.0)
    assert up > 14.5 and down == 11.0
    up, down = shape_thresholds(rng.normal(size=10_000), 0.5, 11.0)
    assert 11.0 <= up < 12.5 and 11.0 <= down < 12.5


def test_tails_choose_between_normal_scores_and_corrected_values() -> None:
    """Heavier tails than an exponential's (a lognormal latency, excess kurtosis about
    110) go through normal scores, and their thresholds stay near h; a skewed but lighter
    signal (an absolute Gaussian residual, excess kurtosis 0.87) keeps its values, with
    the upper threshold raised.

    Spurious failure: the lognormal's sample kurtosis at 2,000 values fell below 6 in none
    of 2,000 seeds (0.1% quantile 11.4, minimum 8.9); the half-normal's has standard error
    about 0.25, so it passes 6 at 20 of those (below 1e-12); the half-normal's upper
    threshold ranged 12.9-13.9 over 40 seeds (standard deviation about 0.25) against the
    bound 12: below 1e-4 in all.
    """
    rng = np.random.default_rng(33)
    heavy = NumericCalibration(np.exp(rng.normal(size=2000)))
    _, up, down = heavy.cusum_design(0.5, 11.0)
    assert heavy.quantiles and up < 12.5 and down < 12.5
    skewed = NumericCalibration(np.abs(rng.normal(size=2000)))
    _, up, down = skewed.cusum_design(0.5, 11.0)
    assert not skewed.quantiles and up > 12.0 and down == 11.0
