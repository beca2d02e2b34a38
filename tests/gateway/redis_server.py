"""Redis for the shared-limits tests: the suite's one, or a private one a test may stop.

``DRIFTGATE_TEST_REDIS_URL`` (scripts/start_test_redis.sh) serves the tests that only
use Redis; a test that stops Redis mid-way starts its own ``redis-server`` (Debian's
package) so it never disturbs the shared one. Either missing skips the test, and fails
it under CI (tests/real_parts.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from tests.real_parts import skip_or_fail

_START_BOUND_S = 10.0


def shared_redis_url() -> str:
    return os.environ.get("DRIFTGATE_TEST_REDIS_URL") or skip_or_fail(
        "no Redis: set DRIFTGATE_TEST_REDIS_URL (scripts/start_test_redis.sh)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    """A ``redis-server`` on a free port in ``root``, no persistence; stop and start again."""

    def __init__(self, root: Path) -> None:
        binary = shutil.which("redis-server") or skip_or_fail(
            "no redis-server (apt-get install redis-server; scripts/start_test_redis.sh)"
        )
        self._binary = binary
        self._root = root
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisProcess:
        args = ["--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self._root)]
        self._proc = subprocess.Popen(
            [self._binary, *args, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        deadline = time.monotonic() + _START_BOUND_S
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(_START_BOUND_S)
            self._proc = None
