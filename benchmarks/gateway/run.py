"""Benchmark: the gateway against direct calls, a bare pass-through and LiteLLM's proxy.

    .venv/bin/python -m benchmarks.gateway.run                 # full: about 4 minutes
    .venv/bin/python -m benchmarks.gateway.run --quick --json /tmp/gw.json   # smoke, < 60 s

Every server under test (the gateway with every feature on, a minimal FastAPI + aiohttp
pass-through, the LiteLLM proxy with one worker) is pinned to ``--gateway-core``; the
trivial upstream, the event sink and the load generators to ``--load-core``. Measured,
side by side in one run:

- req/s at saturation (wrk, ``--connections``) and the server's CPU seconds per request
  (from /proc: robust on a busy machine, where wall-clock req/s is not);
- p50 / p99 at one connection (wrk -c1); added latency = target p50 - direct p50;
- p50 / p99 at fixed offered rates (hey), plotted to ``latency_vs_load.png``;
- streaming time to the first content chunk; resident memory after the run.

Writes the suite's result document (``--json``, default ``results.json`` here for a full
run) and, for a full run, ``RESULTS.md``. Targets (issues "Serving path" and "Benchmarks,
side by side"): >= 1,400 req/s on one core, <= 1.5 ms added p50 at one connection,
>= 25x LiteLLM's req/s. Needs Linux, 2+ cores, ``wrk``, ``hey``, ``taskset``; LiteLLM is
installed on first use by ``setup_litellm.sh`` (``--no-litellm`` skips it; ``--quick``
skips it only when it is not installed).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx

from benchmarks.gateway import report, targets
from benchmarks.gateway.load import Client
from benchmarks.gateway.procs import log, rss_mib, wait_for_quiet
from benchmarks.suite.cli import AreaRun, area_parser, shown_path

HERE = Path(__file__).resolve().parent
FULL_RATES = (25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1200.0)
QUICK_RATES = (50.0, 200.0)


def _event_counts(gateway_chat_url: str, sink: str) -> dict[str, float]:
    base = gateway_chat_url.removesuffix(targets.CHAT)
    text = httpx.get(base + "/metrics", timeout=5).text
    out = {"requests": 0.0, "sent": 0.0, "dropped": 0.0}
    names = {
        "driftgate_gateway_requests_total": "requests",
        "driftgate_gateway_events_sent_total": "sent",
        "driftgate_gateway_events_dropped_total": "dropped",
    }
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in names:
            out[names[name]] += float(line.rsplit(" ", 1)[1])
    out["received_by_sink"] = float(httpx.get(sink + "/count", timeout=5).json()["events"])
    return out


def _limits(res: dict[str, Any]) -> tuple[str, str]:
    """What limits throughput and added latency, from the pass-through comparison."""
    sat, c1 = res["saturation"], res["c1"]
    g_us = sat["driftgate"]["cpu_us_per_request"]
    budget = 1e6 / report.TARGET_RPS
    added = c1["driftgate"]["p50_ms"] - c1["direct"]["p50_ms"]
    if "passthrough" not in sat:
        return (f"{g_us:.0f} us CPU/request against a {budget:.0f} us budget.", "")
    f_us = sat["passthrough"]["cpu_us_per_request"]
    f_added = c1["passthrough"]["p50_ms"] - c1["direct"]["p50_ms"]
    cpu = (
        f"A minimal FastAPI + aiohttp pass-through with no features costs {f_us:.0f} us "
        f"CPU/request; the gateway {g_us:.0f} us. "
    )
    if f_us > budget:
        cpu += "The bare stack alone misses the budget: a cheaper server stack is needed."
    elif g_us > budget:
        cpu += f"The features must shed {g_us - budget:.0f} us/request."
    lat = (
        f"The pass-through adds {f_added:.2f} ms p50 at c1, the gateway {added:.2f} ms: one "
        "extra HTTP hop through uvicorn plus the upstream client is most of it."
    )
    return cpu, lat


def _verdicts(res: dict[str, Any]) -> list[str]:
    sat, c1 = res["saturation"], res["c1"]
    gw = sat["driftgate"]
    per_core = gw["rps_per_core"] or 0.0
    out = []
    ok = per_core >= report.TARGET_RPS
    out.append(
        f"- throughput: **{'met' if ok else 'MISSED'}** on CPU time: {gw['cpu_us_per_request']:.0f}"
        f" us CPU/request = {per_core:.0f} req/s for a core of its own (target >= "
        f"{report.TARGET_RPS:,.0f}); wall clock on the pinned core {gw['rps']:.0f} req/s."
        + ("" if ok else " " + res["limits"])
    )
    added = c1["driftgate"]["p50_ms"] - c1["direct"]["p50_ms"]
    ok = added <= report.TARGET_ADDED_P50_MS
    out.append(
        f"- added latency: **{'met' if ok else 'MISSED'}**: p50 at c1 "
        f"{c1['driftgate']['p50_ms']:.2f} ms - direct {c1['direct']['p50_ms']:.2f} ms = "
        f"{added:.2f} ms (target <= {report.TARGET_ADDED_P50_MS} ms)."
        + ("" if ok else " " + res["latency_limits"])
    )
    if "litellm" in sat:
        lite = sat["litellm"]
        if not lite["rps_per_core"] or not lite["rps"]:
            out.append("- vs LiteLLM: **not measured**: no request completed in the run.")
            return out
        ratio = per_core / lite["rps_per_core"]
        ok = ratio >= report.TARGET_VS_LITELLM
        out.append(
            f"- vs LiteLLM: **{'met' if ok else 'MISSED'}**: {ratio:.1f}x its req/s per core "
            f"({lite['cpu_us_per_request']:.0f} us CPU/request), {gw['rps'] / lite['rps']:.1f}x "
            f"wall clock (target >= {report.TARGET_VS_LITELLM:g}x)."
        )
    else:
        out.append("- vs LiteLLM: not measured in this run.")
    return out


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    quick = args.quick
    duration = args.duration if args.duration is not None else 1.0 if quick else 8.0
    warmup = 1.0 if quick else 2.0  # wrk takes whole seconds
    res: dict[str, Any] = {
        "config": {
            "duration_s": duration,
            "warmup_s": warmup,
            "connections": args.connections,
            "gateway_core": args.gateway_core,
            "load_core": args.load_core,
        }
    }
    with ExitStack() as stack:
        upstream, sink = targets.start_upstream(stack, tmp, args.load_core)
        direct = targets.Target("direct", upstream + targets.CHAT, targets.SERVED, None)
        lite = (
            targets.start_litellm(stack, tmp, args.gateway_core, upstream) if args.litellm else None
        )
        gw, key = targets.start_gateway(stack, tmp, args.gateway_core, upstream, sink)
        runs = [direct]
        if not args.no_passthrough:
            runs.append(targets.start_passthrough(stack, tmp, args.gateway_core, upstream))
        runs.append(gw)
        if lite is not None:
            runs.append(lite())
        res["targets"] = [t.name for t in runs]
        client = Client(args.load_core, key)
        for t in runs:
            client.wrk(f"{t.name} (warm)", t.url, t.model, args.connections, warmup, key=t.key)
        for kind, conns in (("saturation", args.connections), ("c1", 1)):
            for t in runs:
                r = client.wrk(t.name, t.url, t.model, conns, duration, t.pid, t.key)
                res.setdefault(kind, {})[t.name] = r.as_dict()
        res["fixed_rate"] = {}
        for t in (x for x in runs if x.name != "passthrough"):
            for rate in QUICK_RATES if quick else FULL_RATES:
                r = client.hey(t.name, t.url, t.model, rate, duration, t.pid, t.key)
                res["fixed_rate"].setdefault(t.name, []).append(r.as_dict())
                if r.rps < 0.8 * rate:
                    log(f"{t.name} saturated at {r.rps:.0f} req/s: no higher rates")
                    break
        n = 20 if quick else 300
        res["ttft"] = {
            t.name: client.ttft(t.name, t.url, t.model, n, t.key).as_dict()
            for t in runs
            if t.name != "passthrough"
        }
        res["rss_mib"] = {t.name: rss_mib(t.pid) for t in runs if t.pid}
        time.sleep(1.5)  # let the gateway flush its last event batch
        res["events"] = _event_counts(gw.url, sink)
        log(f"events: {res['events']}")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = area_parser(__doc__, quick_help="a smoke run: 1 s per measurement")
    ap.add_argument(
        "--duration", type=float, default=None,
        help="seconds per measurement (default 8; 1 with --quick)",
    )  # fmt: skip
    ap.add_argument("--connections", type=int, default=32, help="connections at saturation")
    ap.add_argument("--gateway-core", type=int, default=0)
    ap.add_argument("--load-core", type=int, default=1)
    ap.add_argument("--max-load", type=float, default=1.5, help="wait for a 1-min load <= this")
    ap.add_argument("--max-wait", type=float, default=600.0, help="longest wait for it (s)")
    ap.add_argument("--no-passthrough", action="store_true", help="skip the stack-floor run")
    ap.add_argument("--no-litellm", action="store_true", help="skip LiteLLM")
    args = ap.parse_args(argv)
    for tool in ("wrk", "hey", "taskset"):
        if shutil.which(tool) is None:
            ap.error(f"{tool} not found (Debian: apt-get install wrk hey util-linux)")
    if args.gateway_core == args.load_core:
        ap.error("--gateway-core and --load-core must differ")
    args.litellm = not args.no_litellm
    if args.litellm and not targets.litellm_installed():
        if args.quick:
            log("LiteLLM is not installed: quick mode skips it (setup_litellm.sh installs it)")
            args.litellm = False
        else:
            targets.install_litellm()
    # unwind (and stop every process started) on SIGTERM too, not only on Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    if not args.quick:
        wait_for_quiet(args.max_load, args.max_wait)
    run = AreaRun.start("gateway", args, argv)
    with tempfile.TemporaryDirectory(prefix="dg-gwbench-") as tmp:
        res = measure(args, Path(tmp))
    sat, c1 = res["saturation"], res["c1"]
    res["ratios"] = {
        "driftgate / direct req/s (wall)": sat["driftgate"]["rps"] / sat["direct"]["rps"],
        "driftgate / direct p50 at c1": c1["driftgate"]["p50_ms"] / c1["direct"]["p50_ms"],
    }
    if "litellm" in sat and sat["litellm"]["rps_per_core"] and sat["litellm"]["rps"]:
        res["ratios"]["driftgate / LiteLLM req/s per core"] = (
            sat["driftgate"]["rps_per_core"] / sat["litellm"]["rps_per_core"]
        )
        res["ratios"]["driftgate / LiteLLM req/s (wall)"] = (
            sat["driftgate"]["rps"] / sat["litellm"]["rps"]
        )
        res["ratios"]["LiteLLM / driftgate p50 at c1"] = (
            c1["litellm"]["p50_ms"] / c1["driftgate"]["p50_ms"]
        )
    res["limits"], res["latency_limits"] = _limits(res)
    res["verdicts"] = _verdicts(res)
    png = run.plot_path("latency_vs_load.png")
    plots = [shown_path(png)] if report.plot(res, png) else []
    doc = run.write(
        title="Gateway: req/s per core, added latency, vs direct and LiteLLM",
        figures=report.figures(res),
        details_md=report.details_md(res),
        plots=plots,
        extra={"raw": res},
    )
    log(f"wrote {run.out}")
    if not args.quick:
        (HERE / "RESULTS.md").write_text(render_results_md(doc))
        log(f"wrote {HERE / 'RESULTS.md'}")
    print("\n".join(res["verdicts"]))
    return 0


def render_results_md(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    figs = [
        f"| {f['name']} | {f['value']} {f['unit']} | {f['reference_value'] or '-'} | "
        f"{f['ratio'] or '-'} | {f['target'] or '-'} | "
        f"{'-' if f['met'] is None else ('met' if f['met'] else 'MISSED')} |"
        for f in doc["figures"]
    ]
    return "\n".join(
        [
            "# Gateway benchmark",
            "",
            f"Recorded {doc['date']}:",
            "",
            "```",
            doc["command"],
            "```",
            "",
            f"- machine: {m['cores']} cores, {m['cpu']}, {m['platform']}, Python {m['python']}",
            f"- load average (1, 5, 15 min): before {m['loadavg_before']}, after "
            f"{m['loadavg_after']}",
            "",
            "| figure | driftgate | LiteLLM | ratio | target | verdict |",
            "|---|---|---|---|---|---|",
            *figs,
            "",
            doc["details_md"],
            "",
            *(f"![latency vs load]({Path(p).name})" for p in doc["plots"]),
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
