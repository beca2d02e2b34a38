"""Per (adapter, version, signal) drift state: reference window, detectors, policy.

Pure, in-memory and O(1) per value outside the rare tests. The confirmation
policy keeps false alarms rare:

- every detector is calibrated on the reference window (:mod:`drift.detectors.calibration`):
  heavy tails, autocorrelation and bursts measured there widen thresholds and shrink
  effective sample sizes, so they do not ring alarms;
- numeric signals: a streaming alarm (CUSUM or ADWIN on standardized, AR(1)-whitened
  values) opens a pending state; it is confirmed when a KS test of the values since
  the estimated change start against the reference rejects at
  ``confirm_alpha`` within ``confirm_patience`` values, else it is dismissed;
- rates: a Bernoulli CUSUM alarm, confirmed the same way by a chi-square test,
  except negative feedback, which confirms alone (feedback degradation is
  direct evidence); the rate and its dispersion keep being learned from values
  the CUSUM judged in control (:mod:`drift.detectors.rate_learning`);
- categorical signals (finish reason): the periodic chi-square test alarms,
  never confirms alone.

A confirmed signal stays drifted (no new alarms) until a new reference is
pinned or a new version goes live.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal, cast

import numpy as np

from drift.detectors.adwin import StandardizedADWIN
from drift.detectors.base import StreamingDetector
from drift.detectors.calibration import (
    MAX_MAGNITUDE,
    NumericCalibration,
    bounded,
)
from drift.detectors.cusum import Cusum
from drift.detectors.rate_learning import LearningBernoulliCusum
from drift.detectors.windowed import ReferenceSample, TestResult, chi_square_test, ks_test
from drift.features import SIGNALS, SignalKind

Phase = Literal["reference", "monitoring", "drifted"]

#: Signals whose streaming alarm is confirmed without a second test.
SELF_CONFIRMING = frozenset({"negative_feedback"})
#: Fewest values after a change start that a confirmation test looks at.
MIN_CONFIRM_SAMPLE = 5


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    reference_size: int = 1000
    window_size: int = 500
    test_every: int = 500
    window_alpha: float = 1e-4
    cusum_k: float = 0.5
    cusum_h: float = 11.0
    adwin_delta: float = 0.002
    use_adwin: bool = True
    rate_ratio: float = 2.0
    rate_h: float = 11.5
    confirm_alpha: float = 0.01
    confirm_patience: int = 200


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm of one detector (``confirmed`` marks confirmed drift)."""

    adapter: str
    version: int
    signal: str
    detector: str
    confirmed: bool
    score: float
    p_value: float | None
    detail: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class _Hit:
    detector: str
    confirmed: bool
    score: float
    p_value: float | None
    detail: dict[str, Any]


class SignalMonitor:
    """Drift state of one signal of one adapter version.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(0)
    >>> mon = SignalMonitor("latency_ms", MonitorConfig(reference_size=200))
    >>> hits = [h for _ in range(3000) for h in mon.update(rng.gauss(100, 10))]
    >>> [h.detector for h in hits if h.confirmed]
    []
    >>> hits = [h for _ in range(300) for h in mon.update(rng.gauss(130, 10))]
    >>> [h.detector for h in hits if h.confirmed]
    ['cusum+ks']
    >>> mon.phase
    'drifted'
    """

    def __init__(
        self,
        signal: str,
        config: MonitorConfig,
        reference: Sequence[float | str] | None = None,
        source: str = "auto",
    ) -> None:
        self.signal = signal
        self.kind: SignalKind = SIGNALS[signal]
        self.config = config
        self.source = source
        self.phase: Phase = "reference"
        self.reference: list[float | str] = []
        self._window: deque[float | str] = deque(maxlen=config.window_size)
        self._window_sum = 0.0
        self._since_test = 0
        self._streaming: list[tuple[str, StreamingDetector]] = []
        self._pending: str | None = None
        self._pending_n = 0
        self._pending_left = 0
        self.last_test: TestResult | None = None
        self.ref_mean: float | None = None
        self._ref_counts: Counter[str] = Counter()
        self._calibration: NumericCalibration | None = None
        self._rate: LearningBernoulliCusum | None = None
        self._window_drift = False
        self.reference_completed = False
        if reference is not None:
            self._start_monitoring(reference)

    # --- reference --------------------------------------------------------------------

    def _start_monitoring(self, reference: Sequence[float | str]) -> None:
        cfg = self.config
        self.reference = list(reference)
        self.phase = "monitoring"
        self._streaming = []
        if self.kind == "categorical":
            self._ref_counts = Counter(str(v) for v in self.reference)
            return
        ref = bounded(np.asarray([float(v) for v in self.reference], dtype=float))
        self._ref_sample = ReferenceSample(ref)
        mean = float(ref.mean()) if ref.size else 0.0
        self.ref_mean = mean
        if self.kind == "binary":
            rate = self._rate = LearningBernoulliCusum(ref, cfg.rate_ratio, cfg.rate_h)
            self._streaming.append(("bernoulli", rate))
            return
        # the detectors watch innovations: standardized, whitened values (mean 0, std 1)
        cal = self._calibration = NumericCalibration(ref)
        k, h_up, h_down = cal.cusum_design(cfg.cusum_k, cfg.cusum_h)
        self._streaming.append(("cusum", Cusum(0.0, 1.0, k, h_up, h_low=h_down)))
        if cfg.use_adwin:
            self._streaming.append(("adwin", StandardizedADWIN(0.0, 1.0, cfg.adwin_delta)))

    @property
    def calibration(self) -> NumericCalibration | None:
        """What the reference taught about a numeric signal (None before it is pinned)."""
        return self._calibration

    # --- current window ---------------------------------------------------------------

    def _push(self, x: float | str) -> None:
        w = self._window
        if self.kind != "categorical":
            if len(w) == w.maxlen:
                self._window_sum -= float(w[0])
            self._window_sum += float(x)
        w.append(x)

    @property
    def current_mean(self) -> float | None:
        if self.kind == "categorical" or not self._window:
            return None
        return self._window_sum / len(self._window)

    @property
    def score(self) -> float:
        """How close to an alarm: 1.0 is a detector's threshold; drifted signals report >= 1."""
        s = max((d.score for _, d in self._streaming), default=0.0)
        if self.kind == "categorical" and self.last_test is not None:
            s = -math.log10(max(self.last_test.p_value, 1e-300)) / -math.log10(
                self.config.window_alpha
            )
        return max(s, 1.0) if self.phase == "drifted" else s

    # --- tests ------------------------------------------------------------------------

    def _test(self, sample: list[float | str], exact: bool = False) -> TestResult:
        if self.kind == "numeric":
            ess = 1.0 if self._calibration is None else self._calibration.ess_factor
            if exact and ess == 1.0:  # small samples (confirmation): scipy's KS
                return ks_test(self._ref_sample.sorted.tolist(), [float(v) for v in sample])
            # dependent values: the asymptotic KS at the effective sample sizes
            return self._ref_sample.test(np.asarray(sample, dtype=float), ess)
        if self.kind == "binary" and self._rate is not None:
            # against the reference as extended by the in-control values learned since
            learned = self._rate.rate
            ref_counts = {"1": learned.ones, "0": learned.n - learned.ones}
            counts = Counter("1" if float(v) >= 0.5 else "0" for v in sample)
            return chi_square_test(ref_counts, counts, learned.dispersion)
        return chi_square_test(self._ref_counts, Counter(str(v) for v in sample))

    def _periodic(self) -> list[_Hit]:
        self._since_test = 0
        self.last_test = self._test(list(self._window))
        drift = self.last_test.p_value < self.config.window_alpha
        hits: list[_Hit] = []
        if drift and not self._window_drift:
            name = "ks" if self.kind == "numeric" else "chi2"
            hits.append(
                _Hit(name, False, self.score, self.last_test.p_value, {"psi": self.last_test.psi})
            )
        self._window_drift = drift
        return hits

    def _confirm(self) -> _Hit | None:
        n = min(self._pending_n, len(self._window))
        if n < MIN_CONFIRM_SAMPLE:
            return None
        sample = list(self._window)[-n:]
        result = self._test(sample, exact=True)
        if result.p_value >= self.config.confirm_alpha:
            return None
        test = "ks" if self.kind == "numeric" else "chi2"
        detail = {"psi": result.psi, "statistic": result.statistic, "n": n}
        return _Hit(f"{self._pending}+{test}", True, 1.0, result.p_value, detail)

    # --- the stream -------------------------------------------------------------------

    def update(self, x: float | str) -> list[_Hit]:
        """Feed one value; return the alarms it raised (usually none)."""
        if self.kind != "categorical":
            x = min(max(float(x), -MAX_MAGNITUDE), MAX_MAGNITUDE)
        self._push(x)
        if self.phase == "reference":
            self.reference.append(x)
            if len(self.reference) >= self.config.reference_size:
                self._start_monitoring(self.reference)
                self.reference_completed = True
            return []
        hits: list[_Hit] = []
        self._since_test += 1
        if self._since_test >= self.config.test_every:
            hits.extend(self._periodic())
        if self.phase == "drifted" or self.kind == "categorical":
            return hits
        value = float(x) if self._calibration is None else self._calibration.step(float(x))
        for name, det in self._streaming:
            if det.update(value) and self._pending is None:
                hits.extend(self._raise(name, det))
                if self._pending is None:  # confirmed at once: drifted
                    return hits
        if self._pending is not None:
            hits.extend(self._pending_step())
        return hits

    def _raise(self, name: str, det: StreamingDetector) -> list[_Hit]:
        """A streaming alarm: confirmed at once (feedback) or pending confirmation."""
        since = det.n_seen - det.change_start
        hits = [_Hit(name, False, 1.0, None, {"since_change": since})]
        if self.signal in SELF_CONFIRMING:
            hits.append(_Hit(name, True, 1.0, None, {"since_change": since}))
            self._drifted()
            return hits
        self._pending = name
        self._pending_n = since - 1
        self._pending_left = self.config.confirm_patience
        return hits

    def _pending_step(self) -> list[_Hit]:
        self._pending_n += 1
        self._pending_left -= 1
        hit = self._confirm()
        if hit is not None:
            self._drifted()
            return [hit]
        if self._pending_left <= 0:
            self._pending = None
            for _, det in self._streaming:
                det.reset()
        return []

    # --- batches: the same as ``update`` value by value, vectorized -----------------

    def update_many(self, xs: Sequence[float | str]) -> list[_Hit]:
        """Feed many values; same alarms as calling :meth:`update` on each in turn.

        Streaming detectors run vectorized up to their first alarm; a pending
        confirmation is handled value by value. Periodic window tests run at
        most once per call (at its end) instead of exactly every ``test_every``.
        """
        if self.kind != "categorical":
            xs = bounded(np.asarray(xs, dtype=float)).tolist()
        hits: list[_Hit] = []
        i, n = 0, len(xs)
        while i < n:
            if self.phase == "reference":
                take = min(self.config.reference_size - len(self.reference), n - i)
                chunk = xs[i : i + take]
                self._push_many(chunk)
                self.reference.extend(chunk)
                i += take
                if len(self.reference) >= self.config.reference_size:
                    self._start_monitoring(self.reference)
                    self.reference_completed = True
                continue
            if self._pending is not None:
                hits.extend(self.update(xs[i]))
                i += 1
                continue
            seg = xs[i:]
            if self._rate is not None and self.phase == "monitoring":
                seg = seg[: self._rate.redesign_in]  # its design may change there
            alarmed: list[tuple[str, StreamingDetector]] = []
            if self.phase == "drifted" or self.kind == "categorical":
                end = len(seg) - 1
            else:
                end, alarmed = self._scan(np.asarray(seg, dtype=float))
            part = seg[: end + 1]
            self._push_many(part)
            self._since_test += len(part)
            if self._since_test >= self.config.test_every:
                hits.extend(self._periodic())
            i += end + 1
            if alarmed:
                name, det = alarmed[0]
                hits.extend(self._raise(name, det))
                if self._pending is not None:
                    hits.extend(self._pending_step())
        return hits

    def _scan(self, values: np.ndarray) -> tuple[int, list[tuple[str, StreamingDetector]]]:
        """Run the streaming detectors up to the first alarm; (its index, who alarmed there)."""
        end = len(values) - 1
        cal = self._calibration
        if cal is not None:
            values = cal.scan(values)
        for _, det in self._streaming:
            if det.scan_peeks:
                first = det.first_alarm(values)  # a pure scan, consumed below
                if 0 <= first < end:
                    end = first
        for _, det in self._streaming:
            if not det.scan_peeks:  # consumes up to its alarm: only what the others allow
                first = det.first_alarm(values[: end + 1])
                if first >= 0:
                    end = first
        alarmed = [(name, det) for name, det in self._streaming if det.advance_scanned(end + 1)]
        if cal is not None:
            cal.advance(end + 1)
        return end, alarmed

    def _push_many(self, xs: Sequence[float | str]) -> None:
        w = self._window
        if self.kind == "categorical":
            w.extend(xs)
            return
        # Numeric and binary values are floats (drift.batch builds them so); the builtin
        # sum beats numpy's on batches this small.
        nums = cast("Sequence[float]", xs)
        size = w.maxlen or 0
        if len(nums) >= size:
            w.extend(nums[len(nums) - size :])
            self._window_sum = math.fsum(cast("deque[float]", w))
            return
        overflow = len(w) + len(nums) - size
        if overflow > 0:
            self._window_sum -= sum(cast("Iterator[float]", islice(w, overflow)))
        self._window_sum += sum(nums)
        w.extend(nums)

    def _drifted(self) -> None:
        self.phase = "drifted"
        self._pending = None

    def mark_drifted(self) -> None:
        """Restore a drifted state recorded before a restart."""
        if self.phase == "monitoring":
            self._drifted()

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "phase": self.phase,
            "reference_source": self.source,
            "reference_size": len(self.reference),
            "score": self.score,
            "current_mean": self.current_mean,
            "reference_mean": self.ref_mean,
            "pending": self._pending,
        }
        cal = self._calibration
        if cal is not None:
            out["calibration"] = {
                "normal_scores": cal.quantiles,
                "phi": cal.phi,
                "effective_sample_factor": cal.ess_factor,
            }
        elif self._rate is not None:
            out["calibration"] = {
                "dispersion": self._rate.rate.dispersion,
                "learned_values": self._rate.rate.n,
            }
        if self.last_test is not None:
            out["last_test"] = {
                "statistic": self.last_test.statistic,
                "p_value": self.last_test.p_value,
                "psi": self.last_test.psi,
            }
        return out
