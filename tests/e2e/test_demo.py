"""The closed loop, shortened: drift caught and fixed on the real stack, in order.

The same scenario as ``make demo`` (``driftgate.demo``) with fewer requests, on the
session's shared vLLM, with a real drift service (its trigger starts the real retrain
job as a subprocess) and a real gateway. The adapter is named ``helpdesk`` so its vLLM
LoRA names cannot collide with the other tests' adapters on the shared engine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from driftgate.demo.profile import DEMO_ENV
from driftgate.demo.report import write_report
from driftgate.demo.runner import run_scenario
from driftgate.demo.settings import DemoSettings
from driftgate.demo.timeline import Timeline
from driftgate.demo.traffic import Outcome
from driftgate.engine import EngineProcess
from tests.live import start_services

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(1800)
def test_closed_loop_catches_drift_and_recovers(engine: EngineProcess, tmp_path: Path) -> None:
    home = tmp_path / "home"
    stack, config = start_services([engine.base_url], home, env=DEMO_ENV)
    timeline = Timeline()
    outcomes: list[Outcome] = []
    try:
        settings = DemoSettings(adapter="helpdesk", results_dir=tmp_path / "results").quick()
        run_scenario(
            settings,
            config.urls.gateway,
            config.urls.drift,
            config.admin_key,
            home,
            timeline,
            outcomes,
        )
    finally:
        stack.stop()
        print(write_report(tmp_path / "results", timeline, outcomes).read_text())

    facts = timeline.facts
    order = [m.kind for m in timeline.milestones]
    # The events of the loop happened, in this order.
    expected = [
        "v1 serving",
        "baseline",
        "shift",
        "drift confirmed",
        "retrain triggered",
        "promoted",
    ]
    positions = [order.index(kind) for kind in expected]
    assert positions == sorted(positions), order
    # The base model cannot route to invented queues; v1 can; the shift hurts v1.
    assert facts["base_accuracy"] <= 0.2
    assert facts["stable_accuracy"] >= 0.7
    assert facts["shifted_accuracy"] < facts["stable_accuracy"] - 0.15
    # Recovery: the new version is back to >= 95% of the pre-drift accuracy.
    assert facts["promoted_version"] >= 2
    assert facts["recovered_accuracy"] >= 0.95 * facts["stable_accuracy"], facts
    # No request failed at any point, the swap included.
    assert [o for o in outcomes if not o.ok] == []
    served = {o.served_by for o in outcomes if o.phase == "recovered"}
    assert served == {f"helpdesk@{facts['promoted_version']}"}, served
