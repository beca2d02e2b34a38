"""A hot swap under load: concurrent clients, a rollout from start to unload, and what it cost.

``run_swap`` drives a running stack (gateway with heartbeats, drift service with the
rollout controller, vLLM): ``clients`` concurrent clients (streaming and not) call the
logical adapter while a candidate is loaded, canaried, promoted (the promote decision
is an operator's, so its time is exact), and the old version drained and unloaded.
Every response is attributed to the version(s) named in its ``model`` field (and the
``x-driftgate-version`` header when the gateway sends one). Used by
``tests/e2e/test_swap.py`` and ``benchmarks/swap/run.py``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import orjson


@dataclass
class Sample:
    client: int
    stream: bool
    start: float
    end: float = 0.0
    status: int = 0
    #: Every version name seen in the response (``model`` fields, version header).
    versions: set[str] = field(default_factory=set)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


async def _one(
    http: httpx.AsyncClient, url: str, key: str, adapter: str, stream: bool, s: Sample, tokens: int
) -> None:
    body = {
        "model": adapter,
        "messages": [{"role": "user", "content": "Say hello to a new customer."}],
        "max_tokens": tokens,
        "temperature": 0,
        "stream": stream,
    }
    headers = {"Authorization": f"Bearer {key}"}
    async with http.stream("POST", url, json=body, headers=headers) as resp:
        s.status = resp.status_code
        header = resp.headers.get("x-driftgate-version")
        if header:
            s.versions.add(header)
        if resp.status_code != 200:
            s.error = (await resp.aread()).decode("utf-8", "replace")[:300]
            return
        if not stream:
            data = orjson.loads(await resp.aread())
            s.versions.add(str(data.get("model")))
            if not data.get("choices"):
                s.error = "no choices"
            return
        done = False
        async for line in resp.aiter_lines():
            if not line.startswith("data: "):
                continue
            payload = line[6:]
            if payload == "[DONE]":
                done = True
                continue
            chunk = orjson.loads(payload)
            if "error" in chunk:
                s.error = str(chunk["error"])[:300]
            elif chunk.get("model"):
                s.versions.add(str(chunk["model"]))
        if not done and s.error is None:
            s.error = "stream ended without [DONE]"


async def _client(
    i: int,
    http: httpx.AsyncClient,
    url: str,
    key: str,
    adapter: str,
    stop: asyncio.Event,
    out: list[Sample],
    tokens: int,
    started: list[Sample],
) -> None:
    n = 0
    while not stop.is_set():
        s = Sample(client=i, stream=(i + n) % 2 == 0, start=time.time())
        started.append(s)  # in start order; ``out`` gets it once it finished
        try:
            await _one(http, url, key, adapter, s.stream, s, tokens)
        except (httpx.HTTPError, ValueError) as exc:
            s.error = f"{type(exc).__name__}: {exc}"
        s.end = time.time()
        out.append(s)
        n += 1


async def _wait_state(
    http: httpx.AsyncClient,
    drift: str,
    rid: int,
    states: set[str],
    limit_s: float,
    admin: dict[str, str],
) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while True:
        r = await http.get(f"{drift}/v1/rollouts/{rid}", headers=admin)
        r.raise_for_status()
        info: dict[str, Any] = r.json()
        if info["state"] in states:
            return info
        if info["state"] == "failed" or time.monotonic() > deadline:
            raise RuntimeError(f"rollout {rid} is {info['state']}: {info['reason']}")
        await asyncio.sleep(0.1)


async def run_swap(
    *,
    gateway_url: str,
    drift_url: str,
    admin_key: str,
    tenant_key: str,
    adapter: str,
    candidate_path: str,
    clients: int = 8,
    canary_weight: float = 0.5,
    canary_s: float = 8.0,
    canary_min: int = 2,
    canary_sample: int = 0,
    warmup_s: float = 3.0,
    tail_s: float = 3.0,
    max_tokens: int = 8,
    timeout_s: float = 180.0,
) -> dict[str, Any]:
    """Run one swap under load; the report (see :func:`summarize`).

    ``canary_sample`` > 0 also holds the canary until the first ``canary_sample``
    requests that started after the canary was seen have finished; the report's
    ``canary_sample`` says which versions answered them. Which requests form that
    sample does not depend on the versions drawn for them, so their count on the
    candidate is binomial with the canary weight (``canary_min`` > 0 would bias it).
    """
    samples: list[Sample] = []
    started: list[Sample] = []
    sample: list[Sample] = []
    stop = asyncio.Event()
    admin = {"Authorization": f"Bearer {admin_key}"}
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0), limits=limits) as http:
        url = gateway_url + "/v1/chat/completions"
        tasks = [
            asyncio.create_task(
                _client(i, http, url, tenant_key, adapter, stop, samples, max_tokens, started)
            )
            for i in range(clients)
        ]
        try:
            await asyncio.sleep(warmup_s)
            r = await http.post(
                f"{drift_url}/v1/rollouts",
                json={"adapter": adapter, "path": candidate_path, "canary_weight": canary_weight},
                headers=admin,
            )
            if r.status_code != 201:
                raise RuntimeError(f"starting the rollout: HTTP {r.status_code} {r.text}")
            rid = int(r.json()["id"])
            canary = await _wait_state(http, drift_url, rid, {"canary"}, timeout_s, admin)
            # Hold the canary for canary_s and until the candidate answered canary_min
            # requests (on a busy CPU one request can take longer than canary_s).
            new = f"{adapter}@{canary['candidate_version']}"
            # With canary_sample, also until that many requests started since have finished.
            since, deadline = time.time(), time.monotonic() + timeout_s
            while True:
                on_new = sum(s.ok and s.start >= since and new in s.versions for s in samples)
                sample = [s for s in started if s.start >= since][:canary_sample]
                if (
                    time.time() - since >= canary_s
                    and on_new >= canary_min
                    and len(sample) == canary_sample
                    and all(s.end for s in sample)
                ):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the canary served no {canary_min} requests"
                        f" (or no sample of {canary_sample}) in time"
                    )
                await asyncio.sleep(0.2)
            decided = time.time()
            r = await http.post(f"{drift_url}/v1/rollouts/{rid}/promote", headers=admin)
            if r.status_code != 200:
                raise RuntimeError(f"promote: HTTP {r.status_code} {r.text}")
            await _wait_state(http, drift_url, rid, {"unloaded"}, timeout_s, admin)
            await asyncio.sleep(tail_s)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        info = (
            (await http.get(f"{drift_url}/v1/rollouts/{rid}", headers=admin))
            .raise_for_status()
            .json()
        )
    return summarize(samples, info, decided, adapter, canary_sample=sample)


def summarize(
    samples: list[Sample],
    info: dict[str, Any],
    decided: float,
    adapter: str,
    *,
    canary_sample: list[Sample] | None = None,
) -> dict[str, Any]:
    """Failures, attribution, routing violations and swap times of one run."""
    ts = {t["to"]: t["ts"] for t in info["transitions"]}
    old = f"{adapter}@{info['serving_version']}"
    new = f"{adapter}@{info['candidate_version']}"
    failed = [s for s in samples if not s.ok]
    ambiguous = [s for s in samples if s.ok and len(s.versions) != 1]
    by_version: dict[str, int] = {}
    for s in samples:
        for v in s.versions:
            by_version[v] = by_version.get(v, 0) + 1
    # Not routed: the candidate before its canary route existed, the old version after the
    # controller had moved 100% away from it (draining is recorded after the route change),
    # anything that is neither version.
    misrouted = [
        s
        for s in samples
        if s.ok
        and (
            (new in s.versions and s.start < ts["loading"])
            or (old in s.versions and s.start > ts["draining"])
            or not s.versions <= {old, new}
        )
    ]
    old_after = [s.start for s in samples if old in s.versions and s.start >= decided]
    canary = [s for s in samples if ts["canary"] <= s.start < ts["promoted"]]
    latencies = sorted(s.end - s.start for s in samples if s.ok)
    after_route = [s for s in samples if s.ok and s.start > ts["draining"]]
    drawn = canary_sample or []
    t0 = ts["candidate"]
    return {
        "requests": len(samples),
        "streaming": sum(s.stream for s in samples),
        "failed": len(failed),
        "failures": [asdict(s) | {"versions": sorted(s.versions)} for s in failed[:5]],
        "ambiguous": len(ambiguous),
        "misrouted": len(misrouted),
        "by_version": by_version,
        "canary_requests": len(canary),
        "canary_on_candidate": sum(new in s.versions for s in canary),
        "canary_weight": info["canary_weight"],
        # the first requests started in the canary, chosen before their versions were drawn
        "canary_sample": {
            "n": len(drawn),
            "ok": sum(s.ok for s in drawn),
            "on_candidate": sum(s.ok and s.versions == {new} for s in drawn),
            "on_serving": sum(s.ok and s.versions == {old} for s in drawn),
        },
        # requests started after the controller recorded the 100% route, by version
        "after_route": {
            "requests": len(after_route),
            "on_old": sum(old in s.versions for s in after_route),
        },
        "old": old,
        "new": new,
        # promote decision (operator's call) -> the controller recorded the 100% route
        "promote_to_route_s": ts["draining"] - decided,
        # promote decision -> the start of the last request any client got from the old version
        "promote_to_last_old_start_s": (max(old_after) - decided) if old_after else 0.0,
        "promote_to_unloaded_s": ts["unloaded"] - decided,
        "latency_s": {
            "p50": latencies[len(latencies) // 2] if latencies else None,
            "max": latencies[-1] if latencies else None,
        },
        "transitions": info["transitions"],
        # every request: start and end (s after the rollout was created) and version
        "samples": [
            (round(s.start - t0, 2), round(s.end - t0, 2), s.stream, sorted(s.versions))
            for s in sorted(samples, key=lambda x: x.start)
        ],
        "outcome": info["outcome"],
    }
