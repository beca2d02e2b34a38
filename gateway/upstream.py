"""Requests to vLLM replicas with retries on another replica.

Non-streaming requests to ``http://`` replicas go through the lean client of
:mod:`gateway.http1`; streams (and ``https://`` replicas) through aiohttp.

Retried (on a replica not tried yet): connect errors, a connection dropped before
the response, a 5xx status, and a 404 for a LoRA name the replica no longer holds
(it restarted). Never retried: a timeout (the engine may still be working), a 4xx.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import aiohttp
import orjson

from driftgate.core.errors import Unavailable, UpstreamError, UpstreamTimeout
from gateway.admission import Admission
from gateway.http1 import ConnectError, ConnectTimeout, Disconnected, Http1Pool, Origin
from gateway.metrics import GatewayMetrics
from gateway.replicas import Replica, ReplicaPool
from gateway.routing import choose_replica

_JSON = {"Content-Type": "application/json"}


@dataclass(slots=True)
class UpstreamResponse:
    """A complete (non-streaming) answer, or the error answer of a stream that did not start."""

    status: int
    body: bytes
    replica: str


class UpstreamStream:
    """An open 200 streaming response; ``close()`` releases it (aborting it in vLLM)."""

    __slots__ = ("_done", "_pool", "_replica", "response")

    def __init__(self, response: aiohttp.ClientResponse, replica: Replica, pool: Upstream) -> None:
        self.response = response
        self._replica = replica
        self._pool = pool
        self._done = False

    @property
    def replica(self) -> str:
        return self._replica.name

    def close(self) -> None:
        if not self._done:
            self._done = True
            self.response.close()
            self._pool.finished(self._replica)
            self._pool.admission.release()


def upstream_error_message(status: int, body: bytes) -> str:
    """The message of an engine error body (OpenAI or vLLM's older shape), shortened."""
    try:
        data = orjson.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = err.get("message") if isinstance(err, dict) else None
    except (orjson.JSONDecodeError, AttributeError):
        msg = None
    text = str(msg) if msg else body[:200].decode("utf-8", "replace")
    return f"upstream answered {status}: {text[:500]}"


class Upstream:
    def __init__(
        self,
        pool: ReplicaPool,
        session: aiohttp.ClientSession,
        metrics: GatewayMetrics,
        *,
        max_attempts: int,
        connect_timeout_s: float,
        read_timeout_s: float,
        request_timeout_s: float,
        connections: int = 512,
        queue_timeout_s: float = 5.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.pool = pool
        self._session = session
        self._metrics = metrics
        self._max_attempts = max_attempts
        self._tie = itertools.count()
        self._t_full = aiohttp.ClientTimeout(
            total=request_timeout_s, connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._t_stream = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._total_s = request_timeout_s
        self._read_s = read_timeout_s
        #: Non-streaming requests to plain-http replicas: the lean client (see ``http1``).
        self._lean = Http1Pool(limit=connections, connect_timeout_s=connect_timeout_s)
        #: One slot per engine connection: what the pools cannot take waits here, bounded.
        self.admission = Admission(connections, queue_timeout_s)
        self._origins: dict[str, Origin | None] = {}
        #: Sent with every request by the lean client (the aiohttp session has its own).
        self._headers = headers or {}

    # in-flight accounting per replica
    # (the upstream_in_flight gauge reads ``Replica.in_flight`` at scrape time)
    def _started(self, r: Replica) -> None:
        r.in_flight += 1

    def finished(self, r: Replica) -> None:
        r.in_flight -= 1

    def close(self) -> None:
        self._lean.close()

    def _pick(self, served_name: str | None, tried: set[str]) -> Replica | None:
        return choose_replica(self.pool.replicas, served_name, tried, next(self._tie))

    def _retry(self, r: Replica, reason: str) -> None:
        self._metrics.upstream_retries.labels(r.name, reason).inc()

    def _origin(self, url: str) -> Origin | None:
        if url not in self._origins:
            self._origins[url] = Origin.parse(url, self._headers)
        return self._origins[url]

    async def _attempt(
        self, r: Replica, path: str, payload: bytes, stream: bool
    ) -> UpstreamResponse | UpstreamStream:
        """One POST to one replica; connection failures raise this module's errors."""
        origin = None if stream else self._origin(r.url)
        if origin is not None:
            status, body = await self._lean.post(
                origin, path, payload, total_s=self._total_s, read_s=self._read_s
            )
            return UpstreamResponse(status, body, r.name)
        try:
            resp = await self._session.post(
                r.url + path,
                data=payload,
                headers=_JSON,
                timeout=self._t_stream if stream else self._t_full,
            )
        except aiohttp.ConnectionTimeoutError as e:
            raise ConnectTimeout(str(e)) from None
        except TimeoutError:
            raise  # a read timeout: aiohttp's is a ClientConnectionError too
        except aiohttp.ClientConnectorError as e:
            raise ConnectError(str(e)) from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as e:
            raise Disconnected(f"{type(e).__name__}: {e}") from None
        try:
            if stream and resp.status == 200:
                return UpstreamStream(resp, r, self)
            body = await resp.read()
        except TimeoutError:
            resp.release()
            raise
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as e:
            resp.release()
            raise Disconnected(f"{type(e).__name__}: {e}") from None
        resp.release()
        return UpstreamResponse(resp.status, body, r.name)

    async def request(
        self, path: str, payload: bytes, served_name: str | None, *, stream: bool = False
    ) -> UpstreamResponse | UpstreamStream:
        """POST ``payload`` to a replica holding ``served_name`` (None: the base model).

        Returns an :class:`UpstreamStream` only for a streaming request answered 200 (it
        holds its connection slot until closed). Raises :class:`Saturated` when no slot
        frees up within the queue timeout.
        """
        await self.admission.acquire()
        try:
            res = await self._request(path, payload, served_name, stream)
        except BaseException:
            self.admission.release()
            raise
        if not isinstance(res, UpstreamStream):
            self.admission.release()
        return res

    async def _request(
        self, path: str, payload: bytes, served_name: str | None, stream: bool
    ) -> UpstreamResponse | UpstreamStream:
        tried: set[str] = set()
        #: Replicas that failed for a reason a second try would not fix (connect error, 5xx);
        #: a replica that only dropped a (pooled) connection may be tried again.
        failed: set[str] = set()
        last_5xx: UpstreamResponse | None = None
        last_connect: str | None = None
        for _ in range(self._max_attempts):
            r = self._pick(served_name, tried) or self._pick(served_name, failed)
            if r is None:
                break
            tried.add(r.name)
            self._started(r)
            res: UpstreamResponse | UpstreamStream | None = None
            try:
                res = await self._attempt(r, path, payload, stream)
            except ConnectTimeout as e:
                self.pool.mark_down(r, f"connect timeout: {e}")
                failed.add(r.name)
                last_connect = "connect timeout"
                self._retry(r, "connect")
                continue
            except ConnectError as e:
                self.pool.mark_down(r, f"connect error: {e}")
                failed.add(r.name)
                last_connect = str(e)
                self._retry(r, "connect")
                continue
            except TimeoutError:
                raise UpstreamTimeout("the engine did not answer in time") from None
            except Disconnected as e:
                last_connect = str(e)
                self._retry(r, "disconnect")
                continue
            finally:
                if not isinstance(res, UpstreamStream):
                    self.finished(r)
            if isinstance(res, UpstreamStream):
                return res
            if res.status >= 500:
                last_5xx = res
                failed.add(r.name)
                self._retry(r, "5xx")
                continue
            if res.status == 404 and served_name is not None:
                # We chose the replica because it held the adapter; it lost it (restart).
                # The poller will load it again.
                r.loaded.discard(served_name)
                failed.add(r.name)
                self._retry(r, "not_loaded")
                continue
            return res
        if last_5xx is not None:
            raise UpstreamError(upstream_error_message(last_5xx.status, last_5xx.body))
        if last_connect is not None:
            raise Unavailable(f"no replica could be reached ({last_connect})")
        what = "the base model" if served_name is None else f"adapter {served_name!r}"
        raise Unavailable(f"no healthy replica serves {what}")
