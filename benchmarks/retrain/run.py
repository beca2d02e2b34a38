"""Retrain benchmark: wall time and peak memory for 100 / 300 / 1,000 curated examples.

Each size runs in its own process (so peak RSS is that size's alone): build traffic
records from the demo ticket generator (positive feedback), curate them, train a LoRA on
the real base model, and score the candidate and the base model on the held-out split with
transformers greedy decoding (the production gate uses vLLM; this keeps the benchmark free
of an engine). Prints one JSON line per size and appends a Markdown row to stdout.

    .venv/bin/python benchmarks/retrain/run.py --sizes 100 300 1000 --epochs 2
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


def one(size: int, epochs: int, targets: str, eval_n: int) -> dict[str, object]:
    from driftgate.demo.tickets import SYSTEM_PROMPT, TicketGenerator
    from driftgate.events import FeedbackEvent
    from driftgate.paths import default_model_dir
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
        "load_avg_start": round(load0, 2),
        "load_avg_end": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--targets", choices=["attn", "all"], default="attn")
    p.add_argument("--eval-n", type=int, default=20)
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.epochs, args.targets, args.eval_n)), flush=True)
        return 0
    for size in args.sizes:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                str(size),
                "--epochs",
                str(args.epochs),
                "--targets",
                args.targets,
                "--eval-n",
                str(args.eval_n),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
        if out.returncode != 0 or not line:
            print(json.dumps({"size": size, "error": out.stderr[-2000:]}), flush=True)
            continue
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
