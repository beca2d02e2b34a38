"""One trial of the replayed loop: curate -> train -> gate -> recovery, with the retrain
job's own code (the demo profile's settings), against a running vLLM.

Curation builds its :class:`~retrain.dataset.CurationConfig` from the settings and the
adapter's registered task as ``retrain.job`` does; training is
:func:`retrain.training.train_lora` from v1's weights with ``retrain.job.train_config``
(early stopping on the curated validation split); the gate scores the candidate and v1
on that split and the golden set through vLLM and applies the task's policy
(:func:`retrain.gate.decide`). Recovery: the candidate's accuracy on the held-out drifted
tickets (never traffic, never labelled), answered by vLLM with the candidate loaded,
divided by v1's accuracy on the recorded stable stretch.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.loop.replay import Draw, Window, draw
from benchmarks.loop.window import ServedRow
from driftgate.core.adapters import lora_name
from driftgate.demo.profile import DEMO_ENV, register_task, register_v1_in_registry
from driftgate.demo.ticket_examples import ticket_example
from driftgate.demo.tickets import ALL_QUEUES, FOLLOW_UP_PREFIX, extract_queue
from retrain.adapter_task import load_golden, load_task
from retrain.base_model import LoadedBase, load_base
from retrain.dataset import CuratedDataset, curate
from retrain.evaluate import VllmEngine, evaluate_model
from retrain.examples import ChatExample
from retrain.gate import decide
from retrain.job import curation_config, train_config
from retrain.metrics_task import build_metric
from retrain.registry import Registry
from retrain.settings import RetrainSettings
from retrain.training import Progress, default_threads, train_lora

ADAPTER = "support"
#: The new product's queue (the last of the demo's queues).
NEW_QUEUE = ALL_QUEUES[-1]
DEMO_SEED = 7


def demo_retrain_settings(**overrides: Any) -> RetrainSettings:
    """The retrain settings ``make demo`` runs with (its profile over the defaults)."""
    env = {k.removeprefix("DRIFTGATE_RETRAIN_").lower(): v for k, v in DEMO_ENV.items()}
    fields = RetrainSettings.model_fields
    values = {k: v for k, v in env.items() if k in fields}
    return RetrainSettings(**{**values, **overrides})


@dataclass
class Bench:
    """What every trial shares: settings, registry (task, golden set, v1), base model,
    engine client, the window and its embeddings."""

    settings: RetrainSettings
    registry: Registry
    v1_path: Path
    base: LoadedBase
    generator: RecordedServing
    window: Window
    heldout: list[ServedRow]
    stable_accuracy: float
    embeddings: np.ndarray
    centroid: np.ndarray
    work_dir: Path
    budget: int

    @classmethod
    def open(
        cls,
        engine_url: str,
        v1_dir: Path,
        window: Window,
        heldout: list[ServedRow],
        stable_accuracy: float,
        work_dir: Path,
        budget: int,
    ) -> Bench:
        from benchmarks.suite.engine import engine_headers
        from drift.embeddings import MiniLMEmbedder

        settings = demo_retrain_settings(registry_dir=work_dir / "registry")
        register_task(settings.registry_dir, ADAPTER, DEMO_SEED)
        v1_path = register_v1_in_registry(settings.registry_dir, ADAPTER, v1_dir)
        key = engine_headers().get("Authorization", "").removeprefix("Bearer ") or None
        engine = VllmEngine(
            engine_url,
            max_tokens=settings.eval_max_tokens,
            concurrency=settings.eval_concurrency,
            timeout_s=settings.eval_timeout_s,
            api_key=key,
        )
        # The gate asks v1 for the golden set's answers (traffic's are recorded).
        engine.load_lora(lora_name(ADAPTER, 1), v1_path)
        t0 = time.monotonic()
        vectors = MiniLMEmbedder().encode([r.text for r in window.rows])
        centroid = vectors[: window.shift_index].mean(axis=0)
        log(f"embedded {len(vectors)} prompts in {time.monotonic() - t0:.0f} s")
        return cls(
            settings=settings,
            registry=Registry(settings.registry_dir),
            v1_path=v1_path,
            base=load_base(settings.base_model_dir, device=settings.device),
            generator=RecordedServing(engine, lora_name(ADAPTER, 1), window),
            window=window,
            heldout=heldout,
            stable_accuracy=stable_accuracy,
            embeddings=vectors,
            centroid=centroid,
            work_dir=work_dir,
            budget=budget,
        )


class RecordedServing:
    """The gate's generator: the candidate through vLLM; v1, which answers greedily and
    deterministically, from its recorded answers (a traffic example's answer is the one
    recorded for its request) or from its first vLLM answer (the golden set)."""

    beside_training = True

    def __init__(self, engine: VllmEngine, serving: str, window: Window) -> None:
        self.engine = engine
        self.serving = serving
        self.window = window
        self._golden: dict[str, str] = {}

    def load_lora(self, name: str, path: Path) -> None:
        self.engine.load_lora(name, path)

    def unload_lora(self, name: str) -> None:
        self.engine.unload_lora(name)

    def generate(self, model: str, examples: Sequence[ChatExample]) -> list[str]:
        if model != self.serving:
            return self.engine.generate(model, examples)
        todo = [e for e in examples if e.request_id is None and e.prompt not in self._golden]
        for e, a in zip(todo, self.engine.generate(model, todo), strict=True):
            self._golden[e.prompt] = a
        return [
            self._golden[e.prompt]
            if e.request_id is None
            else self.window.rows[int(e.request_id.split("-")[1])].answer
            for e in examples
        ]


def log(msg: str) -> None:
    print(f"[loop {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def accuracy(answers: list[str], rows: list[ServedRow]) -> float:
    return sum(extract_queue(a) == r.queue for a, r in zip(answers, rows, strict=True)) / len(rows)


def curated(bench: Bench, seed: int, strategy: str) -> tuple[Draw, CuratedDataset]:
    """The seed's draw for ``strategy`` and what the job's curation makes of it."""
    s = bench.settings
    d = draw(
        bench.window,
        strategy,
        seed,
        budget=bench.budget,
        embeddings=bench.embeddings,
        centroid=bench.centroid,
    )
    task = load_task(bench.registry, ADAPTER)
    golden = load_golden(bench.registry, ADAPTER)
    cfg = curation_config(s, task)
    return d, curate(d.records, cfg, golden=golden, drift_start=bench.window.drift_start)


def _draw_fields(seed: int, strategy: str, d: Draw, data: CuratedDataset) -> dict[str, Any]:
    """What a seed's draw gave, in every row (coverage and trial)."""
    return {
        "seed": seed,
        "strategy": strategy,
        "feedback": d.feedback,
        "labels": d.labels,
        "labelled_nova": d.labelled_nova,
        "labelled_v1_wrong": d.labelled_v1_wrong,
        "train_examples": len(data.train),
    }


def coverage(bench: Bench, seed: int, strategy: str) -> dict[str, Any]:
    """What the draw gives the training set, without training: examples from the drifted
    window, of the new product, and how many of its ticket templates (topic and phrasing)
    they cover."""
    d, data = curated(bench, seed, strategy)
    rows = bench.window.rows
    drifted = [rows[i] for i in _indices(data.train) if i >= bench.window.shift_index]
    nova = [r for r in drifted if r.queue == NEW_QUEUE]
    all_nova = {template(r.text) for r in rows if r.queue == NEW_QUEUE}
    return {
        **_draw_fields(seed, strategy, d, data),
        "train_drifted": len(drifted),
        "train_nova": len(nova),
        "nova_templates": len({template(r.text) for r in nova}),
        "nova_templates_in_window": len(all_nova),
    }


def _indices(examples: Sequence[ChatExample]) -> list[int]:
    return [int(e.request_id.split("-")[1]) for e in examples if e.request_id is not None]


def template(text: str) -> str:
    """A ticket's topic and phrasing: its text without the follow-up prefix and order."""
    text = text.removeprefix(FOLLOW_UP_PREFIX)
    return re.sub(r" Order \d+\.$", "", text).lower()


def run_trial(bench: Bench, seed: int, strategy: str) -> dict[str, Any]:
    """One (seed, strategy): the job's curation, training and gate; then recovery."""
    t0 = time.monotonic()
    s = bench.settings
    d, data = curated(bench, seed, strategy)
    task = load_task(bench.registry, ADAPTER)
    golden = load_golden(bench.registry, ADAPTER)
    drifted_train = sum(i >= bench.window.shift_index for i in _indices(data.train))
    log(
        f"seed {seed} {strategy}: {d.feedback} feedback, {d.labels} labels "
        f"({d.labelled_nova} Nova, {d.labelled_v1_wrong} v1 wrong) -> {len(data.train)} train "
        f"({drifted_train} drifted), {len(data.validation)} validation"
    )
    out_dir = bench.work_dir / f"seed{seed}-{strategy}"
    shutil.rmtree(out_dir, ignore_errors=True)
    tcfg = train_config(s.model_copy(update={"seed": seed}))

    def progress(p: Progress) -> None:
        if p.epoch_done:
            log(f"seed {seed} {strategy}: epoch {p.epoch}: {p.losses()}")

    t_train = time.monotonic()
    result = train_lora(
        bench.base,
        data.train,
        data.validation,
        out_dir,
        tcfg,
        init_adapter_dir=bench.v1_path,
        progress=progress,
    )
    train_s = time.monotonic() - t_train
    metric = build_metric(task.metric)
    name = f"loopbench-s{seed}-{strategy}"
    t_eval = time.monotonic()
    gen = bench.generator
    gen.load_lora(name, out_dir)
    try:
        cand, _ = evaluate_model(gen, name, data.validation, golden, metric)
        serv, _ = evaluate_model(gen, lora_name(ADAPTER, 1), data.validation, golden, metric)
        held = [ticket_example(r.ticket()) for r in bench.heldout]
        answers = gen.generate(name, held)
    finally:
        gen.unload_lora(name)
    decision = decide(cand, serv, task.policy(require_golden=True))
    heldout_acc = accuracy(answers, bench.heldout)
    drifted = [bench.window.rows[i] for i in bench.window.drifted()]
    v1_drifted = accuracy([r.answer for r in drifted], drifted)
    row = {
        **_draw_fields(seed, strategy, d, data),
        "train_drifted": drifted_train,
        "validation_examples": len(data.validation),
        "curation": data.stats,
        "best_epoch": result.best_epoch,
        "epochs": len(result.curve),
        "stopped_early": result.stopped_early,
        "gate_promote": decision.promote,
        "gate_reasons": decision.reasons,
        "heldout_n": len(bench.heldout),
        "heldout_accuracy": heldout_acc,
        "stable_accuracy_v1": bench.stable_accuracy,
        "recovery": heldout_acc / bench.stable_accuracy,
        "recovery_after_gate": (heldout_acc if decision.promote else v1_drifted)
        / bench.stable_accuracy,
        "train_s": round(train_s, 1),
        "eval_s": round(time.monotonic() - t_eval, 1),
        "wall_s": round(time.monotonic() - t0, 1),
        "threads": tcfg.num_threads or default_threads(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    shutil.rmtree(out_dir, ignore_errors=True)
    log(
        f"seed {seed} {strategy}: held-out drifted {heldout_acc:.1%} -> recovery "
        f"{row['recovery']:.1%}; gate {'promotes' if decision.promote else 'rejects'}; "
        f"train {train_s:.0f} s, all {row['wall_s']:.0f} s"
    )
    return row
