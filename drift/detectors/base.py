"""The detector protocol every drift detector in :mod:`drift` implements.

River's own ``update()`` contract changed between releases (it returned the
detector, then nothing), so the service talks to this protocol only and the
River detectors are wrapped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Detector(Protocol):
    """A streaming change detector.

    ``update(x)`` consumes one value in O(1) and returns whether a change was
    detected at this value; ``drift_detected`` reads the same flag later.
    ``score`` is how close the detector is to an alarm (1.0 = its threshold),
    ``reset()`` forgets everything learned from the stream (not the
    hyperparameters).
    """

    @property
    def drift_detected(self) -> bool: ...

    @property
    def score(self) -> float: ...

    def update(self, x: float) -> bool: ...

    def reset(self) -> None: ...


@runtime_checkable
class StreamingDetector(Detector, Protocol):
    """A :class:`Detector` that also runs on batches, as the monitor feeds it.

    ``first_alarm(xs)`` finds the index of the first value in ``xs`` that rings the alarm
    (-1: none). Detectors whose state can be peeked (``scan_peeks``) leave it unchanged and
    keep the scan for ``advance_scanned``; the others consume what they read, up to their
    alarm. ``advance_scanned(count)`` then consumes the first ``count`` scanned values and
    says whether the alarm rings on the last of them. ``n_seen`` counts values consumed;
    ``change_start`` is where the detector places the change after an alarm (else -1).
    """

    scan_peeks: ClassVar[bool]

    @property
    def n_seen(self) -> int: ...

    @property
    def change_start(self) -> int: ...

    def first_alarm(self, xs: Sequence[float] | np.ndarray) -> int: ...

    def advance_scanned(self, count: int) -> bool: ...
