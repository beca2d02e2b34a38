"""A/B of two checkouts: the gateway's and the drift service's benchmarks, alternated.

    .venv/bin/python -m benchmarks.ab.run --base /path/to/old/checkout --rounds 3

Single runs on a shared machine vary by +-15%, so one number before and one after a
change say little. This runs each benchmark on the old checkout (``--base``) and on this
one in turn, ``--rounds`` times (ABAB...), and reports each figure's median per side and
their ratio (this checkout / base). Each side runs from its own directory with its own
code first on ``PYTHONPATH``; the virtual environment is this one. Figures:

- gateway: req/s per core (CPU time), added p50 at one connection, RSS
  (``benchmarks.gateway.run --quick --no-litellm --no-passthrough --duration S``: the quick
  run's short rate sweep, with ``--gateway-duration`` seconds per measurement, 8 by default);
- drift: events per CPU-second of the service, in-process and over HTTP, SQLite FULL
  (``benchmarks.drift.throughput --mode both``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]

GATEWAY_FIGURES = {
    "req/s on one core (gateway, every feature on; CPU time)": "gateway req/s per core",
    "added p50 latency at one connection (vs direct)": "gateway added p50 ms (c1)",
    "gateway memory (RSS) after the run": "gateway RSS MiB",
}
DRIFT_LINE = re.compile(
    r"\| (inprocess|http) \| synchronous=FULL \| .* \| ([\d,]+) events per CPU-second"
)


def _run(checkout: Path, argv: list[str], timeout_s: float) -> str:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    proc = subprocess.run(
        [sys.executable, "-m", *argv], cwd=checkout, env=env, capture_output=True, text=True,
        timeout=timeout_s, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(
            f"{argv} in {checkout} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return proc.stdout


def gateway(checkout: Path, duration_s: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "gw.json"
        _run(checkout, ["benchmarks.gateway.run", "--quick", "--no-litellm", "--no-passthrough",
                        "--duration", str(duration_s), "--json", str(out)], 900)  # fmt: skip
        figures = json.loads(out.read_text())["figures"]
    return {GATEWAY_FIGURES[f["name"]]: float(f["value"]) for f in figures
            if f["name"] in GATEWAY_FIGURES}  # fmt: skip


def drift(checkout: Path, events: int) -> dict[str, float]:
    text = _run(checkout, ["benchmarks.drift.throughput", "--events", str(events),
                           "--mode", "both"], 900)  # fmt: skip
    found = {f"drift {mode} events/CPU-s": float(n.replace(",", ""))
             for mode, n in DRIFT_LINE.findall(text)}  # fmt: skip
    if len(found) != 2:
        raise RuntimeError(f"unexpected drift benchmark output:\n{text}")
    return found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", type=Path, required=True, help="the old checkout")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--drift-events", type=int, default=30_000)
    ap.add_argument(
        "--gateway-duration", type=float, default=8.0,
        help="seconds per gateway measurement (1 s runs spread by +-25%%)",
    )  # fmt: skip
    ap.add_argument("--json", type=Path, help="write the medians and ratios here")
    args = ap.parse_args()
    sides = {"base": args.base.resolve(), "this": HERE}
    samples: dict[str, dict[str, list[float]]] = {"base": {}, "this": {}}
    t0 = time.monotonic()
    for r in range(1, args.rounds + 1):
        for side, checkout in sides.items():
            for name, value in {
                **gateway(checkout, args.gateway_duration),
                **drift(checkout, args.drift_events),
            }.items():
                samples[side].setdefault(name, []).append(value)
            print(f"round {r}/{args.rounds}, {side} done ({time.monotonic() - t0:.0f} s)",
                  file=sys.stderr, flush=True)  # fmt: skip
    rows: list[dict[str, float | str | list[float]]] = []
    print("| figure | base (median) | this checkout (median) | this / base | runs base; this |")
    print("|---|---|---|---|---|")
    for name, after in samples["this"].items():
        before = samples["base"][name]
        a, b = statistics.median(before), statistics.median(after)
        rows.append({"figure": name, "base": a, "this": b, "ratio": b / a,
                     "base_runs": before, "this_runs": after})  # fmt: skip
        runs = f"{', '.join(f'{v:g}' for v in before)}; {', '.join(f'{v:g}' for v in after)}"
        print(f"| {name} | {a:g} | {b:g} | {b / a:.3f} | {runs} |")
    if args.json:
        args.json.write_text(json.dumps({"rounds": args.rounds, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
