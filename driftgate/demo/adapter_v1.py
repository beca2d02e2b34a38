"""Adapter v1 of the demo: trained once on the original ticket distribution, then cached."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from driftgate.demo.ticket_examples import ticket_examples
from driftgate.demo.tickets import TicketGenerator

if TYPE_CHECKING:
    from retrain.examples import ChatExample
    from retrain.training import Progress


def v1_training_examples(n: int, seed: int) -> list[ChatExample]:
    """Original tickets as the app serves them (about one in five a follow-up)."""
    return ticket_examples(TicketGenerator(seed=seed).batch(n, shifted=False))


def _print_progress(p: Progress) -> None:
    if p.epoch_done:
        print(f"[demo] v1 epoch {p.epoch}: {p.losses()}", flush=True)
    elif p.step % 5 == 0:
        print(
            f"[demo] v1 training: step {p.step}/{p.total_steps}, loss {p.train_loss:.4f}",
            flush=True,
        )


def ensure_v1(
    cache_dir: Path, model_dir: Path, n: int, seed: int, *, epochs: int = 3
) -> tuple[Path, dict[str, object]]:
    """Return the directory of v1 (training it on first use) and its training summary."""
    from retrain.training import TrainConfig, train_lora

    examples = v1_training_examples(n, seed)
    config = TrainConfig(
        rank=8, batch_size=8, max_epochs=epochs, patience=1, learning_rate=2e-3, seed=seed
    )
    key = hashlib.sha256(
        json.dumps(
            [
                [e.messages(with_completion=True) for e in examples],
                config.to_dict(),
                str(model_dir),
            ],
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    target = cache_dir / f"support-v1-{key}"
    summary_path = target / "driftgate-train.json"
    if summary_path.exists():
        return target, {**json.loads(summary_path.read_text()), "cached": True}
    n_val = max(8, len(examples) // 6)
    tmp = cache_dir / f".support-v1-{key}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    result = train_lora(
        model_dir, examples[n_val:], examples[:n_val], tmp, config, progress=_print_progress
    )
    summary = {
        "examples": len(examples),
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "wall_s": round(result.wall_s, 1),
        "curve": [
            {
                "epoch": e.epoch,
                "train_loss": e.train_loss,
                "val_loss": e.val_loss,
                "val_exact": e.val_exact,
            }
            for e in result.curve
        ],
    }
    (tmp / "driftgate-train.json").write_text(json.dumps(summary, indent=2))
    tmp.rename(target)
    return target, {**summary, "cached": False}
