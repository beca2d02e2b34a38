"""Benchmark of the retrain-gate part of the loop on one recorded drifted window."""
