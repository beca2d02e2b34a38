"""One supervised child process: own process group, log file, readiness probe, stop.

:class:`ManagedProcess` starts a command in a new session (so it and every
child it spawns share a process group the supervisor can signal at once),
appends its output to a log file, waits until a readiness probe passes, and
stops the whole group: SIGTERM (leader first), then SIGKILL after a grace period. If the
process exits before it is ready, :class:`ProcessStartError` quotes the tail
of its log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

Probe = Callable[[], bool]

LOG_TAIL_LINES = 30


class ProcessStartError(RuntimeError):
    """A supervised process exited early or did not become ready in time."""


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' when unreadable)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def http_probe(url: str, timeout_s: float = 2.0) -> Probe:
    """A probe that passes when ``GET url`` answers 200."""

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=timeout_s).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


class ManagedProcess:
    """A child process in its own process group, with a log file and a readiness probe.

    Use as a context manager (start, wait until ready, stop on exit) or call
    :meth:`start`, :meth:`wait_ready` and :meth:`stop` yourself.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        probe: Probe,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ready_timeout_s: float = 60.0,
        stop_grace_s: float = 10.0,
        poll_interval_s: float = 0.5,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.probe = probe
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.ready_timeout_s = ready_timeout_s
        self.stop_grace_s = stop_grace_s
        self.poll_interval_s = poll_interval_s
        self._proc: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None
        self.ready_after_s: float | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError(f"{self.name} was already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- driftgate: starting {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ProcessStartError(f"{self.name}: cannot start {self.argv[0]}: {exc}") from exc
        self.started_at = time.monotonic()

    def wait_ready(self) -> float:
        """Block until the probe passes; return seconds since start."""
        if self._proc is None or self.started_at is None:
            raise RuntimeError(f"{self.name} was not started")
        deadline = self.started_at + self.ready_timeout_s
        while True:
            code = self._proc.poll()
            if code is not None:
                raise ProcessStartError(
                    f"{self.name} exited with code {code} before it was ready; "
                    f"last lines of {self.log_path}:\n{log_tail(self.log_path)}"
                )
            if self.probe():
                self.ready_after_s = time.monotonic() - self.started_at
                return self.ready_after_s
            if time.monotonic() >= deadline:
                raise ProcessStartError(
                    f"{self.name} was not ready within {self.ready_timeout_s:g} s; "
                    f"last lines of {self.log_path}:\n{log_tail(self.log_path)}"
                )
            time.sleep(self.poll_interval_s)

    def wait_exit(self) -> int:
        """Block until the process exits; return its exit code."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} was not started")
        return self._proc.wait()

    def stop(self) -> int | None:
        """Stop the process and everything in its group; return the leader's exit code.

        SIGTERM goes to the leader first, so a server that manages children (vLLM's
        API server and its engine core) shuts them down in order; SIGTERM to the whole
        group at once makes vLLM log a spurious ``EngineDeadError``. After the grace
        period the group gets SIGKILL; children that outlived their leader get SIGTERM,
        then SIGKILL after another grace period.
        """
        proc = self._proc
        if proc is None:
            return None
        pgid = proc.pid  # start_new_session: the leader's pid is the group id
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(pgid, signal.SIGKILL)
                proc.wait()
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_grace_s
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _group_alive(pgid):
                _signal_group(pgid, signal.SIGKILL)
        return proc.returncode

    def __enter__(self) -> ManagedProcess:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process is in the group.

    Zombies count as gone: in a container whose PID 1 does not reap orphans they
    would otherwise make every stop wait for the whole grace period.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
        fields = text[text.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
