"""``driftgate demo``: the closed loop on this machine, end to end, with a report.

Phases: start the stack; adapter v1 (trained once on the original tickets, then
cached) is registered and routed; the base model and v1 are scored on held-out
tickets; stable traffic with user feedback; the distribution shifts (a new
product line with its own queue); the drift service confirms drift and
triggers a retrain; the retrain job curates recent traffic and feedback,
trains v2 with early stopping and gates it against v1; the rollout canaries
and promotes it; accuracy is measured again. Every number in the report comes
from this run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from openai import OpenAI

from driftgate.console import pipe_safe_output
from driftgate.core import admin_api, paths
from driftgate.core.client import Client, ServiceRefused
from driftgate.demo.adapter_v1 import ensure_v1
from driftgate.demo.loop import drift_summary
from driftgate.demo.observe import (
    LoopObserver,
    RetrainLogTail,
    confirmed_by_signal,
    server_milestones,
)
from driftgate.demo.profile import apply_demo_env, register_task, register_v1_in_registry
from driftgate.demo.recovery import verdict
from driftgate.demo.report import retrain_facts, write_report
from driftgate.demo.reviewer import SimulatedReviewer
from driftgate.demo.settings import DemoSettings
from driftgate.demo.tickets import TicketGenerator
from driftgate.demo.timeline import Sample, Timeline
from driftgate.demo.traffic import FeedbackPolicy, FeedbackSender, Outcome, accuracy, run_traffic
from driftgate.settings import EngineSettings
from driftgate.stack import embedded_stack, exit_on_signals, tenant_key

#: Seeds of the fixed scoring sets, offset from the demo's seed (traffic uses +1, the
#: golden set +1000): the same tickets in every run.
RECOVERY_SET_SEED = 2000
#: The demo's one tenant: its traffic and feedback train the adapter (it is opted in).
DEMO_TENANT = "demo-app"


def _register_v1(gateway_admin: Client, adapter: str, v1_dir: Path) -> None:
    try:
        gateway_admin.send(admin_api.register_version(adapter, str(v1_dir), version=1))
    except ServiceRefused as exc:
        if exc.status != 409:  # 409: already registered in this state store (a re-run)
            raise RuntimeError(f"registering v1 failed: {exc}") from exc
    gateway_admin.send(admin_api.set_route(adapter, {1: 1.0}))


def set_up_v1(
    settings: DemoSettings, gateway_url: str, admin_key: str, home: Path, timeline: Timeline
) -> str:
    """The demo's tenant, opted in to train the adapter, and v1 registered and serving 100%
    of it; returns the tenant's API key. Safe to run again against the same state store (a
    second key for the tenant, v1 kept, the route reset to v1, the opt-in set again)."""
    adapter = settings.adapter
    tenant, api_key = tenant_key(gateway_url, admin_key, DEMO_TENANT, [adapter])
    timeline.mark("phase", "adapter v1: registered, routed 100% of the adapter's traffic")
    v1_dir, v1_info = _ensure_v1(settings)
    timeline.facts["v1_training"] = v1_info
    timeline.mark("v1 ready", f"{v1_dir} ({'cached' if v1_info.get('cached') else 'trained'})")
    register_task(home / "registry", adapter, settings.seed)
    v1_dir = register_v1_in_registry(home / "registry", adapter, v1_dir)
    with Client(gateway_url, admin_key, timeout_s=120) as admin:
        _register_v1(admin, adapter, v1_dir)
        # No tenant opted in, no training data: the demo's users agree to train v2.
        opted = admin.send(admin_api.set_training_tenants(adapter, [tenant]))
    timeline.mark("v1 serving", f"{adapter} -> {adapter}@1 at 100%")
    timeline.mark("training opt-in", f"{adapter} trains on the traffic of {', '.join(opted)}")
    timeline.facts["training_tenants"] = opted
    return api_key


def score_fixed_set(
    api: OpenAI, model: str, tickets: list[Any], phase: str, concurrency: int
) -> list[Outcome]:
    """A fixed set through one pinned version (temperature 0); every ticket must answer."""
    outcomes = run_traffic(api, model, tickets, phase, concurrency=concurrency)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise RuntimeError(f"scoring {model}: {len(failed)} requests failed: {failed[0].error}")
    return outcomes


def _ensure_v1(settings: DemoSettings) -> tuple[Path, dict[str, object]]:
    return ensure_v1(
        paths.home() / "demo-cache",
        EngineSettings().model_dir,
        settings.v1_examples,
        settings.seed,
        epochs=settings.v1_epochs,
    )


def _progress(phase: str, outcomes: list[Outcome], timeline: Timeline) -> None:
    print(
        f"[demo {timeline.now():6.1f}s] {phase}: {len(outcomes)} requests, "
        f"accuracy {accuracy(outcomes):.0%}, failed {sum(not o.ok for o in outcomes)}",
        flush=True,
    )


def _serving_version(weights: dict[int, float]) -> int | None:
    full = [v for v, w in weights.items() if w >= 0.999]
    return full[0] if full else None


def run_scenario(
    settings: DemoSettings,
    gateway_url: str,
    drift_url: str,
    admin_key: str,
    home: Path,
    timeline: Timeline,
    outcomes: list[Outcome],
) -> None:
    """Everything after the stack is up (its files under ``home``). Every request's outcome
    is appended to ``outcomes`` as it happens, so an interrupted run still reports them."""
    adapter = settings.adapter

    api_key = set_up_v1(settings, gateway_url, admin_key, home, timeline)
    api = OpenAI(base_url=f"{gateway_url}/v1", api_key=api_key, max_retries=0, timeout=120)
    obs = LoopObserver(gateway_url, drift_url, admin_key, adapter)
    gen = TicketGenerator(seed=settings.seed + 1, shift_share=settings.shift_share)
    recovery_set = TicketGenerator(
        seed=settings.seed + RECOVERY_SET_SEED, shift_share=settings.shift_share
    ).batch(settings.recovery_set_tickets, shifted=True)
    feedback = FeedbackSender(
        gateway_url,
        api_key,
        FeedbackPolicy(settings.feedback_share, settings.feedback_noise, settings.correction_share),
        seed=settings.seed,
    )
    reviewer = _reviewer(settings, gateway_url, api_key)
    try:
        timeline.mark(
            "phase",
            f"baseline: base model on {settings.eval_tickets} original tickets, v1 on a fixed "
            f"set of {settings.v1_drifted_set_tickets} drifted ones (pinned: not watched as "
            "traffic)",
        )
        base = run_traffic(
            api,
            EngineSettings().served_model_name,
            gen.batch(settings.eval_tickets, shifted=False),
            "eval-base",
            concurrency=settings.concurrency,
        )
        outcomes += base
        timeline.facts["base_accuracy"] = accuracy(base)
        # v1 on the first of the fixed drifted tickets: how much the shift will hurt it (it
        # is unloaded once a new version is promoted). Pinned, so no detector watches it.
        v1_drifted = score_fixed_set(
            api,
            f"{adapter}@1",
            recovery_set[: settings.v1_drifted_set_tickets],
            "eval-v1-drifted",
            settings.concurrency,
        )
        outcomes += v1_drifted
        timeline.facts["v1_drifted_set"] = {"n": len(v1_drifted), "accuracy": accuracy(v1_drifted)}
        timeline.mark(
            "baseline",
            f"base model {accuracy(base):.0%} on original tickets, v1 "
            f"{accuracy(v1_drifted):.1%} on the first {len(v1_drifted)} drifted ones",
        )

        def sample() -> None:
            weights = obs.route()
            summary = drift_summary(obs.drift_status(), adapter)
            canary = min(weights.values()) if len(weights) > 1 else None
            timeline.samples.append(
                Sample(
                    timeline.now(), summary.score, canary, {str(v): w for v, w in weights.items()}
                )
            )

        def on_outcome(o: Outcome) -> None:
            outcomes.append(o)
            feedback.maybe_send(o)
            if reviewer is not None:
                reviewer.remember(o)

        timeline.mark(
            "phase",
            f"stable traffic: {settings.stable_requests} tickets, feedback on "
            f"{settings.feedback_share:.0%}",
        )
        stable = run_traffic(
            api,
            adapter,
            gen.batch(settings.stable_requests, shifted=False),
            "stable",
            concurrency=settings.concurrency,
            on_outcome=on_outcome,
        )
        _progress("stable", stable, timeline)
        sample()
        # The pre-drift accuracy: v1 on every ticket of the stable phase (seeded, greedy).
        timeline.facts["stable_accuracy"] = accuracy(stable)
        timeline.facts["stable"] = {"n": len(stable), "correct": sum(o.correct for o in stable)}

        timeline.mark(
            "shift", f"a new product line (Nova) now makes ~{settings.shift_share:.0%} of tickets"
        )
        if reviewer is not None:
            reviewer.start()
            timeline.mark(
                "phase",
                f"a reviewer answers the review queue as drift fills it (at most "
                f"{reviewer.budget} labels, from the tickets' truth, noise "
                f"{settings.feedback_noise:.0%})",
            )
        retrain_log = RetrainLogTail(home / "logs", adapter)
        deadline = time.monotonic() + settings.loop_timeout_s
        promoted_to: int | None = None
        shifted_all: list[Outcome] = []
        first_round: list[Outcome] | None = None
        trickle = False
        while time.monotonic() < deadline:
            if trickle:
                time.sleep(settings.trickle_pause_s)
            size = settings.trickle_round if trickle else settings.shift_round
            batch = run_traffic(
                api,
                adapter,
                gen.batch(size, shifted=True),
                "shifted",
                concurrency=min(size, settings.concurrency),
                on_outcome=on_outcome,
            )
            shifted_all += batch
            if first_round is None:
                first_round = batch
                timeline.facts["shifted_accuracy"] = accuracy(first_round)
            timeline.facts["shifted_all_accuracy"] = accuracy(shifted_all)
            _progress("shifted round", batch, timeline)
            sample()
            for line in retrain_log.new_lines():
                print(f"[demo {timeline.now():6.1f}s] retrain job: {line}", flush=True)
                if "training on" in line and timeline.first("canary") is None:
                    trickle = True
                    timeline.mark(
                        "phase",
                        "the retrain job trains and gates v2 on these 2 shared cores: traffic "
                        f"slows to {settings.trickle_round} requests every "
                        f"~{settings.trickle_pause_s:.0f} s until the canary starts",
                    )
                elif '"outcome"' in line and '"promoted"' not in line:
                    trickle = False  # the run ended without a new version to canary
            summary = drift_summary(obs.drift_status(), adapter)
            timeline.facts["confirmed_by_signal"] = confirmed_by_signal(
                summary.raw, adapter, 1, timeline.facts.get("confirmed_by_signal")
            )
            if summary.confirmed and timeline.first("drift confirmed") is None:
                timeline.mark("drift confirmed", summary.detail)
            if summary.retrain_started and timeline.first("retrain triggered") is None:
                timeline.mark("retrain triggered", summary.retrain_detail)
            if (
                reviewer is not None
                and reviewer.tally.labelled >= reviewer.budget
                and timeline.first("review budget spent") is None
            ):
                timeline.mark("review budget spent", f"{reviewer.tally.as_dict()}")
            weights = obs.route()
            if len(weights) > 1 and timeline.first("canary") is None:
                timeline.mark("canary", f"route {weights}")
                trickle = False
            serving = _serving_version(weights)
            if serving is not None and serving != 1:
                promoted_to = serving
                timeline.mark("promoted", f"{adapter} -> {adapter}@{serving} at 100%")
                break
        for ro in obs.rollouts():
            timeline.facts.setdefault("rollouts", []).append(ro)
        if promoted_to is None:
            timeline.mark(
                "loop incomplete", f"no new version promoted within {settings.loop_timeout_s:.0f} s"
            )
        else:
            timeline.mark(
                "phase", f"recovered traffic: {settings.recovered_requests} shifted tickets"
            )
            recovered = run_traffic(
                api,
                adapter,
                gen.batch(settings.recovered_requests, shifted=True),
                "recovered",
                concurrency=settings.concurrency,
                on_outcome=on_outcome,
            )
            _progress("recovered", recovered, timeline)
            timeline.mark(
                "recovered", f"{adapter}@{promoted_to}: accuracy {accuracy(recovered):.0%}"
            )
            sample()
            timeline.facts["recovered_accuracy"] = accuracy(recovered)
            timeline.facts["promoted_version"] = promoted_to
            timeline.facts["retrain"] = retrain_facts(home / "registry", adapter, promoted_to)
            _score_recovery(settings, api, recovery_set, promoted_to, timeline, outcomes)
        status = obs.drift_status()
        if promoted_to is not None:
            timeline.facts["server_milestones"] = server_milestones(
                status, obs.rollouts(), adapter, promoted_to
            )
        timeline.facts["drift_status"] = drift_summary(status, adapter).raw
    finally:
        feedback.close()
        timeline.facts["feedback_sent"] = feedback.sent
        timeline.facts["feedback_failed"] = feedback.failed
        timeline.facts["feedback_share"] = settings.feedback_share
        timeline.facts["profile"] = settings.profile
        if reviewer is not None:
            reviewer.close()
            timeline.facts["review"] = {**reviewer.tally.as_dict(), "budget": reviewer.budget}
        obs.close()


def _reviewer(settings: DemoSettings, gateway_url: str, api_key: str) -> SimulatedReviewer | None:
    """The simulated reviewer of the sparse profile (none without a review budget)."""
    if settings.review_budget <= 0:
        return None
    return SimulatedReviewer(
        gateway_url,
        api_key,
        settings.adapter,
        budget=settings.review_budget,
        noise=settings.feedback_noise,
        seed=settings.seed + 4000,
        poll_s=settings.review_poll_s,
        label_delay_s=settings.review_label_delay_s,
    )


def _score_recovery(
    settings: DemoSettings,
    api: OpenAI,
    recovery_set: list[Any],
    promoted_to: int,
    timeline: Timeline,
    outcomes: list[Outcome],
) -> None:
    """The fixed drifted set through the promoted version, and the verdict."""
    adapter = settings.adapter
    timeline.mark(
        "phase",
        f"scoring {adapter}@{promoted_to} on a fixed set of {len(recovery_set)} held-out "
        "drifted tickets",
    )
    after = score_fixed_set(
        api, f"{adapter}@{promoted_to}", recovery_set, "eval-recovered", settings.concurrency
    )
    outcomes += after
    result = verdict(
        correct=sum(o.correct for o in after),
        n=len(after),
        goal=settings.recovery_goal,
        alpha=settings.recovery_alpha,
    )
    timeline.facts["recovery"] = result.as_dict()
    timeline.facts["recovery_misses"] = dict(
        Counter(f"{o.ticket.queue} -> {o.answer.strip()[:12]}" for o in after if not o.correct)
    )
    timeline.mark(
        "recovery verdict",
        f"{adapter}@{promoted_to}: {result.summary()}",
    )


def run_demo(args: argparse.Namespace) -> int:
    settings = DemoSettings()
    if getattr(args, "quick", False):
        settings = settings.quick()
    if getattr(args, "prepare", False):
        v1_dir, info = _ensure_v1(settings)
        print(f"[demo] adapter v1 {'cached' if info.get('cached') else 'trained'}: {v1_dir}")
        return 0
    stamp = time.strftime("demo-%Y%m%d-%H%M%S")
    out_dir = (settings.results_dir / stamp).resolve()
    # Each run keeps its own state store, registry and logs: a run scores the loop from v1,
    # which a store where v1 already drifted and was replaced could not show again.
    run_home = paths.home() / "demo-runs" / stamp
    with pipe_safe_output(), exit_on_signals():
        return _run_demo(settings, out_dir, run_home)


def _run_demo(settings: DemoSettings, out_dir: Path, run_home: Path) -> int:
    timeline = Timeline()
    timeline.mark("start", f"results will be written to {out_dir}")
    timeline.facts["demo_env"] = apply_demo_env(settings)
    outcomes: list[Outcome] = []
    code = 1
    try:
        # `make setup` trains it (`driftgate demo --prepare`); if not, train it now, before
        # the stack starts, so training has both cores to itself.
        timeline.mark("phase", "adapter v1: trained once (by `make setup`), then cached")
        _ensure_v1(settings)
        timeline.mark("phase", f"this run's state, registry and logs: {run_home}")
        with embedded_stack(
            run_home,
            engine_port=settings.engine_port,
            drift_port=settings.drift_port,
            gateway_port=settings.gateway_port,
            progress=True,
        ) as stack:
            timeline.mark(
                "stack ready",
                f"gateway {stack.urls.gateway}, drift {stack.urls.drift}, "
                f"vLLM {stack.urls.engine[0]}",
            )
            run_scenario(
                settings,
                stack.urls.gateway,
                stack.urls.drift,
                stack.admin_key,
                run_home,
                timeline,
                outcomes,
            )
        recovery = timeline.facts.get("recovery")
        code = 0 if isinstance(recovery, dict) and recovery.get("passed") else 2
    except KeyboardInterrupt:
        timeline.mark("interrupted", "Ctrl-C: every process the demo started was stopped")
        code = 130
    finally:
        if outcomes or timeline.facts:
            report = write_report(out_dir, timeline, outcomes)
            print(f"[demo] report: {report}", flush=True)
    return code


def main() -> None:  # pragma: no cover - thin wrapper
    parser = argparse.ArgumentParser(prog="driftgate demo")
    parser.add_argument("--quick", action="store_true")
    sys.exit(run_demo(parser.parse_args()))
