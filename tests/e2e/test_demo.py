"""The closed loop, shortened: drift caught and fixed on the real stack, in order, watched by
a real Prometheus.

The same scenario as ``make demo`` (``driftgate.demo``, its default ``sparse`` profile;
``LOOP_PROFILE`` picks it) with fewer requests,
on the session's shared vLLM, with a real drift service (its trigger starts the real
retrain job as a subprocess) and a real gateway. The adapter is named ``helpdesk`` so its
vLLM LoRA names cannot collide with the other tests' adapters on the shared engine.

A real Prometheus (Debian's package) scrapes the gateway, the drift service and vLLM for
the whole loop; afterwards every dashboard panel's query must return data, the drift and
lifecycle dashboards included (they need a detector alarm, a retrain run and a rollout,
which only this loop produces)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from openai import OpenAI

from driftgate.demo.profile import demo_env
from driftgate.demo.report import write_report
from driftgate.demo.runner import run_scenario
from driftgate.demo.settings import DemoSettings
from driftgate.demo.timeline import Timeline
from driftgate.demo.traffic import Outcome
from driftgate.engine import EngineProcess
from driftgate.stack import tenant_key
from tests.live import start_services
from tests.sre.live_prometheus import LiveReport, check_live
from tests.sre.sre_helpers import ALERTS, DASHBOARDS, require_binary

# The loop trains v2 for up to 6 epochs on 2 shared cores: longer than the suite default.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2700)]

#: Signals that need no label: drift confirmed on them is drift caught without feedback.
LABEL_FREE = {"prompt_embedding", "mean_logprob", "first_token_margin", "prompt_tokens",
              "completion_tokens"}  # fmt: skip


#: The demo's default profile (the dense one's checks are the sparse one's, fewer).
LOOP_PROFILE = "sparse"


def loop_settings(results: Path) -> DemoSettings:
    settings = DemoSettings(
        adapter="helpdesk", results_dir=results, profile=LOOP_PROFILE, recovery_set_tickets=400
    )
    settings = settings.quick()
    assert settings.profile == DemoSettings().profile
    return settings


#: The variables an SRE would pick after this loop: the adapter under watch, the signal that
#: drifted (other signals' alarm series do not exist: the scenario replaces it with the first
#: numeric signal the run confirmed), and on the gateway dashboard the version serving at
#: the end (the one that also streamed).
WATCHED = {
    "adapter": "helpdesk",
    "signal": "mean_logprob",
    "driftgate-gateway.version": "2",
}


def watched_signal(confirmed: object, default: str) -> str:
    """The first signal confirmed that has streaming series (not the embedding test)."""
    if not isinstance(confirmed, dict):
        return default
    numeric = sorted((ts, s) for s, ts in confirmed.items() if s != "prompt_embedding")
    return numeric[0][1] if numeric else default


@dataclass
class LoopRun:
    timeline: Timeline
    outcomes: list[Outcome]
    prometheus: LiveReport


def _stream(gateway_url: str, admin_key: str, adapter: str, n: int) -> None:
    """A few streaming requests as the demo's tenant (a second key for it)."""
    _, key = tenant_key(gateway_url, admin_key, "demo-app", [adapter])
    client = OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0, timeout=120)
    for i in range(n):
        chunks = client.chat.completions.create(
            model=adapter,
            max_tokens=8,
            temperature=0,
            stream=True,
            messages=[{"role": "user", "content": f"My Nova hub {i} keeps rebooting."}],
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.fixture(scope="module")
def loop_run(engine: EngineProcess, tmp_path_factory: pytest.TempPathFactory) -> LoopRun:
    prometheus = require_binary("prometheus")
    root = tmp_path_factory.mktemp("closed-loop")
    home = root / "home"
    settings = loop_settings(root / "results")
    env = demo_env(settings)
    # prompt-embedding drift is on (off by default: the drift dashboard has a panel for it)
    assert env["DRIFTGATE_DRIFT_EMBEDDINGS"] == "true"
    stack, config = start_services([engine.base_url], home, env=env)
    timeline = Timeline()
    outcomes: list[Outcome] = []
    prefer = dict(WATCHED)
    dashboards = [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]
    targets = {"gateway": config.urls.gateway, "drift": config.urls.drift, "vllm": engine.base_url}

    def scenario() -> None:
        run_scenario(
            settings,
            config.urls.gateway,
            config.urls.drift,
            config.admin_key,
            home,
            timeline,
            outcomes,
        )
        # The demo's client does not stream; the time-to-first-token panels need some.
        _stream(config.urls.gateway, config.admin_key, "helpdesk", n=4)
        prefer["signal"] = watched_signal(
            timeline.facts.get("confirmed_by_signal"), prefer["signal"]
        )

    try:
        report = check_live(
            prometheus,
            targets,
            dashboards,
            sorted(ALERTS.glob("*.yaml")),
            rate_interval="2m",
            range_="1h",
            settle_s=5.0,
            during=scenario,
            prefer=prefer,
        )
    finally:
        stack.stop()
        print(write_report(root / "results", timeline, outcomes).read_text())
    return LoopRun(timeline, outcomes, report)


def test_closed_loop_catches_drift_and_recovers(loop_run: LoopRun) -> None:
    """The loop caught the shift, retrained, promoted, and the new version routes drifted
    tickets at least as well as the goal, measured with power.

    Recovery is a one-sided binomial test (``driftgate/demo/recovery.py``) on a fixed,
    seeded set of n = 400 held-out drifted tickets scored through the promoted version,
    pinned, at temperature 0. H0: its accuracy p on drifted traffic is >= 0.96. The test
    fails when fewer than c = 371 are right, the largest c with P(Bin(400, 0.96) < c) <=
    1e-3: a loop exactly at the goal fails by bad luck with probability 8.8e-4 (better
    versions less: 6e-6 at p = 0.97). A version at 90% passes with probability
    P(Bin(400, 0.90) >= 371) = 3.6%, at 92% 33%. The recorded run prints the count and the
    99.9% Clopper-Pearson lower bound (``recovery`` in the report's facts).

    The scenario's premises, on fixed sets too: v1 is right on >= 87.5% of the 200 seeded
    original tickets of the stable phase (recorded runs: 95.5%; P(Bin(200, 0.95) < 175) =
    9e-6) and on <= 80% of the first 100 drifted ones (the 40% new-product tickets are new
    to it, so it is near 0.6 x 0.96 = 58%: P(Bin(100, 0.6) > 80) = 6e-6). The base model
    cannot know the invented codes. All told, a sound loop that promotes a version at the
    goal fails this test by chance with probability below 8.8e-4 + 2e-5.

    The loop can also fail to promote: the gate rejects a candidate trained on unlucky data
    (with dense feedback, one of 13 recorded runs: held-out 0.82 against serving 0.77,
    golden 0.81). The job then trains again once a few fresher labelled drifted examples
    arrived (``retrain.attempts``), up to three attempts, so the loop fails only when all
    three are rejected: about 0.08^3 = 5e-4 if the attempts are independent and the sparse
    profile's reviewed labels are no worse than dense feedback. That rate per attempt is an
    estimate from dense runs (the sparse profile with anchors promoted at its first attempt
    in each of its recorded closed-loop runs), not a bound; the test fails with the loop's
    milestones when no version was promoted.

    With the sparse profile (``LOOP_PROFILE``), also: drift is confirmed after the shift on a
    signal that needs no label
    (the prompt-embedding test and answer confidence watch every request; feedback on 5% of
    requests fills no reference in this run), the review queue was filled and answered, and
    the labels spent never exceed the budget: checked on the reviewer's count and on the
    examples the retrain kept with review provenance.
    """
    facts = loop_run.timeline.facts
    # The scenario: the base model cannot route to invented queues, v1 can, the shift hurts.
    assert facts["base_accuracy"] <= 0.2
    assert facts["stable"]["n"] == 200 and facts["stable"]["correct"] >= 175, facts
    assert facts["v1_drifted_set"]["n"] == 100, facts
    assert facts["v1_drifted_set"]["accuracy"] <= 0.8, facts
    # The loop's order, from the services' own records: the confirmed alarm, the retrain it
    # started, the rollout the retrain handed over, and the rollout's transitions.
    assert "promoted_version" in facts, loop_run.timeline.milestones
    server = facts["server_milestones"]
    shift = loop_run.timeline.first("shift")
    assert shift is not None
    order = ["drift confirmed", "retrain triggered", "rollout created", "loading", "canary",
             "promoted"]  # fmt: skip
    assert [k for k in order if k in server] == order, server
    times = [server[k] for k in order]
    assert loop_run.timeline.start + shift.t <= times[0], (shift, server)
    assert times == sorted(times), server
    assert facts["profile"] == LOOP_PROFILE, facts
    sparse = LOOP_PROFILE == "sparse"
    if sparse:  # caught without labels, labels bought within the budget
        assert facts["feedback_share"] == 0.05, facts
        at = loop_run.timeline.start + shift.t
        after = {s for s, ts in facts["confirmed_by_signal"].items() if ts >= at}
        assert after & LABEL_FREE, facts["confirmed_by_signal"]
        review = facts["review"]
        assert 0 < review["labelled"] <= review["budget"] and review["failed"] == 0, review
    # Recovery, with power (see the docstring).
    recovery = facts["recovery"]
    assert facts["promoted_version"] >= 2
    assert recovery["n"] == 400 and recovery["threshold"] == 371, recovery
    assert recovery["false_fail"] <= 1e-3, recovery
    assert recovery["passed"], (recovery, facts.get("recovery_misses"))
    # Only the opted-in tenant's traffic trained it, judged against the owner's golden set.
    retrain = facts["retrain"]
    assert retrain["training_tenants"] == ["demo-app"], retrain
    assert set(retrain["tenants"]) == {"demo-app"} and retrain["tenants"]["demo-app"] > 0, retrain
    assert retrain["golden"]["examples"] > 0, retrain
    if sparse:
        kept_review = retrain["dataset_stats"]["feedback_review"]
        assert 0 < kept_review <= review["budget"], retrain["dataset_stats"]
        # Few labels of original traffic: v1's confident pre-drift answers anchor it.
        assert retrain["dataset_stats"].get("kept_anchor", 0) > 0, retrain["dataset_stats"]
    # No request failed at any point, the swap included, and no feedback was lost.
    assert [o for o in loop_run.outcomes if not o.ok] == []
    assert facts["feedback_failed"] == 0 and facts["feedback_sent"] > 0
    served = {o.served_by for o in loop_run.outcomes if o.phase == "recovered"}
    assert served == {f"helpdesk@{facts['promoted_version']}"}, served


def test_every_dashboard_panel_has_data_after_the_loop(loop_run: LoopRun) -> None:
    report = loop_run.prometheus
    summary = report.save_summary("sre_live_full_cycle")
    assert report.failed() == [], summary
    assert sorted(report.unexported) == [], summary
    assert report.panels_without_data() == [], summary
    assert len(report.panels) > 60
    # The variables were filled from what the loop produced.
    assert report.variables["driftgate-drift"]["adapter"] == "helpdesk"
