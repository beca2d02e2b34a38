"""Processes for the gateway benchmark: start pinned, wait until ready, CPU time and RSS."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv]


def _tree(pid: int) -> list[psutil.Process]:
    p = psutil.Process(pid)
    return [p, *p.children(recursive=True)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (a server's workers)."""
    total = 0.0
    for p in _tree(pid):
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children, MiB."""
    total = 0
    for p in _tree(pid):
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def wait_for_quiet(max_load: float, max_wait_s: float, poll_s: float = 30.0) -> None:
    """Wait until the 1-minute load average is at most ``max_load`` (or give up)."""
    deadline = time.monotonic() + max_wait_s
    while True:
        load = os.getloadavg()[0]
        if load <= max_load:
            log(f"1-min load average {load:.2f} <= {max_load}: measuring")
            return
        if time.monotonic() >= deadline:
            log(f"1-min load average {load:.2f} still above {max_load}: measuring anyway")
            return
        log(f"1-min load average {load:.2f} above {max_load}: waiting {poll_s:.0f} s")
        time.sleep(poll_s)


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
    """Wait until ``url`` answers 200 (and fail early if the process died)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout_s:.0f} s:\n{log_path.read_text()}")
