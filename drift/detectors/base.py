"""The detector protocol every drift detector in :mod:`drift` implements.

River's own ``update()`` contract changed between releases (it returned the
detector, then nothing), so the service talks to this protocol only and the
River detectors are wrapped.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


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
