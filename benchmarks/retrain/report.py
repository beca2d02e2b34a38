"""The retrain benchmark's contract figures and Markdown table, from its per-size rows.

A row is what ``benchmarks/retrain/run.py --one SIZE`` prints (or ``{"size", "error"}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.suite.contract import figure

#: Issue "Retrain": raw records -> a gated adapter within 6 minutes for 300 examples.
TARGET_SIZE = 300
TARGET_WALL_S = 360.0


def figures(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in rows:
        size = r["size"]
        error = r.get("error")
        note: str | None = None
        if error:
            text = str(error)
            note = text if text.startswith("not run") else f"failed: {text[-200:]}"
        wall = None if error else float(r["wall_s"])
        has_target = size == TARGET_SIZE
        out.append(
            figure(
                f"wall time, {size:,} examples (curate + load + train + evaluate)",
                wall,
                "s",
                target=f"<= {TARGET_WALL_S:g} s" if has_target else None,
                met=(wall is not None and wall <= TARGET_WALL_S) if has_target else None,
                note=note,
            )
        )
        out.append(
            figure(
                f"peak memory (RSS), {size:,} examples",
                None if error else float(r["peak_rss_mb"]),
                "MiB",
                note=note,
            )
        )
    return out


def details_md(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "Each size in its own process (peak RSS is that size's alone): demo tickets as traffic",
        "records with positive feedback -> `retrain.dataset.curate` -> `retrain.training."
        "train_lora` -> exact-match scoring of candidate and base model on held-out examples",
        "(transformers greedy decoding) -> `retrain.gate.decide`.",
        "",
        "| examples | train/val | epochs | steps | model load s | train s | eval s | wall s "
        "| CPU s | peak RSS MiB | candidate / base exact | promoted | load avg start/end |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['size']:,} | failed: {str(r['error'])[-120:]!r} |" + " |" * 11)
            continue
        lines.append(
            f"| {r['size']:,} | {r['train']}/{r['validation']} | {r['epochs_run']} | {r['steps']} "
            f"| {r['load_s']} | {r['train_s']} | {r['eval_s']} | {r['wall_s']} | {r['cpu_s']} "
            f"| {r['peak_rss_mb']} | {r['candidate_exact']} / {r['base_exact']} "
            f"| {'yes' if r['promote'] else 'no'} | {r['load_avg_start']} / {r['load_avg_end']} |"
        )
    return "\n".join(lines)
