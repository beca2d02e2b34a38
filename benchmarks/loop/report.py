"""The loop benchmark's figures, plot and RESULTS.md from its trials (pure but the plot)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.loop.replay import DIAGNOSTIC_STRATEGIES, STRATEGIES
from benchmarks.suite.contract import figure

GOAL = 0.95
LABELS = {
    "selection": "(a) budget by the review queue's selection",
    "random": "(b) same budget, random drifted requests",
    "feedback80": "(c) today's 80% feedback, no labels",
    "nearest": "(a') diagnostic: (a) from the nearest reference prompt, not the centroid",
}


def by_strategy(trials: Sequence[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {s: {} for s in STRATEGIES}
    for t in trials:
        out[t["strategy"]][int(t["seed"])] = t
    return out


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def summary(trials: Sequence[dict[str, Any]]) -> dict[str, Any]:
    table = by_strategy(trials)
    out: dict[str, Any] = {}
    for s, rows in table.items():
        rec = [r["recovery"] for r in rows.values()]
        out[s] = {
            "seeds": sorted(rows),
            "median_recovery": _median(rec),
            "seeds_at_goal": sum(x >= GOAL for x in rec),
            "median_labels": _median([r["labels"] for r in rows.values()]),
            "median_feedback": _median([r["feedback"] for r in rows.values()]),
            "promoted": sum(r["gate_promote"] for r in rows.values()),
        }
    a, b = table["selection"], table["random"]
    paired = sorted(set(a) & set(b))
    out["paired_seeds"] = paired
    out["median_a_minus_b"] = _median([a[k]["recovery"] - b[k]["recovery"] for k in paired])
    return out


def figures(trials: Sequence[dict[str, Any]], seeds_wanted: int) -> list[dict[str, Any]]:
    s = summary(trials)
    a, b, c = s["selection"], s["random"], s["feedback80"]
    n_a = len(a["seeds"])
    need = seeds_wanted - 1
    figs = [
        figure(
            "loop (a) selection: seeds recovering >= 95% of pre-drift",
            a["seeds_at_goal"],
            f"of {n_a} seeds",
            target=f">= {need} of {seeds_wanted} seeds",
            met=a["seeds_at_goal"] >= need if n_a >= seeds_wanted else False,
            note=None
            if n_a >= seeds_wanted
            else f"only {n_a} of {seeds_wanted} seeds ran (seeds {a['seeds']})",
        ),
        figure(
            "loop (a) selection: median recovery",
            _round(a["median_recovery"]),
            "held-out drifted acc / stable acc",
            reference="(b) same budget, random",
            reference_value=_round(b["median_recovery"]),
            target=">= (b) on the median",
            met=a["median_recovery"] is not None
            and b["median_recovery"] is not None
            and a["median_recovery"] >= b["median_recovery"],
            note=None
            if a["median_recovery"] is not None and b["median_recovery"] is not None
            else "(a) or (b) has no seed run",
        ),
        figure(
            "loop (c) 80% feedback: median recovery",
            _round(c["median_recovery"]),
            "held-out drifted acc / stable acc",
            note=None if c["median_recovery"] is not None else "no seed ran",
        ),
    ]
    return figs


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def trials_table(trials: Sequence[dict[str, Any]]) -> str:
    table = by_strategy(trials)
    seeds = sorted({int(t["seed"]) for t in trials})
    head = "| seed | " + " | ".join(LABELS[s] for s in STRATEGIES) + " |"
    lines = [head, "|---|" + "---|" * len(STRATEGIES)]
    for k in seeds:
        cells = []
        for s in STRATEGIES:
            r = table[s].get(k)
            if r is None:
                cells.append("not run")
                continue
            gate = "promoted" if r["gate_promote"] else "rejected"
            cells.append(
                f"{_pct(r['recovery'])} ({r['heldout_accuracy']:.1%} of {r['heldout_n']}; "
                f"{r['feedback']} fb + {r['labels']} labels -> {r['train_drifted']}/"
                f"{r['train_examples']} drifted train, "
                f"{r.get('curation', {}).get('kept_anchor', 0)} anchors; "
                f"best epoch {r['best_epoch']}/{r['epochs']}; {gate}; train {r['train_s']:.0f} s)"
            )
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def details(
    trials: Sequence[dict[str, Any]],
    meta: dict[str, Any],
    coverage: Sequence[dict[str, Any]] = (),
) -> str:
    s = summary(trials)
    lines = [
        "Recovery = the trained candidate's accuracy on "
        f"{meta['heldout_n']} held-out drifted tickets (vLLM, candidate loaded, greedy) / "
        f"v1's accuracy on the {meta['stable_n']} recorded stable requests "
        f"({meta['stable_accuracy']:.1%}); v1 itself: {meta['v1_drifted_accuracy']:.1%} on the "
        f"{meta['drifted']} recorded drifted requests. The replayed window: the last "
        f"{meta['pre_shift']} stable requests, then the {meta['drifted']} drifted ones; "
        f"budget {meta['budget']} labels for (a) and (b), 5% feedback; (c) 80% feedback. "
        "Goal: >= 95%.",
        "",
        "| strategy | seeds run | median recovery | seeds >= 95% | gate promoted | "
        "median feedback + labels |",
        "|---|---|---|---|---|---|",
    ]
    for st in STRATEGIES:
        x = s[st]
        lines.append(
            f"| {LABELS[st]} | {x['seeds']} | {_pct(x['median_recovery'])} | "
            f"{x['seeds_at_goal']} of {len(x['seeds'])} | {x['promoted']} | "
            f"{x['median_feedback']} + {x['median_labels']} |"
        )
    lines += [
        "",
        f"Median of (a) - (b) over paired seeds {s['paired_seeds']}: "
        f"{_pct(s['median_a_minus_b'])}.",
        "",
        trials_table(trials),
        "",
        coverage_md(coverage),
    ]
    return "\n".join(lines)


def coverage_md(rows: Sequence[dict[str, Any]]) -> str:
    """Per strategy over every seed: what its draw gives the training set (no training)."""
    if not rows:
        return ""
    seeds = sorted({int(r["seed"]) for r in rows})
    lines = [
        f"What each strategy's draw gives the curated training set, over seeds {seeds} "
        "(computed for every seed, no training): medians, and the new product's ticket "
        f"templates (topic and phrasing) covered, of {rows[0]['nova_templates_in_window']} in "
        "the window.",
        "",
        "| strategy | feedback | labels | labels on the new product | labels where v1 was "
        "wrong | train examples | from the drifted window | of the new product | its "
        "templates covered (min-max) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for st in (*STRATEGIES, *DIAGNOSTIC_STRATEGIES):
        xs = [r for r in rows if r["strategy"] == st]
        if not xs:
            continue

        def med(key: str, xs: list[dict[str, Any]] = xs) -> str:
            return f"{statistics.median(r[key] for r in xs):g}"

        tpl = [r["nova_templates"] for r in xs]
        lines.append(
            f"| {LABELS[st]} | {med('feedback')} | {med('labels')} | {med('labelled_nova')} | "
            f"{med('labelled_v1_wrong')} | {med('train_examples')} | {med('train_drifted')} | "
            f"{med('train_nova')} | {med('nova_templates')} ({min(tpl)}-{max(tpl)}) |"
        )
    return "\n".join(lines)


def plot(trials: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = by_strategy(trials)
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = {"selection": "tab:blue", "random": "tab:orange", "feedback80": "tab:green"}
    for j, st in enumerate(STRATEGIES):
        rows = table[st]
        if not rows:
            continue
        xs = [k + (j - 1) * 0.25 for k in sorted(rows)]
        ys = [100 * rows[k]["recovery"] for k in sorted(rows)]
        ax.bar(xs, ys, width=0.25, label=LABELS[st], color=colors[st])
    ax.set_xticks(sorted({int(t["seed"]) for t in trials}))
    ax.axhline(100 * GOAL, color="k", linestyle="--", linewidth=1, label="goal 95%")
    ax.set_xlabel("seed (feedback draw, labels, training seed)")
    ax.set_ylabel("recovery (% of pre-drift accuracy)")
    ax.set_ylim(50, 115)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Retrain-gate part of the loop on one recorded drifted window")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
