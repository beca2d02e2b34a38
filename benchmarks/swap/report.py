"""The swap benchmark's contract figures and Markdown table, from its runs' reports.

A run's report is :func:`benchmarks.swap.load.summarize`'s dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.suite.contract import figure

#: Issue "Hot swap": promote decision -> 100% of new traffic on the new version.
TARGET_ROUTE_S = 5.0


def figures(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    route = max(r["promote_to_route_s"] for r in runs)
    unloaded = max(r["promote_to_unloaded_s"] for r in runs)
    failed = sum(r["failed"] for r in runs)
    wrong = sum(r["misrouted"] + r["ambiguous"] for r in runs)
    requests = sum(r["requests"] for r in runs)
    n = f"worst of {len(runs)} run{'s' if len(runs) > 1 else ''}"
    return [
        figure(
            f"promote -> 100% of new traffic on the new version ({n})",
            round(route, 2),
            "s",
            target=f"<= {TARGET_ROUTE_S:g} s",
            met=route <= TARGET_ROUTE_S,
        ),
        figure(
            f"failed requests during the swap ({requests} requests)",
            failed,
            "requests",
            target="0",
            met=failed == 0,
        ),
        figure(
            "misrouted or ambiguous responses",
            wrong,
            "responses",
            target="0",
            met=wrong == 0,
        ),
        figure(
            f"promote -> old version drained and unloaded ({n})",
            round(unloaded, 2),
            "s",
            note="waits for the old version's last in-flight request (seconds each on 2 cores)",
        ),
    ]


def details_md(runs: Sequence[dict[str, Any]], clients: int) -> str:
    lines = [
        f"A rollout of version 2 of the logical adapter `swap` while {clients} concurrent",
        "clients (half streaming) call it through the real gateway in front of a real vLLM:",
        "candidate -> loading -> canary (50%) -> promoted (an operator's call, so the decision",
        "time is exact) -> draining -> unloaded. See `benchmarks/swap/README.md`.",
        "",
        "| run | requests | failed | ambiguous | misrouted | canary on new "
        "| promote -> 100% route s | promote -> unloaded s | latency p50 s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs, 1):
        p50 = (r.get("latency_s") or {}).get("p50")
        lines.append(
            f"| {i} | {r['requests']} | {r['failed']} | {r['ambiguous']} | {r['misrouted']} "
            f"| {r['canary_on_candidate']} of {r['canary_requests']} "
            f"| {r['promote_to_route_s']:.2f} | {r['promote_to_unloaded_s']:.2f} "
            f"| {'-' if p50 is None else f'{p50:.1f}'} |"
        )
    return "\n".join(lines)
