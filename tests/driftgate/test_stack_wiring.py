"""The embedded stack wired to the real services: env names their settings read, the real
gateway's admin API for :func:`create_tenant`, and refusing a port that is already taken.

(Lifecycle tests with stand-in services are in ``test_stack.py``.)
"""

from __future__ import annotations

import http.client
import socket
import sys
import time
from pathlib import Path

import pytest

from driftgate.process import http_probe
from driftgate.settings import EngineSettings, StackSettings
from driftgate.stack import (
    ServiceSpec,
    Stack,
    StackError,
    create_tenant,
    stack_services,
    tenant_key,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http_server(name: str) -> ServiceSpec:
    """Stand-in service: ``python -m http.server`` on a free port."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    return ServiceSpec(
        name=name,
        argv=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        url=url,
        probe=http_probe(url + "/", timeout_s=0.5),
        ready_timeout_s=15,
        stop_grace_s=5,
    )


def test_create_tenant_through_the_real_gateway(tmp_path):
    """The real gateway app (no engine behind it, so readiness is probed on /healthz)."""
    settings = StackSettings(
        home=tmp_path,
        start_engine=False,
        upstreams=[f"http://127.0.0.1:{_free_port()}"],
        gateway_port=_free_port(),
        drift_port=_free_port(),
        admin_key="admin-secret",
    )
    config = stack_services(settings, EngineSettings())
    gw = next(s for s in config.services if s.name == "gateway")
    gw = ServiceSpec(
        name=gw.name,
        argv=gw.argv,
        url=gw.url,
        probe=http_probe(gw.url + "/healthz"),
        env={k: v for k, v in (gw.env or {}).items() if k != "DRIFTGATE_DRIFT_URL"},
        ready_timeout_s=60,
    )
    with Stack([gw], log_dir=config.log_dir):
        tenant, key = create_tenant(gw.url, "admin-secret", "acme")
        assert tenant == "acme"
        assert len(key) >= 16
        with pytest.raises(StackError, match=r"^creating tenant 'other' failed: HTTP 401"):
            create_tenant(gw.url, "wrong-key", "other")
        with pytest.raises(StackError, match=r"^creating tenant 'acme' failed: HTTP 409"):
            create_tenant(gw.url, "admin-secret", "acme")
        # A second `driftgate up` on the same state store: a new key for the same tenant.
        again, key2 = tenant_key(gw.url, "admin-secret", "acme")
        assert again == "acme" and key2 != key
        assert tenant_key(gw.url, "admin-secret", "fresh")[0] == "fresh"
        # An idle keep-alive connection outlives the 5 s that clients' pools keep one idle
        # (uvicorn's default closes it at 5 s: a request sent then fails, as seen in the demo).
        conn = http.client.HTTPConnection("127.0.0.1", int(gw.url.rsplit(":", 1)[1]), timeout=10)
        conn.request("GET", "/healthz")
        assert conn.getresponse().read() is not None
        time.sleep(6.5)
        conn.request("GET", "/healthz")  # the same socket: HTTPConnection reconnects only if closed
        assert conn.getresponse().status == 200
        assert conn.sock is not None
        conn.close()


def test_a_busy_port_is_refused_before_starting(tmp_path: Path):
    with Stack([_http_server("taken")], log_dir=tmp_path / "a") as running:
        first = running.services[0]
        busy = ServiceSpec(
            name="again",
            argv=_http_server("again").argv,
            url=first.url,  # the port the first stand-in serves on
            probe=first.probe,  # would pass against the wrong server
        )
        stack = Stack([busy], log_dir=tmp_path / "b")
        with pytest.raises(StackError, match=r"cannot start again: 127\.0\.0\.1:\d+ is already"):
            stack.start()
        assert stack.processes == {}
        assert not (tmp_path / "b" / "again.log").exists()
