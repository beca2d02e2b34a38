"""One serving cell: ``concurrency`` clients stream chat completions; tokens/s and TTFT.

The same function measures vLLM directly and the gateway in front of it: only the URL,
the key and the model names differ, so the ratio of the two is the gateway's cost.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx
import orjson


@dataclass
class RequestSample:
    model: str
    start: float
    first_token: float | None = None
    end: float = 0.0
    tokens: int = 0
    error: str | None = None


@dataclass(frozen=True)
class CellResult:
    """Aggregate of one cell; tokens/s is all completion tokens over the cell's wall time."""

    requests: int
    failed: int
    tokens: int
    wall_s: float
    tok_per_s: float
    ttft_p50_s: float | None
    ttft_max_s: float | None
    errors: list[str] = field(default_factory=list)
    runs: int = 1


def summarize(*runs: Sequence[RequestSample]) -> CellResult:
    """One result from one or more runs of a cell: tokens over the runs' summed wall time,
    the TTFT median over every request of every run."""
    samples = [s for run in runs for s in run]
    ok = [s for s in samples if s.error is None]
    wall = sum((max(s.end for s in run) - min(s.start for s in run)) for run in runs if run)
    tokens = sum(s.tokens for s in ok)
    ttfts = sorted(s.first_token - s.start for s in ok if s.first_token is not None)
    return CellResult(
        requests=len(samples),
        failed=len(samples) - len(ok),
        tokens=tokens,
        wall_s=round(wall, 3),
        tok_per_s=round(tokens / wall, 2) if wall > 0 else 0.0,
        ttft_p50_s=round(statistics.median(ttfts), 4) if ttfts else None,
        ttft_max_s=round(ttfts[-1], 4) if ttfts else None,
        errors=[str(s.error) for s in samples if s.error][:3],
        runs=len(runs),
    )


async def _one(
    http: httpx.AsyncClient,
    url: str,
    key: str,
    s: RequestSample,
    i: int,
    max_tokens: int,
    extra_body: Mapping[str, object],
) -> None:
    body = {
        **extra_body,
        "model": s.model,
        # a different prompt per request: the prefix cache must not make later ones free
        "messages": [{"role": "user", "content": f"Tell me a short story about ticket {i}."}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        # vLLM's extension: every request generates exactly max_tokens
        "ignore_eos": True,
    }
    chunks = 0
    async with http.stream(
        "POST", url, json=body, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        if resp.status_code != 200:
            s.error = f"HTTP {resp.status_code}: {(await resp.aread())[:200]!r}"
            return
        async for line in resp.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = orjson.loads(line[6:])
            if "error" in chunk:
                s.error = str(chunk["error"])[:200]
                return
            choices = chunk.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                chunks += 1
                if s.first_token is None:
                    s.first_token = time.perf_counter()
            usage = chunk.get("usage")
            if usage:
                s.tokens = int(usage.get("completion_tokens") or 0)
    if not s.tokens:
        s.tokens = chunks


async def run_cell(
    base_url: str,
    key: str,
    models: Sequence[str],
    *,
    concurrency: int,
    requests: int,
    max_tokens: int,
    extra_body: Mapping[str, object] | None = None,
) -> list[RequestSample]:
    """``requests`` streamed completions, ``concurrency`` at a time, models in turn;
    ``extra_body``: fields added to every request (e.g. ``logprobs``)."""
    url = base_url.rstrip("/") + "/v1/chat/completions"
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    samples: list[RequestSample] = []
    limits = httpx.Limits(max_connections=concurrency + 2)

    async def worker(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            s = RequestSample(model=models[i % len(models)], start=time.perf_counter())
            try:
                await _one(http, url, key, s, i, max_tokens, extra_body or {})
            except (httpx.HTTPError, ValueError) as exc:
                s.error = f"{type(exc).__name__}: {exc}"
            s.end = time.perf_counter()
            samples.append(s)

    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0), limits=limits) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return samples
