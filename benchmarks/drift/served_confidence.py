"""Detection on real served confidences: the answer-confidence signals of adapter v1.

The values are v1's answers as vLLM served them (``benchmarks/loop/data``, recorded by
``benchmarks.loop.record``): the mean token logprob and the first token's margin per
request, on the demo's original tickets (the stable stretch) and after the shift (the
drifted stretch, about 40% of tickets about a product v1 never saw). Tickets are drawn
independently and answered greedily, so the served values are independent draws from
each stretch's distribution, and a stream is an i.i.d. bootstrap of the recorded values:

- false alarms per 1e5: a reference of 1,000 values (the service's default
  ``reference_size``) and a stable stream, both drawn with replacement from the recorded
  stable values; a fresh reference per 1e5 values, as for a new version going live;
- delay: per trial a fresh reference and 1,000 stable values, then values drawn from the
  recorded drifted stretch until the first alarm (in requests after the shift, horizon
  3,000); alarms before the shift are counted as well.

The driftgate policy is ``drift.monitor.SignalMonitor`` at the service defaults
(calibrated on the reference; CUSUM or ADWIN, confirmed by KS), River's ADWIN at its
defaults beside it, as in :mod:`benchmarks.drift.quality`.

Run: ``.venv/bin/python -m benchmarks.drift.served_confidence [--quick]``; writes
``benchmarks/drift/served_confidence.json`` and its section of ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from river.drift import ADWIN

from benchmarks.drift.quality import (
    Budget,
    Factory,
    Row,
    delay_on,
    driftgate_policy,
    false_alarms_on,
    feeds_reference,
    markdown,
    river,
    summarize,
)
from benchmarks.loop.window import WINDOW_FILE, load_window
from benchmarks.suite.contract import command_line, cpu_model, loadavg, now_iso

HERE = Path(__file__).parent
RESULT_FILE = HERE / "served_confidence.json"
RESULTS_MD = HERE / "RESULTS.md"
SECTION_START = "<!-- served-confidence:start -->"
SECTION_END = "<!-- served-confidence:end -->"
SIGNALS = ("mean_logprob", "first_token_margin")
HORIZON = 3000
FIRST_TOKEN_NOTE = (
    "For this task the first generated token of every answer is `Q` (every queue code "
    "starts `Q-`), so the first-token margin cannot tell one queue from another: it "
    "barely moves and most trials miss the shift; the mean token logprob carries it. "
    "Both are label-free: the feedback share does not enter these numbers."
)
CHANGE = "shift (recorded)"

FULL = Budget(stable=1_000_000, river_stable=200_000, trials=200)
QUICK = Budget(stable=20_000, river_stable=20_000, trials=5)


def methods(signal: str) -> dict[str, Factory]:
    return {
        "driftgate policy (service defaults)": driftgate_policy(signal),
        "River ADWIN (defaults)": feeds_reference(river(ADWIN)),
    }


def bootstrap(rng: random.Random, pool: Sequence[float]) -> Callable[[], float]:
    """Draws with replacement from the recorded values."""
    return lambda: rng.choice(pool)


def values(rows: Sequence[Any], signal: str) -> list[float]:
    return [float(v) for r in rows if (v := getattr(r, signal)) is not None]


def signal_rows(
    signal: str, stable: list[float], drifted: list[float], budget: Budget, seed: int
) -> tuple[list[Row], list[dict[str, Any]]]:
    rows: list[Row] = []
    raw: list[dict[str, Any]] = []
    for name, factory in methods(signal).items():
        n, k = budget.of(name)
        fa = false_alarms_on(factory, bootstrap(random.Random(seed), stable), n)
        rng = random.Random(seed + 1)
        before, after = bootstrap(rng, stable), bootstrap(rng, drifted)
        trials = [delay_on(factory, before, after, HORIZON) for _ in range(k)]
        delay, missed, early = summarize(trials)
        found = sorted(d for d, _ in trials if d is not None)
        rows.append(Row(signal, name, fa, n, {CHANGE: delay}, {CHANGE: missed}, k))
        raw.append(
            {
                "signal": signal,
                "method": name,
                "false_alarms_per_1e5": fa,
                "stable_values": n,
                "trials": k,
                "median_delay_requests": delay,
                "delay_p90_requests": found[int(0.9 * (len(found) - 1))] if found else None,
                "missed": missed,
                "alarms_before_shift": early,
            }
        )
    return rows, raw


def summary(xs: list[float]) -> dict[str, float]:
    return {
        "n": len(xs),
        "mean": round(statistics.fmean(xs), 4),
        "median": round(statistics.median(xs), 4),
        "sd": round(statistics.stdev(xs), 4),
    }


def section(doc: dict[str, Any], table: str) -> str:
    s = doc["recorded"]
    lines = [
        SECTION_START,
        f"## Answer confidence on real served values ({doc['date'][:16].replace('T', ' ')})",
        "",
        "The confidence signals of the demo's adapter v1 as vLLM served them (greedy, "
        "`top_logprobs` 2, the gateway's own extraction), recorded once by "
        "`benchmarks.loop.record`: "
        f"{s['stable']['mean_logprob']['n']} stable requests, "
        f"{s['drifted']['mean_logprob']['n']} after the shift. Streams are i.i.d. bootstrap "
        "draws of the recorded values (tickets are independent, answers deterministic); "
        "false alarms: a fresh 1,000-value reference per 1e5 stable values; delay: requests "
        f"after the shift to the first alarm (reference, 1,000 stable values, then drifted "
        f"values; horizon {HORIZON}). The driftgate policy runs at the service defaults.",
        "",
        "| signal | stable mean (sd) | drifted mean (sd) |",
        "|---|---|---|",
    ]
    for sig in SIGNALS:
        a, b = s["stable"][sig], s["drifted"][sig]
        lines.append(f"| {sig} | {a['mean']} ({a['sd']}) | {b['mean']} ({b['sd']}) |")
    lines += [
        "",
        table.strip(),
        "",
        FIRST_TOKEN_NOTE,
        "",
        f"Command: `{doc['command']}`; {doc['wall_s']:.0f} s on {doc['machine']['cpu']} "
        f"({doc['machine']['cores']} cores, load average {doc['machine']['loadavg_before']} "
        f"before, {doc['machine']['loadavg_after']} after).",
        SECTION_END,
    ]
    return "\n".join(lines) + "\n"


def write_section(text: str, path: Path = RESULTS_MD) -> None:
    """Replace this benchmark's section of RESULTS.md (appended the first time)."""
    page = path.read_text()
    pattern = re.compile(re.escape(SECTION_START) + ".*?" + re.escape(SECTION_END) + "\n?", re.S)
    if pattern.search(page):
        page = pattern.sub(lambda _m: text, page)
    else:
        page = page.rstrip("\n") + "\n\n" + text
    path.write_text(page)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer values (smoke run; writes nothing)")
    ap.add_argument("--window", type=Path, default=WINDOW_FILE)
    args = ap.parse_args(argv)
    budget = QUICK if args.quick else FULL
    load0 = loadavg()
    t0 = time.time()
    window = load_window(args.window)
    stable, drifted = window.rows("stable"), window.rows("drifted")
    rows: list[Row] = []
    raw: list[dict[str, Any]] = []
    for i, sig in enumerate(SIGNALS):
        r, d = signal_rows(sig, values(stable, sig), values(drifted, sig), budget, 300 + 10 * i)
        rows += r
        raw += d
        print(f"[served-confidence] {sig} done ({time.time() - t0:.0f} s)", flush=True)
    table = markdown(rows)
    print(table, flush=True)
    doc = {
        "date": now_iso(),
        "command": command_line(
            "benchmarks.drift.served_confidence", ["--quick"] if args.quick else []
        ),
        "quick": args.quick,
        "wall_s": round(time.time() - t0, 1),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "loadavg_before": load0,
            "loadavg_after": loadavg(),
        },
        "window": window.meta,
        "recorded": {
            name: {sig: summary(values(window.rows(name), sig)) for sig in SIGNALS}
            for name in ("stable", "drifted")
        },
        "budget": asdict(budget),
        "rows": raw,
    }
    if not args.quick:
        RESULT_FILE.write_text(json.dumps(doc, indent=2) + "\n")
        write_section(section(doc, table))
        print(f"[served-confidence] wrote {RESULT_FILE.name} and its RESULTS.md section")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
