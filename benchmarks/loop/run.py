"""Benchmark: the retrain-gate part of the loop, replayed on one recorded drifted window.

    .venv/bin/python -m benchmarks.loop.run [--seeds 0 1 ...] [--strategies ...]
        [--budget 40] [--engine-url URL] [--fresh] [--quick] [--json PATH]

The window (``data/served-window.json.gz``, recorded once by ``benchmarks.loop.record``)
is replayed as the drift store would hold it (:mod:`benchmarks.loop.replay`); per seed
(which requests get feedback, which get labelled, the training seed) and strategy, one
trial (:mod:`benchmarks.loop.trial`) curates, trains from v1, gates against v1 and
measures recovery on the recorded held-out drifted tickets through vLLM. Strategies:
(a) ``selection``: 5% feedback plus ``--budget`` labels picked by the review queue's
selection, (b) ``random``: the same feedback and budget on random drifted requests,
(c) ``feedback80``: today's 80% feedback. Target: (a) >= 95% of pre-drift in at least 9
of 10 seeds, and (a) >= (b) on the median.

Each finished trial is appended to ``data/trials.jsonl`` at once and skipped when the
run is started again (``--fresh`` starts over), so an interrupted run resumes; the
document, plot and RESULTS.md are rewritten after every trial. ``--quick`` runs nothing:
it checks that the recorded trials make a well-formed document (the suite's smoke mode).
``--smoke`` is a development run on a few tickets and one epoch, written to a temporary
folder.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.loop import report
from benchmarks.loop.replay import DIAGNOSTIC_STRATEGIES, STRATEGIES, window_of
from benchmarks.loop.window import DATA_DIR, WINDOW_FILE, load_window
from benchmarks.suite.cli import AreaRun, area_parser
from benchmarks.suite.contract import cpu_model, loadavg
from benchmarks.suite.engine import add_engine_flag, engine_url

HERE = Path(__file__).parent
TRIALS_FILE = DATA_DIR / "trials.jsonl"
COVERAGE_FILE = DATA_DIR / "coverage.json"
RESULTS_MD = HERE / "RESULTS.md"
PLOT = "recovery.png"
TITLE = "Loop: recovery after a drift, by how the labelling budget is spent"
SEEDS = tuple(range(10))


def read_trials(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_trial(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(row, sort_keys=True) + "\n")


def window_meta(window_path: Path, pre_shift: int) -> dict[str, Any]:
    w = load_window(window_path)
    stable, drifted, heldout = w.rows("stable"), w.rows("drifted"), w.rows("heldout")
    return {
        "window": w.meta,
        "pre_shift": pre_shift,
        "drifted": len(drifted),
        "stable_n": len(stable),
        "stable_accuracy": sum(r.correct for r in stable) / len(stable),
        "heldout_n": len(heldout),
        "v1_drifted_accuracy": sum(r.correct for r in drifted) / len(drifted),
    }


def read_coverage(path: Path = COVERAGE_FILE) -> list[dict[str, Any]]:
    return json.loads(path.read_text()) if path.exists() else []


def write_outputs(
    run: AreaRun, trials: list[dict[str, Any]], meta: dict[str, Any], seeds: int
) -> dict[str, Any]:
    coverage = read_coverage()
    plots: list[str] = []
    if trials:
        path = run.plot_path(PLOT)
        report.plot(trials, path)
        plots.append(path.name)
    details = report.details(trials, meta, coverage) if trials else "No trial has run yet."
    doc = run.write(
        title=TITLE,
        figures=report.figures(trials, seeds),
        details_md=details,
        plots=plots,
        extra={
            "meta": meta,
            "summary": report.summary(trials),
            "trials": trials,
            "coverage": coverage,
        },
    )
    if not run.quick:
        RESULTS_MD.write_text(results_md(doc, trials))
    return doc


def results_md(doc: dict[str, Any], trials: list[dict[str, Any]]) -> str:
    m = doc["machine"]
    loads = sorted({tuple(t["loadavg"]) for t in trials})
    return "\n".join(
        [
            f"# {TITLE}",
            "",
            f"Written {doc['date']} by `{doc['command']}` on {m['cpu']} ({m['cores']} cores; "
            f"load average {m['loadavg_before']} at the start, {m['loadavg_after']} at the "
            f"end; per trial from {list(loads[0]) if loads else '-'} to "
            f"{list(loads[-1]) if loads else '-'}). The 2 cores were shared with other work "
            "(vLLM on one, training on what the load average left), so wall times are "
            "upper bounds.",
            "",
            doc["details_md"],
            "",
            f"![recovery per seed and strategy]({PLOT})",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = area_parser(__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    ap.add_argument("--budget", type=int, default=40, help="labels for (a) and (b)")
    ap.add_argument("--pre-shift", type=int, default=300, help="stable requests before the shift")
    ap.add_argument("--window", type=Path, default=WINDOW_FILE)
    ap.add_argument("--trials-file", type=Path, default=TRIALS_FILE)
    ap.add_argument("--fresh", action="store_true", help="forget recorded trials, start over")
    ap.add_argument("--smoke", action="store_true", help="tiny development run (temp files)")
    add_engine_flag(ap)
    args = ap.parse_args(argv)
    run = AreaRun.start("loop", args, argv)
    meta = window_meta(args.window, args.pre_shift)
    meta["budget"] = args.budget
    meta["cpu"] = cpu_model()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="loopbench-")))
        trials_file = tmp / "trials.jsonl" if args.smoke else args.trials_file
        if args.fresh and trials_file.exists():
            trials_file.unlink()
        trials = read_trials(trials_file)
        if run.quick:
            write_outputs(run, trials, meta, len(SEEDS))
            print(f"[loop] quick: {len(trials)} recorded trials make a document at {run.out}")
            return 0
        todo = [
            (seed, st)
            for seed in args.seeds
            for st in args.strategies
            if not any(t["seed"] == seed and t["strategy"] == st for t in trials)
        ]
        print(f"[loop] {len(trials)} trials recorded, {len(todo)} to run: {todo}", flush=True)
        if todo:
            bench = open_bench(stack, args, tmp)
            if not args.smoke:
                write_coverage(bench)
            for seed, st in todo:
                row = run_trial(bench, seed, st) | {"loadavg_at_end": loadavg()}
                append_trial(trials_file, row)
                trials.append(row)
                if not args.smoke:
                    write_outputs(run, trials, meta, len(SEEDS))
        doc = write_outputs(run, trials, meta, len(SEEDS)) if not args.smoke else None
    if doc is not None:
        print(doc["details_md"], flush=True)
    return 0


def open_bench(stack: ExitStack, args: Any, tmp: Path) -> Any:
    from benchmarks.loop.record import v1_dir
    from benchmarks.loop.trial import Bench

    w = load_window(args.window)
    window = window_of(w.rows("stable"), w.rows("drifted"), args.pre_shift)
    heldout = w.rows("heldout")
    stable = w.rows("stable")
    if args.smoke:
        heldout = heldout[:16]
    url = stack.enter_context(engine_url(args.engine_url, tmp))
    bench = Bench.open(
        url,
        v1_dir(),
        window,
        heldout,
        sum(r.correct for r in stable) / len(stable),
        tmp / "work",
        args.budget,
    )
    if args.smoke:
        bench.settings = bench.settings.model_copy(update={"max_epochs": 1, "min_epochs": 1})
    return bench


def write_coverage(bench: Any) -> None:
    """Every seed's draw, curated (cheap: no training), for the coverage table."""
    from benchmarks.loop.trial import coverage

    rows = [
        coverage(bench, seed, st) for seed in SEEDS for st in (*STRATEGIES, *DIAGNOSTIC_STRATEGIES)
    ]
    COVERAGE_FILE.write_text(json.dumps(rows, indent=1) + "\n")
    print(report.coverage_md(rows), flush=True)


def run_trial(bench: Any, seed: int, strategy: str) -> dict[str, Any]:
    from benchmarks.loop.trial import run_trial as one

    t0 = time.monotonic()
    row = one(bench, seed, strategy)
    row["trial_s"] = round(time.monotonic() - t0, 1)
    return row


if __name__ == "__main__":
    raise SystemExit(main())
