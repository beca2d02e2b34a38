"""vLLM replicas: health and ``/v1/models`` polling, LoRA load/unload, reconciliation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
import orjson

from driftgate.core.adapters import parse_lora_name
from gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

_JSON = {"Content-Type": "application/json"}
#: The outcome label of ``driftgate_gateway_adapter_loads_total``.
LOAD_OUTCOMES = ("ok", "failed")


def replica_name(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


@dataclass(slots=True, eq=False)
class Replica:
    """Live state of one vLLM replica (mutated only by the pool and the upstream client)."""

    url: str
    name: str
    healthy: bool = False
    in_flight: int = 0
    #: vLLM names of the LoRA adapters this replica reported (or we loaded).
    loaded: set[str] = field(default_factory=set)
    last_error: str | None = None
    last_ok: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "url": self.url,
            "name": self.name,
            "healthy": self.healthy,
            "in_flight": self.in_flight,
            "loaded": sorted(self.loaded),
            "last_error": self.last_error,
            "last_ok": self.last_ok,
        }


def _in_flight_of(replica: Replica) -> Callable[[], float]:
    return lambda: float(replica.in_flight)


def _loaded_of(replica: Replica) -> Callable[[], float]:
    return lambda: float(len(replica.loaded))


@dataclass(frozen=True, slots=True)
class LoadResult:
    replica: str
    ok: bool
    detail: str = ""


class ReplicaPool:
    """The replicas of one gateway and the background loop that keeps their state."""

    def __init__(
        self,
        urls: list[str],
        session: aiohttp.ClientSession,
        metrics: GatewayMetrics,
        *,
        base_model: str,
        timeout_s: float,
        admin_timeout_s: float,
    ) -> None:
        self.replicas = [Replica(url=u, name=replica_name(u)) for u in urls]
        self._session = session
        self._metrics = metrics
        self._base = base_model
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._admin_timeout = aiohttp.ClientTimeout(total=admin_timeout_s)
        for r in self.replicas:
            metrics.upstream_up.labels(r.name).set(0)
            # At 0 from the start, so an alert's increase() sees the first failed load.
            for outcome in LOAD_OUTCOMES:
                metrics.adapter_loads.labels(r.name, outcome)
            metrics.upstream_in_flight.labels(r.name).set_function(_in_flight_of(r))
            metrics.upstream_adapters_loaded.labels(r.name).set_function(_loaded_of(r))

    @property
    def any_healthy(self) -> bool:
        return any(r.healthy for r in self.replicas)

    def healthy(self) -> list[Replica]:
        return [r for r in self.replicas if r.healthy]

    def mark_down(self, replica: Replica, reason: str) -> None:
        if replica.healthy:
            log.warning("replica %s marked down: %s", replica.name, reason)
        replica.healthy = False
        replica.last_error = reason
        self._metrics.upstream_up.labels(replica.name).set(0)

    # -- polling -----------------------------------------------------------------

    async def poll(self, replica: Replica) -> None:
        """One health check plus one ``/v1/models`` read; updates ``healthy`` and ``loaded``."""
        try:
            async with self._session.get(replica.url + "/health", timeout=self._timeout) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"/health answered {resp.status}")
            async with self._session.get(replica.url + "/v1/models", timeout=self._timeout) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"/v1/models answered {resp.status}")
            data = orjson.loads(body).get("data") or []
            ids = {str(m.get("id")) for m in data if isinstance(m, dict)}
        except (aiohttp.ClientError, TimeoutError, RuntimeError, ValueError, AttributeError) as e:
            self.mark_down(replica, f"{type(e).__name__}: {e}")
            return
        if not replica.healthy:
            log.info("replica %s is up", replica.name)
        replica.loaded = ids - {self._base}
        replica.healthy = True
        replica.last_error = None
        replica.last_ok = asyncio.get_running_loop().time()
        self._metrics.upstream_up.labels(replica.name).set(1)

    async def poll_all(self) -> None:
        await asyncio.gather(*(self.poll(r) for r in self.replicas))

    async def reconcile(self, want: Mapping[str, str], drop: set[str]) -> None:
        """Poll every replica; load READY versions a healthy one lacks, unload retired ones.

        One step of the gateway's replica loop (``driftgate.core.loops.run_forever``).
        """
        await self.poll_all()
        for r in self.healthy():
            for name, path in want.items():
                if name not in r.loaded:
                    await self.load(r, name, path)
            for name in r.loaded & drop:
                await self.unload(r, name)

    # -- LoRA management -----------------------------------------------------------

    async def load(self, replica: Replica, served_name: str, path: str) -> LoadResult:
        payload = orjson.dumps({"lora_name": served_name, "lora_path": path})
        try:
            async with self._session.post(
                replica.url + "/v1/load_lora_adapter",
                data=payload,
                headers=_JSON,
                timeout=self._admin_timeout,
            ) as resp:
                text = (await resp.read()).decode("utf-8", "replace")
                ok = resp.status == 200
                already = resp.status == 400 and "already" in text.lower()
            if already:
                # Ours (a retried load) only if vLLM holds this name from this very path:
                # anything else under a name of ours is weights someone else chose.
                held = await self.loaded_path(replica, served_name)
                ok = held == path
                if not ok:
                    text = f"vLLM already holds {served_name!r} from {held!r}, not {path!r}"
        except (aiohttp.ClientError, TimeoutError) as e:
            ok, text = False, f"{type(e).__name__}: {e}"
        self._metrics.adapter_loads.labels(replica.name, "ok" if ok else "failed").inc()
        if ok:
            replica.loaded.add(served_name)
        else:
            log.warning("loading %s into %s failed: %s", served_name, replica.name, text[:500])
        return LoadResult(replica.name, ok, "" if ok else text[:1000])

    async def loaded_path(self, replica: Replica, served_name: str) -> str | None:
        """The path vLLM loaded ``served_name`` from (``root`` in ``/v1/models``), if any."""
        async with self._session.get(replica.url + "/v1/models", timeout=self._timeout) as resp:
            body = await resp.read()
        try:
            data = orjson.loads(body).get("data") or []
        except (orjson.JSONDecodeError, AttributeError):
            return None
        for m in data:
            if isinstance(m, dict) and m.get("id") == served_name:
                root = m.get("root")
                return str(root) if root is not None else None
        return None

    async def unload(self, replica: Replica, served_name: str) -> LoadResult:
        payload = orjson.dumps({"lora_name": served_name})
        try:
            async with self._session.post(
                replica.url + "/v1/unload_lora_adapter",
                data=payload,
                headers=_JSON,
                timeout=self._admin_timeout,
            ) as resp:
                text = (await resp.read()).decode("utf-8", "replace")
                ok = resp.status == 200 or resp.status in (400, 404)  # 400/404: not loaded
        except (aiohttp.ClientError, TimeoutError) as e:
            ok, text = False, f"{type(e).__name__}: {e}"
        if ok:
            replica.loaded.discard(served_name)
        return LoadResult(replica.name, ok, "" if ok else text[:1000])

    async def load_everywhere(self, served_name: str, path: str) -> list[LoadResult]:
        return list(
            await asyncio.gather(*(self.load(r, served_name, path) for r in self.healthy()))
        )

    async def unload_everywhere(self, served_name: str) -> list[LoadResult]:
        return list(
            await asyncio.gather(*(self.unload(r, served_name) for r in self.replicas if r.healthy))
        )


def is_ours(served_name: str) -> bool:
    return parse_lora_name(served_name) is not None


async def cancel_task(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
