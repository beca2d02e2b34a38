"""Loopback proxies that stand in for Service IPs and enforce the NetworkPolicies.

Each (calling pod, Service, port) gets its own listen port, wired into that caller's
environment, so a connection's listen port says who is calling. On every connection the
proxy picks a ready endpoint of the Service (round robin, as kube-proxy would), asks the
policy evaluator whether the caller may reach that pod on that container port, records
the flow, and either pipes the bytes or closes the connection at once (a dropped flow;
the caller sees a reset, where a cluster would let it time out).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.deploy.policy import Endpoint, Verdict, evaluate


@dataclass(frozen=True)
class Backend:
    """A ready endpoint: the pod (for the policy check) and where it listens locally."""

    endpoint: Endpoint
    container_port: int
    local_port: int


@dataclass(frozen=True)
class Flow:
    caller: str
    service: str
    port: int
    pod: str
    allowed: bool
    reason: str
    #: No endpoint to send it to (not a policy decision): refused like a closed port.
    unrouted: bool = False


@dataclass(frozen=True)
class Route:
    caller: Endpoint
    service: str
    port: int
    #: The Service's ready endpoints right now (a headless pod name: just that pod).
    backends: Callable[[], Sequence[Backend]]


@dataclass
class FlowLog:
    """Every connection the proxies saw, thread-safe."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _flows: list[Flow] = field(default_factory=list)

    def add(self, flow: Flow) -> None:
        with self._lock:
            self._flows.append(flow)

    def flows(self) -> list[Flow]:
        with self._lock:
            return list(self._flows)

    def dropped(self) -> list[Flow]:
        """Flows the NetworkPolicies would drop."""
        return [f for f in self.flows() if not f.allowed and not f.unrouted]

    def summary(self) -> list[str]:
        counts = Counter((f.caller, f.service, f.port, f.pod, _verdict(f)) for f in self.flows())
        return [
            f"{caller} -> {svc}:{port} ({pod}) x{n} {verdict}"
            for (caller, svc, port, pod, verdict), n in sorted(counts.items())
        ]


def _verdict(flow: Flow) -> str:
    if flow.unrouted:
        return f"refused: {flow.reason}"
    return "allowed" if flow.allowed else f"DROPPED: {flow.reason}"


class PolicyProxy:
    """An event loop in a thread serving every route's listen port."""

    def __init__(self, policies: Sequence[dict[str, Any]], log: FlowLog) -> None:
        self._policies = list(policies)
        self.log = log
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.base_events.Server] = []
        self._counter = itertools.count()
        self._thread.start()

    def verdict(self, caller: Endpoint, backend: Backend) -> Verdict:
        return evaluate(self._policies, caller, backend.endpoint, backend.container_port)

    def add_route(self, route: Route) -> int:
        """Listen for ``route`` on a free loopback port; return the port."""

        async def start() -> int:
            server = await asyncio.start_server(
                lambda r, w: self._handle(route, r, w), "127.0.0.1", 0
            )
            self._servers.append(server)
            return int(server.sockets[0].getsockname()[1])

        return asyncio.run_coroutine_threadsafe(start(), self._loop).result(timeout=10)

    async def _handle(
        self, route: Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        name = f"{route.caller.name}"
        backends = route.backends()
        if not backends:
            self.log.add(
                Flow(name, route.service, route.port, "-", False, "no endpoint", unrouted=True)
            )
            writer.close()
            return
        backend = backends[next(self._counter) % len(backends)]
        verdict = self.verdict(route.caller, backend)
        self.log.add(
            Flow(
                name,
                route.service,
                route.port,
                backend.endpoint.name,
                verdict.allowed,
                verdict.reason,
            )
        )
        if not verdict.allowed:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend.local_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
