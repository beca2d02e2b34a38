"""A small async client of the gateway's admin API (for the CLI, tests and the rollout).

async with AdminClient("http://127.0.0.1:8080", admin_key) as admin:
    key = (await admin.create_tenant("acme", adapters=["support"]))["api_key"]
    v = await admin.register_version("support", "/abs/path/to/peft/dir")
    await admin.set_route("support", {v["version"]: 1.0})
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import aiohttp
import orjson


class AdminError(Exception):
    """The gateway refused an admin call; carries the status and the OpenAI error body."""

    def __init__(self, status: int, body: Any) -> None:
        err = body.get("error") if isinstance(body, dict) else None
        message = err.get("message") if isinstance(err, dict) else str(body)
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body
        self.code = err.get("code") if isinstance(err, dict) else None


class AdminClient:
    def __init__(self, base_url: str, admin_key: str, *, timeout_s: float = 120.0) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {admin_key}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        data = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": "application/json"} if data is not None else None
        async with self._session.request(
            method, self._base + path, data=data, headers=headers
        ) as resp:
            raw = await resp.read()
            parsed = orjson.loads(raw) if raw else None
            if resp.status >= 400:
                raise AdminError(resp.status, parsed)
            return parsed

    # tenants
    async def create_tenant(
        self,
        name: str,
        *,
        adapters: list[str],
        rate_limit_rps: float = 10.0,
        burst: int = 20,
        max_tokens: int = 1024,
    ) -> dict[str, Any]:
        """``{"tenant": {...}, "api_key": "dg-..."}`` (the key is shown only here)."""
        body = {
            "name": name,
            "adapters": adapters,
            "rate_limit_rps": rate_limit_rps,
            "burst": burst,
            "max_tokens": max_tokens,
        }
        result: dict[str, Any] = await self._call("POST", "/admin/tenants", body)
        return result

    async def list_tenants(self) -> list[dict[str, Any]]:
        return list((await self._call("GET", "/admin/tenants"))["data"])

    async def delete_tenant(self, name: str) -> None:
        await self._call("DELETE", f"/admin/tenants/{name}")

    async def add_api_key(self, tenant: str) -> str:
        return str((await self._call("POST", f"/admin/tenants/{tenant}/keys"))["api_key"])

    # adapter versions
    async def register_version(
        self,
        adapter: str,
        path: str,
        *,
        version: int | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Load a PEFT directory into every replica; the new version's record."""
        body: dict[str, Any] = {"path": path, "meta": dict(meta or {})}
        if version is not None:
            body["version"] = version
        result: dict[str, Any] = await self._call(
            "POST", f"/admin/adapters/{adapter}/versions", body
        )
        return result

    async def list_versions(self, adapter: str | None = None) -> list[dict[str, Any]]:
        query = f"?adapter={adapter}" if adapter else ""
        return list((await self._call("GET", f"/admin/adapters{query}"))["data"])

    async def retire_version(self, adapter: str, version: int) -> dict[str, Any]:
        """Unload a version that no route weights any more (409 otherwise)."""
        result: dict[str, Any] = await self._call(
            "DELETE", f"/admin/adapters/{adapter}/versions/{version}"
        )
        return result

    # routes
    async def set_route(self, adapter: str, weights: Mapping[int, float]) -> dict[int, float]:
        body = {"weights": {str(v): w for v, w in weights.items()}}
        result = await self._call("PUT", f"/admin/routes/{adapter}", body)
        return {int(v): float(w) for v, w in result["weights"].items()}

    async def get_routes(self) -> dict[str, dict[int, float]]:
        routes = (await self._call("GET", "/admin/routes"))["routes"]
        return {a: {int(v): float(w) for v, w in ws.items()} for a, ws in routes.items()}

    async def delete_route(self, adapter: str) -> None:
        await self._call("DELETE", f"/admin/routes/{adapter}")

    # replicas
    async def replicas(self) -> list[dict[str, Any]]:
        return list((await self._call("GET", "/admin/replicas"))["data"])

    async def refresh(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", "/admin/refresh")
        return result
