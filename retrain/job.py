"""One retrain run: curate -> train -> register -> evaluate -> gate -> hand off or reject.

Every run is recorded in ``retrain_runs`` with its outcome, whatever happens. The I/O
edges (data source, opted-in tenants, serving version lookup, generator, hand-off) are
fields of :class:`JobContext`, so tests replace an edge without patching globals.

Before anything is read or trained, a run refuses (with the reason recorded) when no
tenant is opted in to train the adapter, or when the adapter has no golden set and
``allow_no_golden`` is off: promotion needs evidence that feedback cannot write. Then the
base model is loaded and its chat template probed once: whether it renders tool calls
decides whether tool-call answers can be training targets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftgate.core.adapters import is_valid_adapter_name, lora_name
from retrain.adapter_task import (
    GOLDEN_FILE,
    AdapterTask,
    golden_digest,
    load_golden,
    load_task,
)
from retrain.base_model import LoadedBase, load_base
from retrain.dataset import KEPT_ANCHOR, CuratedDataset, CurationConfig, TrafficRecord, curate
from retrain.errors import GoldenSetRequired, NoTrainingTenants, RetrainError, UnknownAdapter
from retrain.evaluate import Generator, evaluate_ahead, evaluate_model
from retrain.examples import ChatExample
from retrain.gate import GateDecision, decide
from retrain.metrics_task import build_metric
from retrain.registry import Registry, VersionMetadata
from retrain.runs import RunRecord, RunStore
from retrain.settings import RetrainSettings
from retrain.template_probe import renders_tool_calls
from retrain.trained_sample import rendered_samples
from retrain.training import ProgressFn, TrainConfig, train_lora

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A trained, registered and evaluated version (what the rollout receives)."""

    adapter: str
    version: int
    path: Path
    run_id: str
    serving_version: int | None
    decision: GateDecision


@dataclass
class JobContext:
    settings: RetrainSettings
    registry: Registry
    runs: RunStore
    #: (adapter, opted-in tenants) -> those tenants' logged traffic with their feedback
    source: Callable[[str, Collection[str]], Iterable[TrafficRecord]]
    #: adapter -> (serving version or None, every version number the state store knows)
    serving: Callable[[str], tuple[int | None, list[int]]]
    #: whether the adapter exists anywhere (state store, registry, drift store)
    known: Callable[[str], bool]
    generator: Generator
    hand_off: Callable[[Candidate], None]
    reject: Callable[[Candidate], None] = lambda _c: None
    drift_start: Callable[[str], float | None] = lambda _a: None
    #: adapter -> the tenants opted in to train it (none: the run refuses)
    tenants: Callable[[str], Collection[str]] = lambda _a: ()
    #: (adapter, serving version or None, a time, opted-in tenants) -> those tenants'
    #: unrated requests routed to that version and answered confidently before that time
    #: (the drift's start less ``anchor_margin_s``): anchors (``retrain.dataset``, rule 6)
    anchors: Callable[[str, int | None, float, Collection[str]], Iterable[TrafficRecord]] = (
        lambda *_: ()
    )
    base: LoadedBase | None = None
    progress: ProgressFn | None = None


def train_config(s: RetrainSettings) -> TrainConfig:
    return TrainConfig(
        rank=s.rank,
        max_rank=s.max_rank,
        target_modules=tuple(s.target_modules),
        learning_rate=s.learning_rate,
        batch_size=s.batch_size,
        max_epochs=s.max_epochs,
        patience=s.patience,
        min_epochs=s.min_epochs,
        min_delta=s.min_delta,
        seed=s.seed,
        device=s.device,
        share_prefix=s.share_prefix,
    )


def run_retrain(
    ctx: JobContext, adapter: str, reason: str, *, min_drift_examples: int | None = None
) -> RunRecord:
    """Run once for ``adapter``; returns the finished run record.

    ``min_drift_examples``: usable drifted examples to wait for (default: the setting's).
    Raises only for an invalid/unknown adapter (nothing recorded: there is no such
    adapter); every other failure is recorded as the run's outcome and returned.
    """
    if not is_valid_adapter_name(adapter) or not ctx.known(adapter):
        raise UnknownAdapter(f"unknown adapter {adapter!r}", param="adapter")
    run_id = ctx.runs.start(adapter, reason)
    t0 = time.perf_counter()
    want = ctx.settings.min_drift_examples if min_drift_examples is None else min_drift_examples
    try:
        return _run(ctx, adapter, reason, run_id, want)
    except RetrainError as exc:
        log.warning("retrain run %s for %s ended: %s", run_id, adapter, exc.message)
        return ctx.runs.finish(run_id, exc.outcome, exc.message)  # type: ignore[arg-type]
    except Exception as exc:  # recorded whole, then re-raised: never a silent failure
        ctx.runs.finish(run_id, "failed", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        log.info("retrain run %s took %.1f s", run_id, time.perf_counter() - t0)


def usable_in_window(
    records: Iterable[TrafficRecord], since: float, *, label_is_target: bool = True
) -> int:
    """Requests since ``since`` whose feedback makes them training data (approved,
    corrected, or labelled where a label is the target, as a reviewer's is); the rest
    (unrated, negative without correction) cannot teach anything.

    A review label given since ``since`` counts whatever its request's time: the drift
    service picked the request from the drifted version's traffic when drift was
    confirmed, and detection lags the shift, so many picks predate the first alarm."""
    n = 0
    for r in records:
        if not r.feedback:
            continue
        last = max(r.feedback, key=lambda f: f.ts)
        reviewed = r.feedback_source == "review" and last.ts >= since
        if r.ts < since and not reviewed:
            continue
        if (
            last.correction is not None
            or (label_is_target and last.label is not None)
            or (last.score is not None and last.score >= 0.5)
        ):
            n += 1
    return n


def wait_for_drift_data(
    ctx: JobContext,
    adapter: str,
    drift_start: float | None,
    tenants: Collection[str],
    *,
    want: int | None = None,
    poll_s: float = 10.0,
) -> list[TrafficRecord]:
    """Drift is often confirmed within a few dozen requests, before users have labelled
    enough of the new traffic to learn from. Wait (up to ``data_wait_s``) until the
    drifted window holds ``want`` (default ``min_drift_examples``) usable examples, then
    read the traffic (of the opted-in ``tenants`` only)."""
    s = ctx.settings
    want = s.min_drift_examples if want is None else want
    records = list(ctx.source(adapter, tenants))
    if drift_start is None or want <= 0:
        return records
    deadline = time.monotonic() + s.data_wait_s
    while (have := usable_in_window(records, drift_start)) < want:
        if time.monotonic() >= deadline:
            log.warning("drifted window has %d usable examples (wanted %d); going on", have, want)
            break
        log.info("waiting for feedback on the drifted traffic: %d/%d usable examples", have, want)
        time.sleep(poll_s)
        records = list(ctx.source(adapter, tenants))
    return records


def opted_in_tenants(ctx: JobContext, adapter: str) -> tuple[str, ...]:
    """The tenants whose traffic may train ``adapter``; refuses when there are none."""
    tenants = tuple(sorted(set(ctx.tenants(adapter))))
    if not tenants:
        raise NoTrainingTenants(
            f"no tenant is opted in to train {adapter!r}, so it trains on nothing from "
            f"traffic: opt tenants in with PUT /admin/adapters/{adapter}/training-tenants"
        )
    return tenants


def golden_evidence(ctx: JobContext, adapter: str, golden: Sequence[ChatExample]) -> dict[str, Any]:
    """What the version's metadata records of the golden set; refuses without one unless
    ``allow_no_golden`` (then logged at WARNING)."""
    if golden:
        return {
            "examples": len(golden),
            "hash": golden_digest(ctx.registry, adapter),
            "source": str(ctx.registry.adapter_dir(adapter) / GOLDEN_FILE),
        }
    if not ctx.settings.allow_no_golden:
        raise GoldenSetRequired(
            f"{adapter!r} has no golden set, and the gate promotes nothing without one (its "
            "held-out split comes from feedback): register one with `python -m retrain "
            "golden`, or set DRIFTGATE_RETRAIN_ALLOW_NO_GOLDEN=true to opt out"
        )
    log.warning(
        "%s has no golden set and DRIFTGATE_RETRAIN_ALLOW_NO_GOLDEN is on: a version may be "
        "promoted on the held-out split alone, which feedback writes",
        adapter,
    )
    return {"examples": 0, "allow_no_golden": True}


def curation_config(
    s: RetrainSettings, task: AdapterTask, *, tool_call_targets: bool = False
) -> CurationConfig:
    """How the job curates for ``task`` under ``s`` (``tool_call_targets``: the base
    model's template renders tool calls)."""
    return CurationConfig(
        min_train=s.min_train,
        min_validation=s.min_validation,
        validation_fraction=s.validation_fraction,
        max_examples=s.max_examples,
        max_tenant_share=s.max_tenant_share,
        label_is_target=task.label_is_target,
        target_pattern=task.target_pattern,
        default_system=task.system_prompt,
        tool_call_targets=tool_call_targets,
        anchor_ratio=s.anchor_ratio,
        anchor_min_logprob=s.anchor_min_logprob,
    )


def tenant_line(counts: Mapping[str, int]) -> str:
    """``acme=40, globex=40``: the examples each tenant supplied (log and report)."""
    return ", ".join(f"{t}={n}" for t, n in counts.items()) or "none"


def _run(ctx: JobContext, adapter: str, reason: str, run_id: str, want: int) -> RunRecord:
    s = ctx.settings
    tenants = opted_in_tenants(ctx, adapter)
    task = load_task(ctx.registry, adapter)
    metric = build_metric(task.metric)
    golden = load_golden(ctx.registry, adapter)
    evidence = golden_evidence(ctx, adapter, golden)
    base = ctx.base or load_base(s.base_model_dir, device=s.device)
    ctx.base = base
    tool_call_targets = renders_tool_calls(base.tokenizer)
    if not tool_call_targets:
        log.info(
            "the base model's chat template does not render tool calls: tool-call "
            "answers are left out of training"
        )
    cur_cfg = curation_config(s, task, tool_call_targets=tool_call_targets)
    drift_start = ctx.drift_start(adapter)
    records = wait_for_drift_data(ctx, adapter, drift_start, tenants, want=want)
    drift_examples = None if drift_start is None else usable_in_window(records, drift_start)
    serving, known_versions = ctx.serving(adapter)
    if drift_start is not None and s.anchor_ratio > 0:
        records += ctx.anchors(adapter, serving, drift_start - s.anchor_margin_s, tenants)
    data: CuratedDataset = curate(
        records, cur_cfg, golden=golden, drift_start=drift_start, tenants=tenants
    )
    log.info(
        "training on %d curated examples (%d of them anchors; %d held out for validation); "
        "by tenant: %s",
        len(data.train),
        data.stats.get(KEPT_ANCHOR, 0),
        len(data.validation),
        tenant_line(data.tenants),
    )
    serving_model = lora_name(adapter, serving) if serving is not None else s.served_model_name
    serving_scores = evaluate_ahead(ctx.generator, serving_model, data.validation, golden, metric)
    init_dir = None
    if s.init_from_serving and serving is not None:
        parent = ctx.registry.path(adapter, serving)
        init_dir = parent if (parent / "adapter_config.json").is_file() else None
    with ctx.registry.stage(adapter) as staging:
        result = train_lora(
            base,
            data.train,
            data.validation,
            staging,
            train_config(s),
            init_adapter_dir=init_dir,
            progress=ctx.progress,
        )
        meta = VersionMetadata(
            adapter=adapter,
            version=1,
            lora_name=lora_name(adapter, 1),
            status="candidate",
            parent_version=serving if init_dir is not None else None,
            base_model=str(s.base_model_dir),
            reason=reason,
            run_id=run_id,
            dataset=data.metadata() | {"as_trained": rendered_samples(base.tokenizer, data.train)},
            training_tenants=list(tenants),
            golden=evidence,
            training=result.to_dict() | {"config": train_config(s).to_dict()},
        )
        meta = ctx.registry.commit(staging, meta, reserved=known_versions)
    version, path = meta.version, ctx.registry.path(adapter, meta.version)
    name = lora_name(adapter, version)
    try:
        ctx.generator.load_lora(name, path)
        try:
            cand, cand_answers = evaluate_model(
                ctx.generator, name, data.validation, golden, metric
            )
            serv, _ = serving_scores()
        finally:
            ctx.generator.unload_lora(name)
    except RetrainError as exc:  # kept for inspection, never served
        ctx.registry.update(
            adapter, version, status="rejected", decision=[f"evaluation failed: {exc.message}"]
        )
        raise
    decision = decide(cand, serv, task.policy(require_golden=not s.allow_no_golden))
    status = "accepted" if decision.promote else "rejected"
    samples = [
        {"prompt": e.prompt, "expected": e.completion, "answer": a}
        for e, a in zip(data.validation[:5], cand_answers["heldout"][:5], strict=False)
    ]
    ctx.registry.update(
        adapter,
        version,
        status=status,
        evaluation=decision.to_dict() | {"samples": samples},
        decision=decision.reasons,
    )
    candidate = Candidate(adapter, version, path, run_id, serving, decision)
    if decision.promote:
        ctx.hand_off(candidate)
    else:
        ctx.reject(candidate)
    return ctx.runs.finish(
        run_id,
        "promoted" if decision.promote else "rejected",
        "; ".join(decision.reasons),
        candidate_version=version,
        serving_version=serving,
        candidate_score=cand.heldout.task,
        serving_score=serv.heldout.task,
        candidate_golden=cand.golden.task if cand.golden else None,
        serving_golden=serv.golden.task if serv.golden else None,
        dataset_size=data.size,
        dataset_hash=data.dataset_hash,
        details={
            "stats": data.stats,
            "tenants": data.tenants,
            "training_tenants": list(tenants),
            "golden": evidence,
            "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early,
            "train_wall_s": result.wall_s,
            "drift_examples": drift_examples,
            "tool_call_targets": tool_call_targets,
        },
    )
