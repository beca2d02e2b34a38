"""The supervised process: readiness, log tail, and stopping whole process groups.

The commands are stand-ins (Python one-liners and ``python -m http.server``),
not the services: they make a process exit early, hang, ignore SIGTERM or
leave a grandchild behind on purpose.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from driftgate.process import ManagedProcess, ProcessStartError, _group_alive, http_probe, log_tail


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _server(tmp_path: Path, prelude: str = "", **kw: object) -> tuple[ManagedProcess, int]:
    port = _free_port()
    code = (
        f"{prelude}\nimport http.server, functools\n"
        "h = functools.partial(http.server.SimpleHTTPRequestHandler, directory='.')\n"
        f"http.server.ThreadingHTTPServer(('127.0.0.1', {port}), h).serve_forever()"
    )
    proc = ManagedProcess(
        "standin",
        [sys.executable, "-c", code],
        log_path=tmp_path / "standin.log",
        probe=http_probe(f"http://127.0.0.1:{port}/"),
        cwd=tmp_path,
        ready_timeout_s=20,
        poll_interval_s=0.1,
        **kw,  # type: ignore[arg-type]
    )
    return proc, port


def test_ready_then_stopped_with_its_group(tmp_path):
    proc, _ = _server(tmp_path)
    with proc:
        assert proc.running()
        assert proc.ready_after_s is not None
        pid = proc.pid
        assert pid is not None and os.getpgid(pid) == pid  # its own process group
    assert not proc.running()
    assert proc.returncode == -signal.SIGTERM
    assert not _group_alive(pid)
    assert "--- driftgate: starting standin" in (tmp_path / "standin.log").read_text()


def test_grandchildren_are_stopped_too(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    prelude = (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))"
    )
    proc, _ = _server(tmp_path, prelude)
    with proc:
        grandchild = int(pidfile.read_text())
        assert _alive(grandchild)
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_sigterm_ignored_means_sigkill_after_grace(tmp_path):
    prelude = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)"
    proc, _ = _server(tmp_path, prelude, stop_grace_s=0.5)
    proc.start()
    proc.wait_ready()
    t0 = time.monotonic()
    assert proc.stop() == -signal.SIGKILL
    assert 0.4 < time.monotonic() - t0 < 5


def test_early_exit_error_quotes_the_log(tmp_path):
    proc = ManagedProcess(
        "crasher",
        [sys.executable, "-c", "import sys; print('boom: bad config', flush=True); sys.exit(4)"],
        log_path=tmp_path / "logs" / "crasher.log",
        probe=lambda: False,
        poll_interval_s=0.05,
    )
    with pytest.raises(ProcessStartError) as info, proc:
        pass
    msg = str(info.value)
    assert msg.splitlines()[0].startswith("crasher exited with code 4 before it was ready")
    assert "boom: bad config" in msg


def test_timeout_error_and_process_is_stopped(tmp_path):
    proc = ManagedProcess(
        "sleeper",
        [sys.executable, "-c", "import time; time.sleep(60)"],
        log_path=tmp_path / "sleeper.log",
        probe=lambda: False,
        ready_timeout_s=0.5,
        poll_interval_s=0.05,
    )
    with pytest.raises(ProcessStartError, match=r"sleeper was not ready within 0\.5 s"), proc:
        pass
    assert not proc.running()


def test_missing_executable_is_a_start_error(tmp_path):
    proc = ManagedProcess(
        "ghost", ["/nonexistent/bin/x"], log_path=tmp_path / "g.log", probe=lambda: True
    )
    with pytest.raises(ProcessStartError, match="ghost: cannot start /nonexistent/bin/x"):
        proc.start()


def test_stop_before_start_and_twice_is_harmless(tmp_path):
    proc, _ = _server(tmp_path)
    assert proc.stop() is None
    with proc:
        pass
    assert proc.stop() == -signal.SIGTERM


def test_log_tail(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert log_tail(log, 3) == "line 97\nline 98\nline 99"
    assert log_tail(tmp_path / "missing.log") == ""
