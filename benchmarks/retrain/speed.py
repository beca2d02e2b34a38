"""Where a demo-sized retrain spends its time, and the padded path against the shared-prefix
path on the same data, seed and start (the demo's cached v1).

Both paths train with the demo profile (lr 0.002, batch 8, 3-6 epochs, patience 2) on the
same drifted + original labelled tickets; each phase is timed in wall and CPU seconds (CPU
seconds of this one-threaded process stay close to the work done when other processes
share the cores; wall seconds do not). Each trained adapter, and v1, is then scored by
label accuracy on held-out drifted tickets with batched transformers greedy decoding.

    .venv/bin/python -m benchmarks.retrain.speed --json benchmarks/retrain/speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEMO_CACHE = Path.home() / ".cache" / "driftgate" / "demo-cache"


@dataclass
class Clock:
    """Wall and CPU seconds since the last :meth:`lap`."""

    wall: float = field(default_factory=time.perf_counter)
    cpu: float = field(default_factory=time.process_time)

    def lap(self) -> dict[str, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        out = {"wall_s": round(wall - self.wall, 2), "cpu_s": round(cpu - self.cpu, 2)}
        self.wall, self.cpu = wall, cpu
        return out


def newest_v1() -> Path:
    """The demo's most recently trained v1 (the cache key moves with the training config)."""
    dirs = [d for d in DEMO_CACHE.glob("support-v1-*") if (d / "driftgate-train.json").is_file()]
    if not dirs:
        raise SystemExit(f"no cached v1 under {DEMO_CACHE}: run `make demo` once")
    return max(dirs, key=lambda d: d.stat().st_mtime)


def labelled(drifted: int, original: int, seed: int) -> tuple[list[Any], list[Any]]:
    """(train, validation): a fifth held out, as curation does by default."""
    from driftgate.demo.ticket_examples import ticket_examples
    from driftgate.demo.tickets import TicketGenerator

    tickets = TicketGenerator(seed=seed).batch(drifted, shifted=True)
    tickets += TicketGenerator(seed=seed + 1).batch(original, shifted=False)
    random.Random(seed).shuffle(tickets)
    examples = ticket_examples(tickets)
    n_val = max(4, len(examples) // 5)
    return examples[n_val:], examples[:n_val]


def greedy_labels(loaded: Any, examples: Sequence[Any], adapter: Path | None, bs: int) -> list[str]:
    """Greedy answers (at most 6 new tokens), left-padded batches."""
    import torch
    from peft import PeftModel

    from retrain.encoding import prompt_ids

    model: Any = loaded.model
    if adapter is not None:
        model = PeftModel.from_pretrained(loaded.model, str(adapter))
    model.eval()
    out: list[str] = []
    try:
        with torch.no_grad():
            for i in range(0, len(examples), bs):
                rows = [prompt_ids(loaded.tokenizer, e) for e in examples[i : i + bs]]
                width = max(len(r) for r in rows)
                ids = torch.full((len(rows), width), loaded.pad_token_id, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for j, r in enumerate(rows):
                    ids[j, width - len(r) :] = torch.tensor(r)
                    mask[j, width - len(r) :] = 1
                gen = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=6,
                    do_sample=False,
                    pad_token_id=loaded.pad_token_id,
                )
                out += loaded.tokenizer.batch_decode(gen[:, width:], skip_special_tokens=True)
    finally:
        if adapter is not None:
            loaded.model = model.unload()
            loaded.model.eval()
    return out


def accuracy(loaded: Any, tickets: Sequence[Any], adapter: Path | None) -> dict[str, Any]:
    from driftgate.demo.ticket_examples import ticket_examples
    from driftgate.demo.tickets import extract_queue

    clock = Clock()
    answers = greedy_labels(loaded, ticket_examples(tickets), adapter, bs=24)
    right = [extract_queue(a) == t.queue for a, t in zip(answers, tickets, strict=True)]
    nova = [r for r, t in zip(right, tickets, strict=True) if t.queue == "Q-NOVA"]
    return {
        "accuracy": round(sum(right) / len(right), 4),
        "n": len(right),
        "new_product_accuracy": round(sum(nova) / max(1, len(nova)), 4),
        "new_product_n": len(nova),
        **clock.lap(),
    }


def train_timed(
    loaded: Any, train: list[Any], val: list[Any], v1: Path, out: Path, cfg: Any
) -> dict[str, Any]:
    """Train once; per epoch the optimizer steps' and the validation pass's seconds."""
    from retrain.training import Progress, train_lora

    marks: list[tuple[Progress, float, float, float]] = []

    def progress(p: Progress) -> None:
        marks.append((p, time.perf_counter(), time.process_time(), os.getloadavg()[0]))

    clock = Clock()
    start = (clock.wall, clock.cpu)
    res = train_lora(loaded, train, val, out, cfg, init_adapter_dir=v1, progress=progress)
    total = clock.lap()
    epochs, prev = [], start
    for i, (p, wall, cpu, load) in enumerate(marks):
        if not p.epoch_done:
            continue
        last_step = marks[i - 1]
        epochs.append(
            {
                "epoch": p.epoch,
                "steps_wall_s": round(last_step[1] - prev[0], 2),
                "steps_cpu_s": round(last_step[2] - prev[1], 2),
                "val_wall_s": round(wall - last_step[1], 2),
                "val_cpu_s": round(cpu - last_step[2], 2),
                "train_loss": round(p.train_loss, 4),
                "val_loss": None if p.val_loss is None else round(p.val_loss, 4),
                "val_exact": p.val_exact,
                "load_avg_1m": round(load, 2),
            }
        )
        prev = (wall, cpu)
    first_step = next(m for m in marks if not m[0].epoch_done)
    return {
        "share_prefix": cfg.share_prefix,
        "total": total,
        # From the call to the first step's end, minus that step: tokenizing and wrapping.
        "setup_and_first_step_wall_s": round(first_step[1] - start[0], 2),
        "epochs": epochs,
        "save_wall_s": round(start[0] + total["wall_s"] - prev[0], 2),
        "best_epoch": res.best_epoch,
        "epochs_run": len(res.curve),
        "steps": res.steps,
        "stopped_early": res.stopped_early,
        "train_examples": res.train_examples,
        "validation_examples": res.validation_examples,
    }


def padding_profile(loaded: Any, train: list[Any], bs: int, seed: int) -> dict[str, Any]:
    """Token positions one epoch runs through the decoder: padded batch vs shared prefix."""
    from retrain.encoding import encode_all
    from retrain.loss import batches
    from retrain.shared_prefix import shared_prefix_len

    enc, _ = encode_all(loaded.tokenizer, train, 512)
    real = padded = shared = completion = 0
    for batch in batches(enc, bs, random.Random(seed)):
        width = max(len(e.input_ids) for e in batch)
        prefix = shared_prefix_len(batch) if len(batch) > 1 else 0
        real += sum(len(e.input_ids) for e in batch)
        completion += sum(e.n_completion for e in batch)
        padded += width * len(batch)
        shared += prefix + (width - prefix) * len(batch)
    return {
        "tokens_real": real,
        "positions_padded": padded,
        "positions_shared_prefix": shared,
        "completion_tokens": completion,
        "mean_example_tokens": round(real / len(enc), 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--drifted", type=int, default=60)
    p.add_argument("--original", type=int, default=40)
    p.add_argument("--eval", type=int, default=240, help="held-out drifted tickets")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--v1", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    import torch

    from driftgate.core.paths import default_model_dir
    from driftgate.demo.tickets import TicketGenerator
    from retrain.base_model import load_base
    from retrain.training import TrainConfig

    torch.set_num_threads(args.threads)
    v1 = args.v1 or newest_v1()
    doc: dict[str, Any] = {
        "argv": argv,
        "v1": str(v1),
        "cpus": os.cpu_count(),
        "threads": args.threads,
        "load_avg_start": os.getloadavg(),
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    clock = Clock()
    loaded = load_base(default_model_dir())
    doc["load_base"] = clock.lap()
    train, val = labelled(args.drifted, args.original, args.seed)
    doc["data"] = {"drifted": args.drifted, "original": args.original, "seed": args.seed}
    doc["data"] |= {"train": len(train), "validation": len(val)}
    doc["positions"] = padding_profile(loaded, train, 8, args.seed)
    held_out = TicketGenerator(seed=args.seed + 5000).batch(args.eval, shifted=True)

    def config(share: bool) -> TrainConfig:
        return TrainConfig(
            learning_rate=0.002,
            batch_size=8,
            max_epochs=6,
            min_epochs=3,
            patience=2,
            seed=args.seed,
            num_threads=args.threads,
            share_prefix=share,
        )

    with tempfile.TemporaryDirectory(prefix="speed-") as tmp:
        results: dict[str, Any] = {}
        for name, share in (("padded", False), ("shared_prefix", True)):
            out = Path(tmp) / name
            results[name] = train_timed(loaded, train, val, v1, out, config(share))
            print(name, json.dumps(results[name]["total"]), flush=True)
        doc["accuracy"] = {"v1": accuracy(loaded, held_out, v1)}
        for name in results:
            doc["accuracy"][name] = accuracy(loaded, held_out, Path(tmp) / name)
            print(name, json.dumps(doc["accuracy"][name]), flush=True)
    doc["runs"] = results
    old, new = results["padded"]["total"], results["shared_prefix"]["total"]
    doc["ratios"] = {
        "train_wall": round(old["wall_s"] / new["wall_s"], 2),
        "train_cpu": round(old["cpu_s"] / new["cpu_s"], 2),
    }
    doc["load_avg_end"] = os.getloadavg()
    text = json.dumps(doc, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
