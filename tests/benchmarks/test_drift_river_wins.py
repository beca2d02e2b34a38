from __future__ import annotations

from benchmarks.drift.quality import Row
from benchmarks.drift.run import river_wins


def _row(method: str, false_alarms: float, delay: float | None) -> Row:
    return Row("bursty", method, false_alarms, 200_000, {"x2": delay}, {"x2": 0}, 200)


def test_river_wins_names_the_fastest_the_fastest_within_target_and_the_quieter() -> None:
    rows = [
        _row("driftgate policy (feedback)", 1.0, 766.0),
        _row("River ADWIN (defaults)", 35.5, 240.0),
        _row("River DDM (defaults)", 87.5, 144.0),
        _row("River HDDM_A (defaults)", 0.0, 500.0),
        _row("River FHDDM (defaults)", 0.5, 900.0),
        _row("periodic chi-square", 0.0, 100.0),  # not a River default
    ]
    lines = river_wins(rows)
    assert lines == [
        "- bursty (x2): River DDM (defaults) finds it sooner, median 144 values against 766, "
        "with 87.50 false alarms per 1e5 against 1.00",
        "- bursty (x2): River HDDM_A (defaults) finds it sooner, median 500 values against "
        "766, with 0.00 false alarms per 1e5 against 1.00",
        "- bursty: River HDDM_A (defaults) raises fewer false alarms, 0.00 per 1e5 (of "
        "200,000) against 1.00 (of 200,000)",
        "- bursty: River FHDDM (defaults) raises fewer false alarms, 0.50 per 1e5 (of "
        "200,000) against 1.00 (of 200,000)",
    ]
    assert river_wins([_row("driftgate policy", 0.0, 10.0), _row("River ADWIN", 0.0, 48.0)]) == []
