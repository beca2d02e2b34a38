"""Load generators for the gateway benchmark: wrk (saturation, one connection), hey
(fixed request rates) and a streaming time-to-first-token probe.

Each returns plain numbers; the server's CPU seconds are read around the run from
``/proc`` (see ``procs.cpu_seconds``), so "CPU per request" does not count time the
core spent on other processes.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.gateway.procs import cpu_seconds, log, pinned

HERE = Path(__file__).resolve().parent
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if m is None:
        raise ValueError(f"unparsable wrk duration {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class Run:
    """One load run against one target."""

    target: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    #: The offered rate for a fixed-rate run (None: closed loop, as fast as it answers).
    offered_rps: float | None = None
    #: Server CPU seconds (user + system) during the run; None when not measured.
    server_cpu_s: float | None = None

    @property
    def cpu_us_per_request(self) -> float | None:
        if self.server_cpu_s is None or not self.requests:
            return None
        return self.server_cpu_s / self.requests * 1e6

    @property
    def rps_per_core(self) -> float | None:
        """Requests per CPU second: what one core given wholly to the server would serve."""
        return self.requests / self.server_cpu_s if self.server_cpu_s else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cpu_us_per_request"] = self.cpu_us_per_request
        d["rps_per_core"] = self.rps_per_core
        return d


def _grab(pattern: str, text: str) -> str | None:
    """The first group of the first match of a (multi-line) pattern, if any."""
    m = re.search(pattern, text, re.MULTILINE)
    return m.group(1) if m else None


def parse_wrk(text: str) -> dict[str, Any]:
    req = _grab(r"^\s*(\d+) requests in", text)
    rps = _grab(r"^Requests/sec:\s+([\d.]+)", text)
    p50 = _grab(r"^\s+50%\s+(\S+)", text)
    p99 = _grab(r"^\s+99%\s+(\S+)", text)
    if req is None or rps is None or p50 is None or p99 is None:
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    errors = int(_grab(r"Non-2xx or 3xx responses: (\d+)", text) or 0)
    socket_errors = _grab(r"^\s+Socket errors: (.*)$", text)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors))
    return {
        "requests": int(req),
        "rps": float(rps),
        "p50_ms": _ms(p50),
        "p99_ms": _ms(p99),
        "errors": errors,
    }


def parse_hey(text: str) -> dict[str, Any]:
    rps = _grab(r"Requests/sec:\s+([\d.]+)", text)
    p50 = _grab(r"50% in ([\d.]+) secs", text)
    # hey leaves the 99% line out (or prints 0) when a run has few requests: use the slowest
    p99 = _grab(r"99% in ([\d.]+) secs", text) or _grab(r"Slowest:\s+([\d.]+) secs", text)
    codes = re.findall(r"\[(\d{3})\]\s+(\d+) responses", text)
    if rps is None or p50 is None or p99 is None or not codes:
        raise RuntimeError(f"unexpected hey output:\n{text}")
    ok = sum(int(n) for code, n in codes if code.startswith("2"))
    bad = sum(int(n) for code, n in codes if not code.startswith("2"))
    _, _, error_part = text.partition("Error distribution:")
    bad += sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]\s", error_part, re.MULTILINE))
    return {
        "requests": ok + bad,
        "rps": float(rps),
        "p50_ms": float(p50) * 1e3,
        "p99_ms": float(p99) * 1e3,
        "errors": bad,
    }


@dataclass
class Client:
    """Where the load runs (a core) and what every request carries."""

    core: int
    key: str

    def _body(self, model: str, stream: bool = False) -> str:
        extra = ',"stream":true' if stream else ""
        return (
            f'{{"model":"{model}","messages":[{{"role":"user","content":"hello there"}}],'
            f'"max_tokens":16{extra}}}'
        )

    def _measure(
        self,
        target: str,
        tool_argv: list[str],
        env: dict[str, str],
        pid: int | None,
        duration_s: float,
    ) -> tuple[str, float | None]:
        """Run a load tool pinned to the load core: its output and the server's CPU seconds."""
        cpu0 = cpu_seconds(pid) if pid else None
        done = subprocess.run(
            pinned(self.core, tool_argv),
            env=env,
            capture_output=True,
            text=True,
            timeout=duration_s + 60,  # the run itself plus slack for start-up and exit
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{target}: {tool_argv[0]} failed ({done.returncode}): {done.stdout}{done.stderr}"
            )
        cpu = cpu_seconds(pid) - cpu0 if pid and cpu0 is not None else None
        return done.stdout, cpu

    def wrk(
        self,
        target: str,
        url: str,
        model: str,
        connections: int,
        duration_s: float,
        pid: int | None = None,
        key: str | None = None,
    ) -> Run:
        """Closed loop: ``connections`` connections, each sending as soon as answered."""
        argv = [
            *("wrk", "-t1", f"-c{connections}", f"-d{duration_s:g}s", "--latency"),
            *("-s", str(HERE / "chat.lua"), url),
        ]
        env = {**os.environ, "KEY": key or self.key, "MODEL": model}
        out, cpu = self._measure(target, argv, env, pid, duration_s)
        return _logged(Run(target, connections, duration_s, server_cpu_s=cpu, **parse_wrk(out)))

    def hey(
        self,
        target: str,
        url: str,
        model: str,
        rate: float,
        duration_s: float,
        pid: int | None = None,
        key: str | None = None,
        workers: int = 8,
    ) -> Run:
        """Fixed rate: ``workers`` connections, each pacing itself to ``rate / workers``."""
        argv = [
            *("hey", "-z", f"{duration_s:g}s", "-c", str(workers), "-q", f"{rate / workers:g}"),
            *("-m", "POST", "-T", "application/json", "-d", self._body(model)),
            *("-H", f"Authorization: Bearer {key or self.key}", url),
        ]
        out, cpu = self._measure(target, argv, dict(os.environ), pid, duration_s)
        fields = parse_hey(out)
        return _logged(
            Run(target, workers, duration_s, offered_rps=rate, server_cpu_s=cpu, **fields)
        )

    def ttft(self, target: str, url: str, model: str, n: int, key: str | None = None) -> Run:
        """``n`` sequential streaming requests: time to the first content chunk (p50, p99)."""
        # the probe runs in this process: pin it to the load core for its duration
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {self.core})
        try:
            t0 = time.perf_counter()
            times = asyncio.run(self._ttft(url, model, n, key or self.key))
            wall = time.perf_counter() - t0
        finally:
            os.sched_setaffinity(0, before)
        qs = statistics.quantiles(times, n=100, method="inclusive")
        return _logged(
            Run(target, 1, wall, len(times), len(times) / wall, qs[49], qs[98], errors=0), "TTFT"
        )

    async def _ttft(self, url: str, model: str, n: int, key: str) -> list[float]:
        body = self._body(model, stream=True).encode()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        out: list[float] = []
        async with aiohttp.ClientSession() as s:
            for _ in range(n):
                t0 = time.perf_counter()
                first: float | None = None
                async with s.post(url, data=body, headers=headers) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"{url}: HTTP {resp.status}: {await resp.text()}")
                    async for line in resp.content:
                        if first is None and b'"content"' in line:
                            first = time.perf_counter() - t0
                if first is None:
                    raise RuntimeError(f"{url}: no content chunk in the stream")
                out.append(first * 1e3)
        return out


def _logged(r: Run, what: str = "") -> Run:
    """Log a run and hand it back; a run with failed requests is an error, not a result."""
    extra = f", server {r.cpu_us_per_request:.0f} us CPU/request" if r.cpu_us_per_request else ""
    offered = f" at {r.offered_rps:g}/s" if r.offered_rps else f" c{r.connections}"
    log(
        f"{r.target:<12}{offered:<10} {what} {r.rps:8.0f} req/s  p50 {r.p50_ms:7.2f} ms  "
        f"p99 {r.p99_ms:7.2f} ms  errors {r.errors}{extra}"
    )
    if r.errors:
        raise RuntimeError(f"{r.target}: {r.errors} failed requests")
    return r
