"""Retrain benchmark: wall time and peak memory for 100 / 300 / 1,000 curated examples.

Each size runs in its own process (so peak RSS is that size's alone): build traffic
records from the demo ticket generator (positive feedback), curate them, train a LoRA on
the real base model, and score the candidate and the base model on the held-out split with
transformers greedy decoding (the production gate uses vLLM; this keeps the benchmark free
of an engine). Prints one JSON line per size and writes the suite's result document.

    .venv/bin/python -m benchmarks.retrain.run [--sizes 100 300 1000] [--epochs 2] [--json PATH]
    .venv/bin/python -m benchmarks.retrain.run --quick   # 32 examples, 2 steps: still works?
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.retrain.report import details_md, figures
from benchmarks.suite.cli import ROOT, AreaRun, area_parser


def one(
    size: int, epochs: int, targets: str, eval_n: int, max_steps: int | None
) -> dict[str, object]:
    from driftgate.core.events import FeedbackEvent
    from driftgate.core.paths import default_model_dir
    from driftgate.demo.tickets import SYSTEM_PROMPT, TicketGenerator
    from retrain.base_model import load_base
    from retrain.dataset import CurationConfig, TrafficRecord, curate
    from retrain.evaluate import score_split
    from retrain.gate import EvalReport, decide
    from retrain.local_generate import LocalGenerator
    from retrain.metrics_task import MetricSpec, build_metric
    from retrain.training import ALL_LINEAR_TARGETS, DEFAULT_TARGETS, TrainConfig, train_lora

    t0, c0 = time.perf_counter(), time.process_time()
    load0 = os.getloadavg()[0]
    gen = TicketGenerator(seed=size)
    tickets = gen.batch(int(size * 1.3), shifted=False)  # duplicates get removed by curation
    records = [
        TrafficRecord(
            request_id=f"r{i}",
            ts=1000.0 + i,
            prompt_text=t.text,
            completion_text=t.queue,
            tenant="b",
            feedback=(FeedbackEvent(request_id=f"r{i}", tenant="b", score=1.0),),
        )
        for i, t in enumerate(tickets)
    ]
    data = curate(records, CurationConfig(max_examples=size, default_system=SYSTEM_PROMPT))
    t_curate = time.perf_counter() - t0
    base = load_base(default_model_dir())
    t_load = time.perf_counter() - t0 - t_curate
    cfg = TrainConfig(
        max_epochs=epochs,
        batch_size=8,
        max_steps=max_steps,
        target_modules=ALL_LINEAR_TARGETS if targets == "all" else DEFAULT_TARGETS,
    )
    with tempfile.TemporaryDirectory() as tmp:
        res = train_lora(base, data.train, data.validation, Path(tmp) / "a", cfg)
        t_train = res.wall_s
        te = time.perf_counter()
        gen_ = LocalGenerator(base, "base", max_new_tokens=8)
        gen_.load_lora("cand", Path(tmp) / "a")
        held = data.validation[:eval_n]
        metric = build_metric(MetricSpec(kind="exact_match"))
        cand, _ = score_split(gen_, "cand", held, metric)
        serv, _ = score_split(gen_, "base", held, metric)
        decision = decide(EvalReport(cand), EvalReport(serv))
        t_eval = time.perf_counter() - te
    return {
        "size": size,
        "train": len(data.train),
        "validation": len(data.validation),
        "epochs_run": len(res.curve),
        "steps": res.steps,
        "targets": targets,
        "curate_s": round(t_curate, 2),
        "load_s": round(t_load, 2),
        "train_s": round(t_train, 1),
        "eval_s": round(t_eval, 1),
        "wall_s": round(time.perf_counter() - t0, 1),
        "cpu_s": round(time.process_time() - c0, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "candidate_exact": cand.task,
        "base_exact": serv.task,
        "promote": decision.promote,
        "val_curve": [round(r.val_loss or 0, 3) for r in res.curve],
        "val_exact_curve": [r.val_exact for r in res.curve],
        "load_avg_start": round(load0, 2),
        "load_avg_end": round(os.getloadavg()[0], 2),
    }


def run_size(size: int, args: argparse.Namespace) -> dict[str, Any]:
    """One size in a fresh process, so its peak RSS is its own."""
    argv = [sys.executable, "-m", "benchmarks.retrain.run", "--one", str(size)]
    argv += ["--epochs", str(args.epochs), "--targets", args.targets, "--eval-n", str(args.eval_n)]
    if args.max_steps is not None:
        argv += ["--max-steps", str(args.max_steps)]
    out = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if out.returncode != 0 or not line:
        return {"size": size, "error": out.stderr[-2000:] or f"exit {out.returncode}"}
    row: dict[str, Any] = json.loads(line)
    return row


def main(argv: list[str] | None = None) -> int:
    p = area_parser(__doc__)
    p.add_argument("--sizes", type=int, nargs="+")
    p.add_argument("--epochs", type=int)
    p.add_argument("--targets", choices=["attn", "all"], default="attn")
    p.add_argument("--eval-n", type=int)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    # quick: a tiny dataset, one epoch, two optimizer steps, two held-out examples
    args.sizes = args.sizes or ([32] if args.quick else [100, 300, 1000])
    args.epochs = args.epochs or (1 if args.quick else 2)
    args.eval_n = args.eval_n or (2 if args.quick else 20)
    if args.quick and args.max_steps is None:
        args.max_steps = 2
    if args.one:
        row = one(args.one, args.epochs, args.targets, args.eval_n, args.max_steps)
        print(json.dumps(row), flush=True)
        return 0
    run = AreaRun.start("retrain", args, argv)
    rows = []
    for size in args.sizes:
        rows.append(run_size(size, args))
        print(json.dumps(rows[-1]), flush=True)
    run.write(
        title="Retrain: raw records -> curated data -> LoRA -> gate, by dataset size (CPU)",
        figures=figures(rows),
        details_md=details_md(rows),
        extra={"rows": rows},
    )
    print(f"recorded in {run.out}", flush=True)
    return 1 if any(r.get("error") for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
