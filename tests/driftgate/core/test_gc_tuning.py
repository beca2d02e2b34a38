"""The service GC settings apply while serving and are undone afterwards."""

from __future__ import annotations

import gc

from driftgate.core.gc_tuning import tuned_for_service


def test_thresholds_and_freeze_hold_only_inside() -> None:
    before = gc.get_threshold()
    with tuned_for_service(12_345):
        assert gc.get_threshold() == (12_345, before[1], before[2])
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_zero_keeps_the_threshold_but_still_freezes() -> None:
    before = gc.get_threshold()
    with tuned_for_service(0):
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
