"""The demo's report: the loop's figures come from the run (timeline, registry), not constants."""

from __future__ import annotations

import json
from pathlib import Path

from driftgate.demo.recovery import verdict
from driftgate.demo.report import retrain_facts, write_report
from driftgate.demo.tickets import TicketGenerator
from driftgate.demo.timeline import Milestone, Timeline
from driftgate.demo.traffic import Outcome
from retrain.registry import META_FILE


def _registry_entry(root: Path) -> None:
    d = root / "support" / "2"
    d.mkdir(parents=True)
    meta = {
        "adapter": "support",
        "version": 2,
        "lora_name": "support--v2",
        "status": "accepted",
        "parent_version": 1,
        "base_model": "base",
        "dataset": {
            "stats": {"kept_correction": 9},
            "tenants": {"demo-app": 102},
            "as_trained": [
                {
                    "request_id": "req-7",
                    "tenant": "demo-app",
                    "messages": [
                        {"role": "system", "content": "Route."},
                        {"role": "user", "content": "Where is my parcel?"},
                        {"role": "assistant", "content": "Q-SHP"},
                        {"role": "user", "content": "Following up: my Nova bulbs"},
                    ],
                    "target": "Q-NOVA",
                    "rendered_prompt": "<|im_start|>system\nRoute.<|im_end|>\n(...)",
                    "rendered_target": "Q-NOVA<|im_end|>\n",
                }
            ],
        },
        "training_tenants": ["demo-app"],
        "training": {
            "train_examples": 90,
            "validation_examples": 12,
            "best_epoch": 2,
            "stopped_early": True,
            "wall_s": 120.4,
            "curve": [{"epoch": 1}, {"epoch": 2}, {"epoch": 3}],
        },
        "evaluation": {
            "candidate": {"heldout": {"task": 0.95}, "golden": {"task": 1.0}},
            "serving": {"heldout": {"task": 0.6}, "golden": {"task": 0.9}},
        },
        "decision": ["held-out task 0.950 >= serving 0.600 + margin 0.05"],
    }
    (d / META_FILE).write_text(json.dumps(meta))


def test_report_states_detection_time_retrain_gate_and_recovery(tmp_path: Path) -> None:
    _registry_entry(tmp_path / "registry")
    timeline = Timeline()
    timeline.milestones = [
        Milestone(t, kind, "")
        for t, kind in [
            (100.0, "shift"),
            (131.0, "drift confirmed"),
            (400.0, "promoted"),
            (450.0, "phase"),
        ]
    ]
    timeline.facts.update(
        stable_accuracy=0.9,
        stable={"n": 200, "correct": 180},
        shifted_accuracy=0.55,
        recovered_accuracy=0.88,
        promoted_version=2,
        retrain=retrain_facts(tmp_path / "registry", "support", 2),
        v1_drifted_set={"n": 100, "accuracy": 0.58},
        recovery=verdict(correct=380, n=400, goal=0.96, alpha=1e-3).as_dict(),
        # by the drift service's clock; a confirmation before the shift is not listed
        confirmed_by_signal={
            "prompt_embedding": timeline.start + 142.4,
            "feedback_score": timeline.start + 127.0,
            "latency_ms": timeline.start + 50.0,
        },
    )
    ticket = TicketGenerator(seed=1).batch(1, shifted=True)[0]
    outcomes = [Outcome(0.0, "recovered", ticket, ticket.queue, True, "r1", "support@2", True)]
    report = write_report(tmp_path / "out", timeline, outcomes).read_text()
    assert "| drift confirmed after the shift | 31 s |" in report
    assert (
        "| v1 accuracy before the shift (200 seeded original tickets of live traffic) | 90.0% |"
        in report
    )
    assert (
        "| drift confirmed after the shift, by signal | feedback_score 27 s, "
        "prompt_embedding 42 s |"
    ) in report
    assert "| shift to promotion of the new version | 300 s |" in report
    assert "90 train / 12 validation examples" in report
    assert "| retrain data by tenant (opted in: demo-app) | demo-app: 102 examples |" in report
    assert "3 epochs, best epoch 2, stopped early: yes, 120 s" in report
    assert "| gate, held-out task accuracy (new vs serving) | 95.0% vs 60.0% |" in report
    assert "v1 (first 100) vs v2 (400) | 58.0% vs 95.0% |" in report
    assert "yes: 380/400 right, needs >= 371; lower bound 90.7%" in report
    assert (tmp_path / "out" / "demo.png").stat().st_size > 0
    # One curated example as served (the messages) and as trained (the rendered text).
    served, trained = report.split("## One curated example, as served and as trained")[1].split(
        "As trained:"
    )
    assert "`req-7` of tenant `demo-app`" in served
    assert '"content": "Following up: my Nova bulbs"' in served and "Target: `Q-NOVA`" in served
    assert "```text\n<|im_start|>system\nRoute.<|im_end|>\n(...)\n```" in trained
    assert "```text\nQ-NOVA<|im_end|>\n\n```" in trained


def test_report_says_when_the_run_recorded_no_rendered_example(tmp_path: Path) -> None:
    _registry_entry(tmp_path / "registry")
    timeline = Timeline()
    facts = retrain_facts(tmp_path / "registry", "support", 2)
    timeline.facts["retrain"] = facts | {"as_trained": []}
    ticket = TicketGenerator(seed=1).batch(1, shifted=True)[0]
    outcomes = [Outcome(0.0, "recovered", ticket, ticket.queue, True, "r1", "support@2", True)]
    report = write_report(tmp_path / "out", timeline, outcomes).read_text()
    assert "The retrain run recorded no rendered example." in report
