"""A lean HTTP/1.1 client for the hot path's non-streaming POSTs to vLLM.

Why not aiohttp here: measured on the gateway benchmark, aiohttp's client took about
a third of the gateway's CPU per request (request and response objects, payload
registry, timers, stream readers). This client keeps what a JSON POST to a known
replica needs: keep-alive connections per origin (bounded), the request written in
one call, the response parsed by httptools (the C parser uvicorn uses), one timer
per request for the total and the between-bytes timeouts. Streaming, health polls
and admin calls keep using aiohttp.

Errors: :class:`ConnectError` (and :class:`ConnectTimeout`) when no connection could
be made, :class:`Disconnected` when the connection dropped before a whole response,
the built-in :class:`TimeoutError` when the replica stopped answering in time.
A cancelled request closes its connection, so vLLM aborts the generation.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools


class Http1Error(Exception):
    """Base of this client's own errors."""


class ConnectError(Http1Error):
    """No connection to the replica could be made."""


class ConnectTimeout(ConnectError):
    """Connecting took longer than the connect timeout."""


class Disconnected(Http1Error):
    """The connection closed (or sent garbage) before a whole response arrived."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where to connect and the bytes every request to it starts with."""

    host: str
    port: int
    prefix: bytes
    host_header: bytes
    #: Further header lines sent with every request (``b"Name: value\r\n"`` each).
    extra_headers: bytes = b""

    @classmethod
    def parse(cls, url: str, headers: Mapping[str, str] | None = None) -> Origin | None:
        """The origin of a plain ``http://`` URL; None for anything this client does not do.

        >>> o = Origin.parse("http://e:8000", {"Authorization": "Bearer k"})
        >>> o.post_bytes("/x", b"{}").split(b"\\r\\n")[:3]
        [b'POST /x HTTP/1.1', b'Host: e:8000', b'Authorization: Bearer k']
        """
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            return None
        port = parts.port or 80
        for name, value in (headers or {}).items():
            if any(c in name + value for c in "\r\n\0"):
                raise ValueError(f"header {name!r} holds a line break")
        extra = b"".join(
            f"{name}: {value}\r\n".encode("latin-1") for name, value in (headers or {}).items()
        )
        return cls(
            host=parts.hostname,
            port=port,
            prefix=parts.path.rstrip("/").encode(),
            host_header=parts.netloc.encode(),
            extra_headers=extra,
        )

    def post_bytes(self, path: str, body: bytes) -> bytes:
        return b"".join(
            (
                b"POST ",
                self.prefix,
                path.encode(),
                b" HTTP/1.1\r\nHost: ",
                self.host_header,
                b"\r\n",
                self.extra_headers,
                b"Content-Type: application/json\r\nContent-Length: ",
                str(len(body)).encode(),
                b"\r\n\r\n",
                body,
            )
        )


class _Conn(asyncio.Protocol):
    """One keep-alive connection; at most one request on it at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._body: list[bytes] = []
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._read_s = 0.0
        self._last_rx = 0.0
        self.closed = False
        self.keep_alive = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but quack like one
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._last_rx = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(Disconnected(f"unparsable response: {e}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(Disconnected(f"connection closed by the replica ({exc or 'EOF'})"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self._parser.should_keep_alive()
        body = b"".join(self._body)
        self._body = []
        w = self._waiter
        if w is not None and not w.done():
            status: int = self._parser.get_status_code()
            w.set_result((status, body))

    # ours
    def _fail(self, exc: BaseException) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_exception(exc)

    def _on_timer(self) -> None:
        # One timer per request serves both timeouts: re-armed for whichever is due next.
        due = min(self._deadline, self._last_rx + self._read_s)
        if self._loop.time() >= due:
            self._fail(TimeoutError("the replica did not answer in time"))
        else:
            self._timer = self._loop.call_at(due, self._on_timer)

    async def exchange(self, request: bytes, total_s: float, read_s: float) -> tuple[int, bytes]:
        assert self._transport is not None
        loop = self._loop
        self.keep_alive = False
        waiter = self._waiter = loop.create_future()
        now = self._last_rx = loop.time()
        self._deadline = now + total_s
        self._read_s = read_s
        self._timer = loop.call_at(min(self._deadline, now + read_s), self._on_timer)
        try:
            self._transport.write(request)
            answer: tuple[int, bytes] = await waiter
            return answer
        finally:
            self._timer.cancel()
            self._waiter = None

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


class Http1Pool:
    """Keep-alive connections per origin, at most ``limit`` open in all."""

    def __init__(self, *, limit: int, connect_timeout_s: float) -> None:
        self._limit = limit
        self._connect_s = connect_timeout_s
        self._idle: dict[Origin, list[_Conn]] = {}
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def post(
        self, origin: Origin, path: str, body: bytes, *, total_s: float, read_s: float
    ) -> tuple[int, bytes]:
        """POST ``body`` (JSON) to ``origin``: (status, response body)."""
        conn = await self._acquire(origin)
        reuse = False
        try:
            status, data = await conn.exchange(origin.post_bytes(path, body), total_s, read_s)
            reuse = conn.keep_alive
            return status, data
        finally:
            self._release(origin, conn, reuse)

    async def _acquire(self, origin: Origin) -> _Conn:
        while True:
            idle = self._idle.get(origin)
            while idle:
                conn = idle.pop()
                if not conn.closed:
                    return conn
                self._open -= 1
            if self._open < self._limit:
                return await self._connect(origin)
            wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(wake)
            await wake

    async def _connect(self, origin: Origin) -> _Conn:
        loop = asyncio.get_running_loop()
        self._open += 1
        try:
            async with asyncio.timeout(self._connect_s):
                _, conn = await loop.create_connection(
                    lambda: _Conn(loop), origin.host, origin.port
                )
        except TimeoutError:
            self._closed_one()
            raise ConnectTimeout(f"connecting to {origin.host}:{origin.port} timed out") from None
        except OSError as e:
            self._closed_one()
            raise ConnectError(f"cannot connect to {origin.host}:{origin.port}: {e}") from None
        except BaseException:
            self._closed_one()
            raise
        return conn

    def _release(self, origin: Origin, conn: _Conn, reuse: bool) -> None:
        if reuse and not conn.closed:
            self._idle.setdefault(origin, []).append(conn)
            self._wake_one()
        else:
            conn.close()
            self._closed_one()

    def _closed_one(self) -> None:
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
        self._open = 0
