"""The demo's report: a Markdown summary and a PNG plot of the run, from its own numbers."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from driftgate.demo.report_sample import sample_lines
from driftgate.demo.timeline import Timeline
from driftgate.demo.traffic import Outcome

#: Milestones drawn as vertical lines on the plot.
_MARKED = ("shift", "drift confirmed", "retrain triggered", "canary", "promoted", "rolled back")


def _pct(x: object) -> str:
    return f"{x:.1%}" if isinstance(x, float) else "n/a"


def _rolling_accuracy(
    outcomes: Sequence[Outcome], start: float, window: int = 30
) -> tuple[list[float], list[float]]:
    done = sorted((o for o in outcomes if o.ok), key=lambda o: o.ts)
    xs: list[float] = []
    ys: list[float] = []
    for i in range(len(done)):
        chunk = done[max(0, i - window + 1) : i + 1]
        xs.append(done[i].ts - start)
        ys.append(sum(o.correct for o in chunk) / len(chunk))
    return xs, ys


def plot(path: Path, timeline: Timeline, outcomes: Sequence[Outcome]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    traffic = [o for o in outcomes if o.phase in ("stable", "shifted", "recovered")]
    fig, axes = plt.subplots(3, 1, figsize=(11, 8.5), sharex=True)
    xs, ys = _rolling_accuracy(traffic, timeline.start)
    axes[0].plot(xs, ys, color="tab:blue", label="accuracy (rolling 30 requests)")
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("task accuracy")
    drift = [(s.t, s.drift_score) for s in timeline.samples if s.drift_score is not None]
    if drift:
        axes[1].plot(
            [t for t, _ in drift],
            [d for _, d in drift],
            marker="o",
            color="tab:red",
            label="drift score (max over signals)",
        )
    axes[1].set_ylabel("drift score")
    canary = [(s.t, s.canary_weight or 0.0) for s in timeline.samples]
    if canary:
        axes[2].step(
            [t for t, _ in canary],
            [w for _, w in canary],
            where="post",
            color="tab:green",
            label="canary weight",
        )
    versions = Counter(o.served_by or "?" for o in traffic)
    axes[2].set_ylabel("canary weight")
    axes[2].set_xlabel("seconds since the demo started")
    for ax in axes:
        for m in timeline.milestones:
            if m.kind in _MARKED:
                ax.axvline(m.t, color="grey", linestyle="--", linewidth=0.8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower left", fontsize=8)
        ax.grid(alpha=0.3)
    shown = [m for m in timeline.milestones if m.kind in _MARKED]
    for i, m in enumerate(shown):
        # Milestones often coincide (drift confirmed and retrain triggered): stagger labels.
        axes[0].text(m.t, 0.98 - 0.22 * (i % 3), f" {m.kind}", va="top", fontsize=8)
    fig.suptitle(f"driftgate demo: requests by version {dict(versions)}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def retrain_facts(registry_root: Path, adapter: str, version: int) -> dict[str, Any]:
    """What the retrain job recorded for ``version`` in the registry: data, curve, gate."""
    from retrain.registry import Registry

    meta = Registry(registry_root).read(adapter, version)
    evaluation = meta.evaluation or {}
    training = meta.training
    return {
        "version": version,
        "parent_version": meta.parent_version,
        "train_examples": training.get("train_examples"),
        "validation_examples": training.get("validation_examples"),
        "dataset_stats": meta.dataset.get("stats", {}),
        "tenants": meta.dataset.get("tenants", {}),
        "training_tenants": meta.training_tenants,
        "golden": meta.golden,
        "epochs_run": len(training.get("curve", [])),
        "best_epoch": training.get("best_epoch"),
        "stopped_early": training.get("stopped_early"),
        "train_wall_s": training.get("wall_s"),
        "curve": training.get("curve", []),
        "candidate": evaluation.get("candidate"),
        "serving": evaluation.get("serving"),
        "gate": meta.decision,
        "as_trained": meta.dataset.get("as_trained", []),
    }


def _tenants(counts: object) -> str:
    """``demo-app: 140 examples``; the tenants a training set came from."""
    if not isinstance(counts, dict) or not counts:
        return "n/a"
    return ", ".join(f"{t}: {n} examples" for t, n in counts.items())


def _provenance(stats: object) -> str:
    """``12 client, 38 review, 50 anchors``: kept examples by who labelled them (anchors:
    the serving version's confident pre-drift answers)."""
    if not isinstance(stats, dict):
        return "n/a"
    return (
        f"{stats.get('feedback_client', 0)} client, {stats.get('feedback_review', 0)} review, "
        f"{stats.get('kept_anchor', 0)} anchors"
    )


def _since(timeline: Timeline, later: str, earlier: str) -> str:
    a, b = timeline.first(later), timeline.first(earlier)
    return "-" if a is None or b is None else f"{a.t - b.t:.0f} s"


def _by_signal(timeline: Timeline) -> str:
    """``feedback_score 27 s, prompt_embedding 41 s``: each signal's first confirmation after
    the shift, by the drift service's clock (signals confirmed before it are not drift)."""
    shift = timeline.first("shift")
    confirmed = timeline.facts.get("confirmed_by_signal")
    if shift is None or not isinstance(confirmed, dict) or not confirmed:
        return "-"
    at = timeline.start + shift.t
    after = sorted((ts - at, str(sig)) for sig, ts in confirmed.items() if ts >= at)
    return ", ".join(f"{sig} {delay:.0f} s" for delay, sig in after) or "-"


def labels_spent(facts: dict[str, Any]) -> str:
    """``review 40 of 40 (31 corrections, 9 approvals); client feedback 23 (5% of
    requests)``: the labels the loop cost, by who gave them.

    >>> labels_spent({"review": {"labelled": 3, "budget": 4, "corrected": 2, "approved": 1},
    ...               "feedback_sent": 5, "feedback_share": 0.05})
    'review 3 of 4 (2 corrections, 1 approvals); client feedback 5 (on 5% of requests)'
    """
    client = (
        f"client feedback {facts.get('feedback_sent', 0)} "
        f"(on {_pct(facts.get('feedback_share')).replace('.0%', '%')} of requests)"
    )
    review = facts.get("review")
    if not isinstance(review, dict):
        return f"no reviewer; {client}"
    return (
        f"review {review['labelled']} of {review['budget']} ({review['corrected']} corrections, "
        f"{review['approved']} approvals); {client}"
    )


def _loop_rows(timeline: Timeline) -> list[str]:
    """The loop's own figures: how fast drift was caught, what the retrain did, the gate."""
    rows = [
        f"| drift confirmed after the shift | {_since(timeline, 'drift confirmed', 'shift')} |",
        f"| drift confirmed after the shift, by signal | {_by_signal(timeline)} |",
        f"| labels spent (profile {timeline.facts.get('profile', '?')}) | "
        f"{labels_spent(timeline.facts)} |",
        f"| review budget spent after the shift | "
        f"{_since(timeline, 'review budget spent', 'shift')} |",
        f"| shift to promotion of the new version | {_since(timeline, 'promoted', 'shift')} |",
    ]
    r = timeline.facts.get("retrain")
    if isinstance(r, dict):

        def score(side: str, split: str) -> str:
            report = r.get(side) or {}
            return _pct((report.get(split) or {}).get("task"))

        rows += [
            f"| retrain data (v{r['version']} from v{r['parent_version']}) | "
            f"{r['train_examples']} train / {r['validation_examples']} validation examples "
            f"(curated from traffic and feedback: {_provenance(r.get('dataset_stats'))}) |",
            f"| retrain data by tenant (opted in: {', '.join(r.get('training_tenants') or [])})"
            f" | {_tenants(r.get('tenants'))} |",
            f"| retrain training | {r['epochs_run']} epochs, best epoch {r['best_epoch']}, "
            f"stopped early: {'yes' if r['stopped_early'] else 'no'}, "
            f"{r['train_wall_s']:.0f} s |",
            f"| gate, held-out task accuracy (new vs serving) | {score('candidate', 'heldout')}"
            f" vs {score('serving', 'heldout')} |",
            f"| gate, golden set task accuracy (new vs serving) | "
            f"{score('candidate', 'golden')} vs {score('serving', 'golden')} |",
            f"| gate decision | {'; '.join(r['gate'])} |",
        ]
    end = timeline.milestones[-1].t if timeline.milestones else 0.0
    rows.append(f"| wall time of the run (to the last milestone) | {end:.0f} s |")
    return rows


def _verdict_text(recovery: dict[str, Any]) -> str:
    if not recovery:
        return "not measured"
    return (
        f"{'yes' if recovery['passed'] else 'no'}: {recovery['correct']}/{recovery['n']} right, "
        f"needs >= {recovery['threshold']}; lower bound {_pct(recovery['lower_bound'])}"
    )


def write_report(out_dir: Path, timeline: Timeline, outcomes: Sequence[Outcome]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    f = timeline.facts
    failed = sum(not o.ok for o in outcomes)
    pre = f.get("stable_accuracy")
    post = f.get("recovered_accuracy")
    stable = f.get("stable") or {}
    recovery = f.get("recovery") or {}
    v1_drifted = f.get("v1_drifted_set") or {}
    promoted = f.get("promoted_version", "?")
    lines = [
        "# driftgate demo report",
        "",
        "| what | value |",
        "|---|---|",
        f"| base model accuracy (held-out original tickets) | {_pct(f.get('base_accuracy'))} |",
        f"| v1 accuracy before the shift ({stable.get('n', '?')} seeded original tickets of "
        f"live traffic) | {_pct(pre)} |",
        f"| v1 accuracy, first round after the shift | {_pct(f.get('shifted_accuracy'))} |",
        f"| live accuracy after recovery (v{promoted}) | {_pct(post)} |",
        f"| fixed set of held-out drifted tickets: v1 (first {v1_drifted.get('n', '?')}) vs "
        f"v{promoted} ({recovery.get('n', '?')}) | {_pct(v1_drifted.get('accuracy'))} vs "
        f"{_pct(recovery.get('accuracy'))} |",
        f"| recovered (v{promoted} >= {_pct(recovery.get('goal'))} on drifted traffic, one-sided "
        f"binomial test at alpha {recovery.get('alpha', '?')}) | "
        f"{_verdict_text(recovery)} |",
        f"| requests sent / failed | {len(outcomes)} / {failed} |",
        f"| feedback acknowledged / failed | {f.get('feedback_sent', 0)} / "
        f"{f.get('feedback_failed', 0)} |",
        *_loop_rows(timeline),
        "",
        "## Timeline",
        "",
        "| t (s) | event | detail |",
        "|---|---|---|",
    ]
    lines += [f"| {m.t:.1f} | {m.kind} | {m.detail} |" for m in timeline.milestones]
    lines += ["", "![run](demo.png)", ""]
    retrain = f.get("retrain")
    if isinstance(retrain, dict):
        lines += sample_lines(retrain.get("as_trained") or [])
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    (out_dir / "facts.json").write_text(json.dumps(f, indent=2, default=str))
    (out_dir / "requests.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "ts": o.ts,
                    "phase": o.phase,
                    "queue": o.ticket.queue,
                    "follow_up": o.ticket.earlier is not None,
                    "answer": o.answer,
                    "correct": o.correct,
                    "served_by": o.served_by,
                    "ok": o.ok,
                    "request_id": o.request_id,
                    "error": o.error,
                }
            )
            + "\n"
            for o in outcomes
        )
    )
    plot(out_dir / "demo.png", timeline, outcomes)
    return path
