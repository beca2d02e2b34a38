"""Record the served window once: adapter v1 (the demo's cached one) in a real vLLM.

    .venv/bin/python -m benchmarks.loop.record [--stable 2000] [--drifted 1000]
        [--heldout 300] [--concurrency 8] [--engine-url URL]

Tickets from the demo's generator (stable, then shifted; the held-out recovery set from
its own seed) are sent straight to vLLM as the app sends them, greedy, ``max_tokens`` 8,
with ``logprobs`` and ``top_logprobs`` 2 as the gateway asks for them; the answer
confidence is computed by the gateway's own code. Writes ``data/served-window.json.gz``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from benchmarks.loop.window import WINDOW_FILE, ServedRow, ServedWindow, save_window
from benchmarks.suite.contract import cpu_model, loadavg, now_iso
from benchmarks.suite.engine import add_engine_flag, engine_headers, engine_url
from driftgate.core import paths
from driftgate.core.adapters import lora_name
from driftgate.demo.adapter_v1 import ensure_v1
from driftgate.demo.settings import DemoSettings
from driftgate.demo.tickets import Ticket, TicketGenerator
from driftgate.settings import EngineSettings
from gateway.answer_confidence import SIGNAL_TOP_LOGPROBS, answer_confidence

ADAPTER = "support"
#: The traffic's seed and the recovery set's (never sent as traffic).
TRAFFIC_SEED = 1807
HELDOUT_SEED = 1809


def v1_dir() -> Path:
    """The demo's v1, as ``make demo`` trains and caches it."""
    s = DemoSettings()
    path, _ = ensure_v1(
        paths.home() / "demo-cache",
        EngineSettings().model_dir,
        s.v1_examples,
        s.seed,
        epochs=s.v1_epochs,
    )
    return path


def load_adapter(client: httpx.Client, name: str, path: Path) -> None:
    r = client.post("/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(path)})
    if r.status_code >= 400 and "already" not in r.text.lower():
        raise RuntimeError(f"vLLM refused {name}: {r.text[:300]}")


def unload_adapter(client: httpx.Client, name: str) -> None:
    client.post("/v1/unload_lora_adapter", json={"lora_name": name})


def serve_one(client: httpx.Client, model: str, ticket: Ticket) -> ServedRow:
    body: dict[str, Any] = {
        "model": model,
        "messages": ticket.messages(),
        "max_tokens": 8,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": SIGNAL_TOP_LOGPROBS,
    }
    for attempt in range(3):
        try:
            r = client.post("/v1/chat/completions", json=body)
            r.raise_for_status()
            break
        except httpx.HTTPError:
            if attempt == 2:
                raise
            time.sleep(1.0)
    data = r.json()
    answer = str(data["choices"][0]["message"].get("content") or "")
    tally = answer_confidence(data, hide=False)
    return ServedRow.of(ticket, answer, tally.mean_logprob, tally.first_token_margin)


def serve_all(
    client: httpx.Client, model: str, tickets: Sequence[Ticket], concurrency: int, label: str
) -> list[ServedRow]:
    """Answers in ticket order, ``concurrency`` at a time, a progress line every 10%."""
    t0 = time.monotonic()
    out: list[ServedRow] = []
    step = max(1, len(tickets) // 10)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for i, row in enumerate(pool.map(lambda t: serve_one(client, model, t), tickets), 1):
            out.append(row)
            if i % step == 0 or i == len(tickets):
                acc = sum(r.correct for r in out) / len(out)
                rate = i / (time.monotonic() - t0)
                print(
                    f"[record] {label}: {i}/{len(tickets)}, accuracy {acc:.1%}, {rate:.1f} req/s",
                    flush=True,
                )
    return out


def record(
    engine: str, n_stable: int, n_drifted: int, n_heldout: int, concurrency: int
) -> ServedWindow:
    name = lora_name(ADAPTER, 1)
    path = v1_dir()
    gen = TicketGenerator(seed=TRAFFIC_SEED)
    stable = gen.batch(n_stable, shifted=False)
    drifted = gen.batch(n_drifted, shifted=True)
    heldout = TicketGenerator(seed=HELDOUT_SEED).batch(n_heldout, shifted=True)
    t0 = time.monotonic()
    load0 = loadavg()
    with httpx.Client(
        base_url=engine,
        headers=engine_headers(),
        timeout=120.0,
        limits=httpx.Limits(max_connections=concurrency),
    ) as client:
        load_adapter(client, name, path)
        stretches = {
            "stable": serve_all(client, name, stable, concurrency, "stable"),
            "drifted": serve_all(client, name, drifted, concurrency, "drifted"),
            "heldout": serve_all(client, name, heldout, concurrency, "heldout"),
        }
    meta = {
        "date": now_iso(),
        "adapter_v1": path.name,
        "served_as": name,
        "traffic_seed": TRAFFIC_SEED,
        "heldout_seed": HELDOUT_SEED,
        "shift_share": gen.shift_share,
        "follow_up_share": gen.follow_up_share,
        "request": {"max_tokens": 8, "temperature": 0, "top_logprobs": SIGNAL_TOP_LOGPROBS},
        "concurrency": concurrency,
        "wall_s": round(time.monotonic() - t0, 1),
        "cpu": cpu_model(),
        "loadavg_before": load0,
        "loadavg_after": loadavg(),
    }
    return ServedWindow(meta, stretches)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stable", type=int, default=2000)
    ap.add_argument("--drifted", type=int, default=1000)
    ap.add_argument("--heldout", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--out", type=Path, default=WINDOW_FILE)
    add_engine_flag(ap)
    args = ap.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="loopbench-record-") as tmp,
        engine_url(args.engine_url, Path(tmp)) as url,
    ):
        print(f"[record] vLLM at {url}", flush=True)
        window = record(url, args.stable, args.drifted, args.heldout, args.concurrency)
    save_window(window, args.out)
    for name, rows in window.stretches.items():
        acc = sum(r.correct for r in rows) / len(rows)
        print(f"[record] {name}: {len(rows)} requests, v1 accuracy {acc:.1%}", flush=True)
    print(f"[record] wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
