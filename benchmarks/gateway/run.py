"""Benchmark: the gateway's req/s and added latency against a trivial local upstream.

    .venv/bin/python benchmarks/gateway/run.py            # ~10 s per measurement
    .venv/bin/python benchmarks/gateway/run.py --quick    # 2 s runs: does it still work?

Starts ``upstream.py`` (a trivial OpenAI upstream plus an event sink standing in for the
drift service) pinned to the load core, and the real gateway (``uvicorn --factory
gateway.app:create_app_from_env``) pinned to the gateway core with every feature on:
bearer-key auth and a (non-binding) rate limit, a logical adapter routed by weight to a
registered version, Prometheus metrics and request events sent to the sink. Then ``wrk``
on the load core measures, for the upstream directly, the gateway, and a minimal
FastAPI + aiohttp pass-through (the floor of the same stack):

- throughput at saturation (``--connections``, default 32), and the server's CPU seconds
  per request from ``/proc/<pid>/stat`` (robust to a busy machine: it does not count time
  the core spent on other work);
- p50 / p99 latency at one connection; added latency = gateway p50 - direct p50.

Writes ``results.json`` and ``RESULTS.md`` beside this file (``--out-dir`` to change).
Targets (issue "Serving path"): >= 1,400 req/s on one core, <= 1.5 ms added p50 at c1.
Needs Linux, ``wrk`` and ``taskset`` (util-linux) and at least 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BASE_MODEL = "SmolLM2-135M-Instruct"
ADMIN_KEY = "bench-admin-key"
ADAPTER = "bench"
TARGET_RPS = 1400.0
TARGET_ADDED_P50_MS = 1.5


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- machine -----------------------------------------------------------------------------


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (``/proc/<pid>/stat`` fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(max_load: float, max_wait_s: float, poll_s: float = 30.0) -> list[float]:
    """Wait until the 1-minute load average is at most ``max_load`` (or give up)."""
    deadline = time.monotonic() + max_wait_s
    while True:
        load = loadavg()
        if load[0] <= max_load:
            log(f"load average {load} <= {max_load}: measuring")
            return load
        if time.monotonic() >= deadline:
            log(f"load average {load} still above {max_load}: measuring anyway (recorded)")
            return load
        log(f"load average {load} above {max_load}: waiting {poll_s:.0f} s")
        time.sleep(poll_s)


# -- processes ---------------------------------------------------------------------------


@contextmanager
def process(
    name: str, argv: list[str], log_path: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` in its own process group; stop it (TERM, then KILL) however we leave."""
    log(f"start {name}: {shlex.join(argv)}")
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=dict(env or os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log(f"stopped {name} (exit {proc.returncode})")


def wait_http(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout_s:.0f} s:\n{log_path.read_text()}")


def wait_port(port: int, proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"port {port}: process exited {proc.returncode}:\n{log_path.read_text()}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"port {port} not open after {timeout_s:.0f} s:\n{log_path.read_text()}")


def pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv]


# -- wrk ---------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if m is None:
        raise ValueError(f"unparsable wrk duration {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class WrkResult:
    target: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    #: Server CPU seconds used during the run (user + system), None for wrk-only runs.
    server_cpu_s: float | None = None

    @property
    def cpu_us_per_request(self) -> float | None:
        if self.server_cpu_s is None or not self.requests:
            return None
        return self.server_cpu_s / self.requests * 1e6

    @property
    def rps_per_core(self) -> float | None:
        """Requests per CPU second: what one core fully given to the server would serve."""
        if not self.server_cpu_s:
            return None
        return self.requests / self.server_cpu_s

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cpu_us_per_request"] = self.cpu_us_per_request
        d["rps_per_core"] = self.rps_per_core
        return d


def parse_wrk(text: str) -> dict[str, Any]:
    def grab(pattern: str) -> str | None:
        m = re.search(pattern, text, re.MULTILINE)
        return m.group(1) if m else None

    req = grab(r"^\s*(\d+) requests in")
    rps = grab(r"^Requests/sec:\s+([\d.]+)")
    p50 = grab(r"^\s+50%\s+(\S+)")
    p99 = grab(r"^\s+99%\s+(\S+)")
    if req is None or rps is None or p50 is None or p99 is None:
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    socket_errors = 0
    errs = grab(r"^\s+Socket errors: (.*)$")
    if errs:
        socket_errors = sum(int(n) for n in re.findall(r"\d+", errs))
    return {
        "requests": int(req),
        "rps": float(rps),
        "p50_ms": _ms(p50),
        "p99_ms": _ms(p99),
        "non_2xx": int(grab(r"Non-2xx or 3xx responses: (\d+)") or 0),
        "socket_errors": socket_errors,
    }


@dataclass
class Wrk:
    core: int
    script: Path
    key: str

    def argv(self, url: str, connections: int, duration_s: float) -> list[str]:
        return pinned(
            self.core,
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{duration_s:g}s",
                "--latency",
                "-s",
                str(self.script),
                url,
            ],
        )

    def run(
        self,
        target: str,
        url: str,
        model: str,
        connections: int,
        duration_s: float,
        server_pid: int | None = None,
    ) -> WrkResult:
        env = {**os.environ, "KEY": self.key, "MODEL": model}
        cpu0 = cpu_seconds(server_pid) if server_pid else None
        done = subprocess.run(
            self.argv(url, connections, duration_s),
            env=env,
            capture_output=True,
            text=True,
            timeout=duration_s + 60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
        out = done.stdout
        cpu = cpu_seconds(server_pid) - cpu0 if server_pid and cpu0 is not None else None
        r = WrkResult(target, connections, duration_s, server_cpu_s=cpu, **parse_wrk(out))
        extra = ""
        if r.cpu_us_per_request is not None:
            extra = f", server {r.cpu_us_per_request:.0f} us CPU/request"
        log(
            f"{target:<12} c{connections:<3} {r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
            f"p99 {r.p99_ms:6.2f} ms  non-2xx {r.non_2xx}  socket errors {r.socket_errors}{extra}"
        )
        if r.non_2xx or r.socket_errors:
            raise RuntimeError(f"{target}: {r.non_2xx} non-2xx, {r.socket_errors} socket errors")
        return r


# -- the gateway's control plane -----------------------------------------------------------


def setup_gateway(url: str, tmp: Path) -> str:
    """Create a tenant and route the logical adapter ``bench`` to its version 1: the API key."""
    peft = tmp / "adapter"
    peft.mkdir()
    (peft / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "r": 8,
                "lora_alpha": 16,
                "target_modules": ["q_proj", "v_proj"],
                "base_model_name_or_path": f"/models/{BASE_MODEL}",
            }
        )
    )
    (peft / "adapter_model.safetensors").write_bytes(b"\0" * 16)  # the upstream never reads it
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
        r = c.post(
            "/admin/tenants",
            json={
                "name": "bench",
                "adapters": ["*"],
                "max_tokens": 64,
                # on, but never binding: every request still goes through the token bucket
                "rate_limit_rps": 1_000_000,
                "burst": 1_000_000,
            },
        )
        r.raise_for_status()
        key = str(r.json()["api_key"])
        r = c.post(f"/admin/adapters/{ADAPTER}/versions", json={"path": str(peft)}, timeout=30)
        r.raise_for_status()
        version = int(r.json()["version"])
        c.put(f"/admin/routes/{ADAPTER}", json={"weights": {str(version): 1.0}}).raise_for_status()
        r = c.post(
            "/v1/chat/completions",
            json={"model": ADAPTER, "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {key}"},
        )
        r.raise_for_status()
        if r.json()["model"] != f"{ADAPTER}@{version}":
            raise RuntimeError(f"not routed to {ADAPTER}@{version}: {r.text}")
    return key


def gateway_counters(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=5).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        for name in (
            "driftgate_gateway_requests_total",
            "driftgate_gateway_events_sent_total",
            "driftgate_gateway_events_dropped_total",
        ):
            if line.startswith(name + "{") or line.startswith(name + " "):
                out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


# -- report ------------------------------------------------------------------------------


def verdicts(res: dict[str, Any]) -> list[str]:
    gw_sat, gw_c1 = res["gateway"]["saturation"], res["gateway"]["c1"]
    rps, per_core = gw_sat["rps"], gw_sat["rps_per_core"]
    added = res["added_p50_ms"]
    lines = []
    if rps >= TARGET_RPS:
        lines.append(
            f"- throughput: **met**: {rps:.0f} req/s on one pinned core >= {TARGET_RPS:.0f}."
        )
    elif per_core and per_core >= TARGET_RPS:
        lines.append(
            f"- throughput: **met on CPU time only**: the gateway needs "
            f"{gw_sat['cpu_us_per_request']:.0f} us of CPU per request, i.e. {per_core:.0f} req/s "
            f"for a core of its own (>= {TARGET_RPS:.0f}), but wall clock gave {rps:.0f} req/s "
            "because its core was shared (see the load average)."
        )
    else:
        lines.append(
            f"- throughput: **MISSED**: {rps:.0f} req/s wall clock, {per_core or 0:.0f} req/s per "
            f"fully used core ({gw_sat['cpu_us_per_request']:.0f} us CPU/request; the target "
            f"needs <= {1e6 / TARGET_RPS:.0f} us)."
        )
    verdict = "met" if added <= TARGET_ADDED_P50_MS else "MISSED"
    lines.append(
        f"- added latency: **{verdict}**: gateway p50 {gw_c1['p50_ms']:.2f} ms - direct p50 "
        f"{res['direct']['c1']['p50_ms']:.2f} ms = {added:.2f} ms (target <= "
        f"{TARGET_ADDED_P50_MS} ms)."
    )
    floor = res.get("passthrough")
    if floor and floor["saturation"]["cpu_us_per_request"] and gw_sat["cpu_us_per_request"]:
        f_us, g_us = floor["saturation"]["cpu_us_per_request"], gw_sat["cpu_us_per_request"]
        budget_us = 1e6 / TARGET_RPS
        f_added = floor["c1"]["p50_ms"] - res["direct"]["c1"]["p50_ms"]
        lines.append(
            f"- cost breakdown: a minimal FastAPI + aiohttp pass-through with no features "
            f"(same server, framework and client) costs {f_us:.0f} us CPU/request "
            f"({1e6 / f_us:.0f} req/s per core) and adds {f_added:.2f} ms p50 at c1; the "
            f"gateway's features (auth, rate limit, routing, metrics, events) add "
            f"{g_us - f_us:.0f} us CPU/request ({(g_us / f_us - 1) * 100:.0f}%) and "
            f"{added - f_added:.2f} ms p50."
        )
        if f_us > budget_us:
            lines.append(
                f"- what limits it: the stack itself. Even with no features, uvicorn + "
                f"Starlette + one aiohttp round trip per request cost more than the "
                f"{budget_us:.0f} us/request the throughput target allows on one core; reaching "
                "it needs a cheaper server stack or more worker processes/cores, not only "
                "cheaper gateway features."
            )
        elif g_us > budget_us:
            lines.append(
                f"- what limits it: the gateway's features. The stack alone fits the "
                f"{budget_us:.0f} us/request budget; the features must shed "
                f"{g_us - budget_us:.0f} us/request to meet it."
            )
        if added > TARGET_ADDED_P50_MS and f_added > TARGET_ADDED_P50_MS:
            lines.append(
                "- the added-latency target is missed by the bare stack too: one extra HTTP "
                "hop through uvicorn and aiohttp costs more than the target at c1 here."
            )
    return lines


def render_md(res: dict[str, Any]) -> str:
    m = res["machine"]
    rows = []
    for target in ("direct", "passthrough", "gateway"):
        if target not in res:
            continue
        s, c1 = res[target]["saturation"], res[target]["c1"]
        per_core = f"{s['rps_per_core']:.0f}" if s["rps_per_core"] else "-"
        cpu = f"{s['cpu_us_per_request']:.0f}" if s["cpu_us_per_request"] else "-"
        rows.append(
            f"| {target} | {s['rps']:.0f} | {cpu} | {per_core} | {c1['p50_ms']:.2f} | "
            f"{c1['p99_ms']:.2f} | {c1['rps']:.0f} |"
        )
    r = res["ratios"]
    caveat = ""
    if max(m["loadavg_before"][0], m["loadavg_after"][0]) > res["config"]["max_load"]:
        caveat = (
            f"\n**Caveat: the machine was busy** (1-minute load average "
            f"{m['loadavg_before'][0]:.2f} before, {m['loadavg_after'][0]:.2f} after, on "
            f"{m['nproc']} cores). Wall-clock req/s and latencies are pessimistic. The CPU-time "
            "columns do not count time the core spent on other work, but they are not immune "
            "either: shared caches and, on a VM, stolen time inflate them too (a run at load "
            "~3 measured up to ~30% more CPU per request than a quiet one).\n"
        )
    sat_c = res["config"]["connections"]
    return "\n".join(
        [
            "# Gateway benchmark",
            "",
            f"Recorded {res['date']} by `benchmarks/gateway/run.py`"
            + (" (**quick mode**: 2 s runs, not a measurement)" if res["config"]["quick"] else "")
            + ".",
            "",
            "```",
            res["command"],
            "```",
            "",
            f"- machine: {m['nproc']} cores, {m['cpu_model']}, {m['platform']}, Python "
            f"{m['python']}",
            f"- load average (1, 5, 15 min): before {m['loadavg_before']}, after "
            f"{m['loadavg_after']}",
            f"- gateway pinned to core {res['config']['gateway_core']}; upstream, event sink and "
            f"wrk on core {res['config']['load_core']}; {res['config']['duration_s']:g} s per run "
            f"after a warm-up",
            "- gateway: `uvicorn --factory gateway.app:create_app_from_env` (uvloop, httptools), "
            "auth + rate limit on, logical adapter `bench` routed to version 1, metrics on, "
            f"request events to the sink ({res['events']['received_by_sink']} received, "
            f"{res['events']['dropped']:.0f} dropped)",
            caveat,
            f"| target | req/s c{sat_c} | server CPU us/req | req/s per core (CPU time) | "
            "p50 ms c1 | p99 ms c1 | req/s c1 |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Gateway vs direct: throughput {r['rps']:.2f}x, p50 at c1 {r['p50_c1']:.2f}x, "
            f"added p50 {res['added_p50_ms']:.2f} ms, added p99 {res['added_p99_ms']:.2f} ms.",
            "",
            f'Targets (issue "Serving path"): >= {TARGET_RPS:.0f} req/s on one core, <= '
            f"{TARGET_ADDED_P50_MS} ms added p50 at one connection.",
            "",
            *verdicts(res),
            "",
            '"direct" is wrk against the trivial upstream (`upstream.py`), whose CPU is on the '
            'load core with wrk; "passthrough" is `passthrough.py`, the same stack as the '
            "gateway without any feature, pinned like the gateway. Raw numbers: `results.json`.",
            "",
        ]
    )


# -- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 s runs, no waiting for a quiet machine")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    ap.add_argument("--connections", type=int, default=32, help="connections at saturation")
    ap.add_argument("--gateway-core", type=int, default=0)
    ap.add_argument("--load-core", type=int, default=1)
    ap.add_argument("--max-load", type=float, default=1.5, help="wait for a 1-min load <= this")
    ap.add_argument("--max-wait", type=float, default=1200.0, help="longest wait for it (s)")
    ap.add_argument("--no-passthrough", action="store_true", help="skip the stack-floor run")
    ap.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where results.json and RESULTS.md go (default: beside this file; with --quick: "
        "$TMPDIR/driftgate-gateway-bench, so a smoke run never overwrites recorded results)",
    )
    args = ap.parse_args(argv)
    duration = 2.0 if args.quick else args.duration
    if args.out_dir is None:
        args.out_dir = (
            Path(tempfile.gettempdir()) / "driftgate-gateway-bench" if args.quick else HERE
        )
    warmup = 1.0 if args.quick else 2.0
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            ap.error(f"{tool} not found (Debian: apt-get install wrk util-linux)")
    if len({args.gateway_core, args.load_core}) != 2:
        ap.error("--gateway-core and --load-core must differ")
    exe = Path(sys.executable)
    py_shown = os.path.relpath(exe, ROOT) if exe.is_relative_to(ROOT) else str(exe)
    command = shlex.join([py_shown, "benchmarks/gateway/run.py", *sys.argv[1:]])
    # unwind (and stop every process started) on SIGTERM too, not only on Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    load_before = loadavg() if args.quick else wait_for_quiet(args.max_load, args.max_wait)
    res: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": command,
        "machine": {
            "nproc": os.cpu_count(),
            "cpu_model": cpu_model(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_before": load_before,
        },
        "config": {
            "quick": args.quick,
            "duration_s": duration,
            "warmup_s": warmup,
            "connections": args.connections,
            "gateway_core": args.gateway_core,
            "load_core": args.load_core,
            "max_load": args.max_load,
        },
    }
    up_port, sink_port, gw_port, pt_port = (free_port() for _ in range(4))
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="dg-gwbench-") as tmp_s, ExitStack() as stack:
        tmp = Path(tmp_s)
        up_log = tmp / "upstream.log"
        up = stack.enter_context(
            process(
                "upstream + event sink",
                pinned(
                    args.load_core,
                    [
                        py,
                        str(HERE / "upstream.py"),
                        "--port",
                        str(up_port),
                        "--sink-port",
                        str(sink_port),
                        "--base-model",
                        BASE_MODEL,
                    ],
                ),
                up_log,
            )
        )
        upstream = f"http://127.0.0.1:{up_port}"
        sink = f"http://127.0.0.1:{sink_port}"
        wait_http(upstream + "/health", up, up_log, 30)
        wait_http(sink + "/healthz", up, up_log, 30)

        gw_env = {
            **os.environ,
            "DRIFTGATE_GATEWAY_UPSTREAMS": json.dumps([upstream]),
            "DRIFTGATE_GATEWAY_BASE_MODEL": BASE_MODEL,
            "DRIFTGATE_GATEWAY_ADMIN_KEY": ADMIN_KEY,
            "DRIFTGATE_GATEWAY_STATE_URL": f"sqlite:///{tmp / 'state.db'}",
            "DRIFTGATE_GATEWAY_DRIFT_URL": sink,
        }
        gw_argv = [
            py,
            "-m",
            "uvicorn",
            "--factory",
            "gateway.app:create_app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(gw_port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ]
        gw_log = tmp / "gateway.log"
        gw = stack.enter_context(
            process("gateway", pinned(args.gateway_core, gw_argv), gw_log, gw_env)
        )
        gateway = f"http://127.0.0.1:{gw_port}"
        wait_http(gateway + "/readyz", gw, gw_log, 60)
        key = setup_gateway(gateway, tmp)
        log("tenant created, adapter 'bench' routed to version 1, events on")

        wrk = Wrk(args.load_core, HERE / "chat.lua", key)
        chat = "/v1/chat/completions"
        served = f"{ADAPTER}--v1"
        targets: list[tuple[str, str, str, int | None]] = [
            ("direct", upstream + chat, served, None),
            ("gateway", gateway + chat, ADAPTER, gw.pid),
        ]
        if not args.no_passthrough:
            pt_log = tmp / "passthrough.log"
            pt = stack.enter_context(
                process(
                    "pass-through",
                    pinned(
                        args.gateway_core,
                        [
                            py,
                            str(HERE / "passthrough.py"),
                            "--port",
                            str(pt_port),
                            "--upstream",
                            upstream,
                        ],
                    ),
                    pt_log,
                )
            )
            wait_port(pt_port, pt, pt_log, 60)
            targets.insert(1, ("passthrough", f"http://127.0.0.1:{pt_port}{chat}", served, pt.pid))
        for name, url, model, _ in targets:
            wrk.run(f"{name} (warm)", url, model, args.connections, warmup)
        for kind, conns in (("saturation", args.connections), ("c1", 1)):
            for name, url, model, pid in targets:
                r = wrk.run(name, url, model, conns, duration, server_pid=pid)
                res.setdefault(name, {})[kind] = r.as_dict()
                if gw.poll() is not None:
                    raise RuntimeError(f"gateway exited {gw.returncode}:\n{gw_log.read_text()}")

        time.sleep(1.5)  # let the gateway flush its last event batch
        counters = gateway_counters(gateway)
        received = int(httpx.get(sink + "/count", timeout=5).json()["events"])
        res["events"] = {
            "gateway_requests": counters.get("driftgate_gateway_requests_total", 0.0),
            "sent": counters.get("driftgate_gateway_events_sent_total", 0.0),
            "dropped": counters.get("driftgate_gateway_events_dropped_total", 0.0),
            "received_by_sink": received,
        }
        log(f"events: {res['events']}")

    res["machine"]["loadavg_after"] = loadavg()
    d, g = res["direct"], res["gateway"]
    res["added_p50_ms"] = g["c1"]["p50_ms"] - d["c1"]["p50_ms"]
    res["added_p99_ms"] = g["c1"]["p99_ms"] - d["c1"]["p99_ms"]
    res["ratios"] = {
        "rps": g["saturation"]["rps"] / d["saturation"]["rps"],
        "p50_c1": g["c1"]["p50_ms"] / d["c1"]["p50_ms"],
        "p99_c1": g["c1"]["p99_ms"] / d["c1"]["p99_ms"],
    }
    res["targets"] = {
        "rps": TARGET_RPS,
        "added_p50_ms": TARGET_ADDED_P50_MS,
        "rps_met": g["saturation"]["rps"] >= TARGET_RPS,
        "rps_per_core_met": (g["saturation"]["rps_per_core"] or 0) >= TARGET_RPS,
        "added_p50_met": res["added_p50_ms"] <= TARGET_ADDED_P50_MS,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    md = render_md(res)
    (args.out_dir / "RESULTS.md").write_text(md)
    log(f"wrote {args.out_dir / 'results.json'} and {args.out_dir / 'RESULTS.md'}")
    print("\n".join(verdicts(res)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
