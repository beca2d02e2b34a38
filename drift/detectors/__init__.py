"""Drift detectors behind one small protocol (River wrapped, plus our own)."""

from drift.detectors.adwin import StandardizedADWIN
from drift.detectors.base import Detector, StreamingDetector
from drift.detectors.calibration import NumericCalibration, RateCalibration
from drift.detectors.cusum import Cusum
from drift.detectors.rate import BernoulliCusum
from drift.detectors.rate_learning import LearnedRate, LearningBernoulliCusum
from drift.detectors.windowed import (
    TestResult,
    WindowedTest,
    chi_square_test,
    ks_test,
    psi,
)

__all__ = [
    "BernoulliCusum",
    "Cusum",
    "Detector",
    "LearnedRate",
    "LearningBernoulliCusum",
    "NumericCalibration",
    "RateCalibration",
    "StandardizedADWIN",
    "StreamingDetector",
    "TestResult",
    "WindowedTest",
    "chi_square_test",
    "ks_test",
    "psi",
]
