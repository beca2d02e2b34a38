"""The one HTTP client of driftgate's own JSON APIs (the gateway's admin API, the drift service).

A :class:`Call` describes one request and how to read its answer; the calls live
beside this module (:mod:`driftgate.core.admin_api`, :mod:`driftgate.core.drift_api`).
:class:`Client` (blocking) and :class:`AsyncClient` send them::

    from driftgate.core import admin_api
    from driftgate.core.client import Client

    with Client("http://127.0.0.1:8080", admin_key) as gw:
        key = gw.send(admin_api.create_tenant("acme", adapters=["support"]))["api_key"]

Every failure is a :class:`ServiceError`: :class:`ServiceRefused` when the service
answered an error status (its status and the OpenAI-shaped error's message and
code), :class:`ServiceUnreachable` when no answer came (connection, timeout).
Tests hand either client an httpx transport (``httpx.ASGITransport`` for an app).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, TypeVar

import httpx

T = TypeVar("T")


class ServiceError(Exception):
    """A call to a driftgate service failed; ``status`` is None when no answer came."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message if status is None else f"HTTP {status}: {message}")
        self.message = message
        self.status = status
        self.code = code
        self.body = body


class ServiceRefused(ServiceError):
    """The service answered an error status (4xx, 5xx) or an answer that is not JSON."""

    status: int


class ServiceUnreachable(ServiceError):
    """No answer: the connection failed or the timeout passed."""


def _keep(data: Any) -> Any:
    return data


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request: method, path (below the base URL), JSON body, query, and its reader."""

    method: str
    path: str
    read: Callable[[Any], T] = _keep
    body: Any = None
    params: Mapping[str, str] = field(default_factory=dict)


def refused(resp: httpx.Response) -> ServiceRefused:
    """The error of an answer with an error status, read from the OpenAI error shape."""
    try:
        body: Any = resp.json() if resp.content else None
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and err.get("message") is not None:
        message = str(err["message"])
        code = err.get("code")
    else:
        message, code = resp.text[:300], None
    return ServiceRefused(
        message, status=resp.status_code, code=None if code is None else str(code), body=body
    )


def _answer(call: Call[T], resp: httpx.Response) -> T:
    if resp.status_code >= 400:
        raise refused(resp)
    try:
        data = resp.json() if resp.content else None
    except ValueError:
        raise ServiceRefused(
            f"{call.method} {call.path} answered no JSON: {resp.text[:300]}",
            status=resp.status_code,
        ) from None
    return call.read(data)


def _request(client: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
    return client.build_request(
        call.method,
        call.path,
        json=call.body,
        params=dict(call.params) if call.params else None,
    )


def _headers(credential: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"} if credential else {}


def _unreachable(base_url: str, exc: httpx.HTTPError) -> ServiceUnreachable:
    return ServiceUnreachable(f"{base_url}: {type(exc).__name__}: {exc}")


class Client:
    """Blocking client of one service; ``credential`` is sent as a bearer token."""

    def __init__(
        self,
        base_url: str,
        credential: str | None = None,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=_headers(credential),
            timeout=timeout_s,
            transport=transport,
        )

    def send(self, call: Call[T]) -> T:
        try:
            resp = self._http.send(_request(self._http, call))
        except httpx.HTTPError as exc:
            raise _unreachable(self.base_url, exc) from exc
        return _answer(call, resp)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient:
    """Asyncio client of one service (one connection pool per instance)."""

    def __init__(
        self,
        base_url: str,
        credential: str | None = None,
        *,
        timeout_s: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_headers(credential),
            timeout=timeout_s,
            transport=transport,
        )

    async def send(self, call: Call[T]) -> T:
        try:
            resp = await self._http.send(_request(self._http, call))
        except httpx.HTTPError as exc:
            raise _unreachable(self.base_url, exc) from exc
        return _answer(call, resp)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
