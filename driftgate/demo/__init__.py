"""The closed-loop demo: a ticket-routing task, traffic, drift, retrain, swap."""

from __future__ import annotations

import argparse


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo (imported lazily: the scenario needs the openai SDK and matplotlib)."""
    from driftgate.demo.runner import run_demo as run

    return run(args)
