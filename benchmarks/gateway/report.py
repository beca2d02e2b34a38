"""The gateway benchmark's figures, Markdown tables and latency-vs-load plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.suite.contract import figure

TARGET_RPS = 1400.0
TARGET_ADDED_P50_MS = 1.5
TARGET_VS_LITELLM = 25.0
LITELLM = "LiteLLM proxy (1 worker)"


def _f(x: float | None, fmt: str = ".0f") -> str:
    return "-" if x is None else format(x, fmt)


def figures(res: dict[str, Any]) -> list[dict[str, Any]]:
    sat = res["saturation"]
    c1 = res["c1"]
    gw = sat["driftgate"]
    # a LiteLLM run in which no request completed (a 1 s quick run) counts as not measured
    lite = sat["litellm"] if sat.get("litellm", {}).get("rps_per_core") else None
    per_core = gw["rps_per_core"]
    lite_per_core = lite["rps_per_core"] if lite else None
    out: list[dict[str, Any]] = []

    ratio_ok = per_core and lite_per_core and per_core / lite_per_core >= TARGET_VS_LITELLM
    met = per_core is not None and per_core >= TARGET_RPS and (lite is None or bool(ratio_ok))
    note = None
    if per_core is None or per_core < TARGET_RPS:
        note = (
            f"{gw['cpu_us_per_request']:.0f} us CPU per request; the target needs <= "
            f"{1e6 / TARGET_RPS:.0f} us. " + res["limits"]
        )
    if lite is None:
        note = ((note or "") + " LiteLLM not measured in this run.").strip()
    out.append(
        figure(
            "req/s on one core (gateway, every feature on; CPU time)",
            round(per_core, 1) if per_core else None,
            "req/s",
            reference=LITELLM,
            reference_value=round(lite_per_core, 1) if lite_per_core else None,
            target=f">= {TARGET_RPS:,.0f} req/s and >= {TARGET_VS_LITELLM:g}x LiteLLM",
            met=met,
            note=note,
        )
    )
    out.append(
        figure(
            f"req/s at saturation, wall clock (c{res['config']['connections']}, pinned core)",
            round(gw["rps"], 1),
            "req/s",
            reference=LITELLM,
            reference_value=round(lite["rps"], 1) if lite else None,
            note="wall clock on a shared machine: see the load average",
        )
    )
    added = c1["driftgate"]["p50_ms"] - c1["direct"]["p50_ms"]
    out.append(
        figure(
            "added p50 latency at one connection (vs direct)",
            round(added, 3),
            "ms",
            reference=LITELLM + ", added p50" if "litellm" in c1 else None,
            reference_value=(
                round(c1["litellm"]["p50_ms"] - c1["direct"]["p50_ms"], 3)
                if "litellm" in c1
                else None
            ),
            target=f"<= {TARGET_ADDED_P50_MS} ms",
            met=added <= TARGET_ADDED_P50_MS,
            note=None if added <= TARGET_ADDED_P50_MS else res["latency_limits"],
        )
    )
    ttft = res.get("ttft", {})
    if "driftgate" in ttft and "direct" in ttft:
        added_ttft = ttft["driftgate"]["p50_ms"] - ttft["direct"]["p50_ms"]
        lite_ttft = (
            ttft["litellm"]["p50_ms"] - ttft["direct"]["p50_ms"] if "litellm" in ttft else None
        )
        out.append(
            figure(
                "added streaming time to first token, p50",
                round(added_ttft, 3),
                "ms",
                reference=LITELLM if lite_ttft is not None else None,
                reference_value=round(lite_ttft, 3) if lite_ttft is not None else None,
            )
        )
    rss = res.get("rss_mib", {})
    if "driftgate" in rss:
        out.append(
            figure(
                "gateway memory (RSS) after the run",
                round(rss["driftgate"], 1),
                "MiB",
                reference=LITELLM if "litellm" in rss else None,
                reference_value=round(rss["litellm"], 1) if "litellm" in rss else None,
            )
        )
    return out


def details_md(res: dict[str, Any]) -> str:
    cfg = res["config"]
    lines = [
        f"Gateway pinned to core {cfg['gateway_core']} (as are the pass-through and LiteLLM); "
        f"the upstream, the event sink and the load generators on core {cfg['load_core']}. "
        f"{cfg['duration_s']:g} s per run after a warm-up. Events: "
        f"{res['events']['received_by_sink']:.0f} received by the sink, "
        f"{res['events']['dropped']:.0f} dropped.",
        "",
        f"### Saturation (wrk, c{cfg['connections']}) and one connection (wrk, c1)",
        "",
        "| target | req/s | server CPU us/req | req/s per core (CPU time) | p50 ms c1 | "
        "p99 ms c1 | RSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in res["targets"]:
        s, c1 = res["saturation"][name], res["c1"][name]
        lines.append(
            f"| {name} | {s['rps']:.0f} | {_f(s['cpu_us_per_request'])} | "
            f"{_f(s['rps_per_core'])} | {c1['p50_ms']:.2f} | {c1['p99_ms']:.2f} | "
            f"{_f(res['rss_mib'].get(name), '.1f')} |"
        )
    ratios = res["ratios"]
    lines += ["", "Ratios measured in this run:", ""]
    lines += [f"- {k}: {v:.2f}x" for k, v in ratios.items()]
    if res.get("fixed_rate"):
        lines += [
            "",
            "### Latency at fixed request rates (hey, 8 paced connections)",
            "",
            "| target | offered req/s | achieved req/s | p50 ms | p99 ms |",
            "|---|---|---|---|---|",
        ]
        for name, runs in res["fixed_rate"].items():
            for r in runs:
                lines.append(
                    f"| {name} | {r['offered_rps']:g} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
                    f"{r['p99_ms']:.2f} |"
                )
    if res.get("ttft"):
        lines += [
            "",
            "### Streaming: time to the first content chunk (sequential requests)",
            "",
            "| target | p50 ms | p99 ms | added p50 ms vs direct |",
            "|---|---|---|---|",
        ]
        d = res["ttft"]["direct"]["p50_ms"]
        for name, r in res["ttft"].items():
            lines.append(
                f"| {name} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['p50_ms'] - d:.2f} |"
            )
    lines += ["", "### Verdicts", "", *res["verdicts"]]
    return "\n".join(lines)


def plot(res: dict[str, Any], path: Path) -> bool:
    """Latency (p50 solid, p99 dashed) vs offered load per target; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, runs in res["fixed_rate"].items():
        xs = [r["offered_rps"] for r in runs]
        (line,) = ax.plot(xs, [r["p50_ms"] for r in runs], marker="o", label=f"{name} p50")
        ax.plot(
            xs,
            [r["p99_ms"] for r in runs],
            marker="x",
            linestyle="--",
            color=line.get_color(),
            label=f"{name} p99",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    rates = sorted({r["offered_rps"] for runs in res["fixed_rate"].values() for r in runs})
    ax.set_xticks(rates, [f"{r:g}" for r in rates])
    ax.minorticks_off()
    ax.set_xlabel("offered load (req/s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency vs offered load, one core each (trivial upstream)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
