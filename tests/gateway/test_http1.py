"""The lean HTTP/1.1 client against a scripted raw-socket server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
import uvloop

from gateway.http1 import ConnectError, Disconnected, Http1Pool, Origin

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """Answers each request with what ``handler`` writes; counts connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.closed_by_client = 0
        self.handler: Handler = ok_json

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed_by_client += 1
        finally:
            writer.close()


async def ok_json(_: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    w.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    await w.drain()


@pytest_asyncio.fixture(loop_scope="function")
async def server() -> AsyncIterator[tuple[Server, Origin]]:
    s = Server()
    srv = await asyncio.start_server(s._serve, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    origin = Origin.parse(f"http://127.0.0.1:{port}")
    assert origin is not None
    yield s, origin
    srv.close()


def pool() -> Http1Pool:
    return Http1Pool(limit=4, connect_timeout_s=1.0)


async def test_keeps_the_connection_alive(server: tuple[Server, Origin]) -> None:
    s, origin = server
    p = pool()
    for _ in range(5):
        assert await p.post(origin, "/v1/x", b"{}", total_s=5, read_s=5) == (200, b"{}")
    assert s.connections == 1
    p.close()


async def test_decodes_a_chunked_body_split_across_writes(server: tuple[Server, Origin]) -> None:
    s, origin = server

    async def chunked(_: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        await w.drain()
        await asyncio.sleep(0.02)
        w.write(b"lo\r\n6\r\n world\r\n0\r\n\r\n")
        await w.drain()

    s.handler = chunked
    assert await pool().post(origin, "/", b"{}", total_s=5, read_s=5) == (400, b"hello world")


async def test_a_dropped_connection_is_disconnected(server: tuple[Server, Origin]) -> None:
    s, origin = server

    async def drop(_: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await w.drain()
        w.close()

    s.handler = drop
    with pytest.raises(Disconnected):
        await pool().post(origin, "/", b"{}", total_s=5, read_s=5)


async def test_silence_is_a_timeout_and_closes_the_connection(
    server: tuple[Server, Origin],
) -> None:
    s, origin = server

    async def silent(_: asyncio.StreamReader, __: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    s.handler = silent
    with pytest.raises(TimeoutError):
        await pool().post(origin, "/", b"{}", total_s=5, read_s=0.2)
    s.handler = ok_json
    p = pool()
    assert (await p.post(origin, "/", b"{}", total_s=5, read_s=5))[0] == 200
    assert s.connections == 2  # the timed-out connection was not reused


async def test_cancelling_closes_the_connection(server: tuple[Server, Origin]) -> None:
    s, origin = server

    async def slow(r: asyncio.StreamReader, __: asyncio.StreamWriter) -> None:
        if not await r.read(1):  # nothing more comes: wait until the client closes
            raise ConnectionResetError

    s.handler = slow
    task = asyncio.create_task(pool().post(origin, "/", b"{}", total_s=5, read_s=5))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(50):  # the server sees the client go (vLLM then aborts the request)
        if s.closed_by_client:
            break
        await asyncio.sleep(0.02)
    assert s.closed_by_client == 1


async def test_refused_connection_is_a_connect_error() -> None:
    origin = Origin.parse("http://127.0.0.1:1")
    assert origin is not None
    with pytest.raises(ConnectError):
        await pool().post(origin, "/", b"{}", total_s=5, read_s=5)


async def test_waits_for_a_free_connection_at_the_limit(server: tuple[Server, Origin]) -> None:
    s, origin = server
    p = Http1Pool(limit=2, connect_timeout_s=1.0)
    results = await asyncio.gather(
        *(p.post(origin, "/", b"{}", total_s=5, read_s=5) for _ in range(10))
    )
    assert results == [(200, b"{}")] * 10
    assert s.connections == 2


def test_origin_of_urls() -> None:
    o = Origin.parse("http://vllm-0.vllm:8000/prefix/")
    assert o is not None and (o.host, o.port, o.prefix) == ("vllm-0.vllm", 8000, b"/prefix")
    assert o.post_bytes("/v1/x", b"{}").startswith(b"POST /prefix/v1/x HTTP/1.1\r\n")
    assert Origin.parse("https://example.org") is None


def test_works_on_uvloop() -> None:
    """The gateway runs on uvloop, whose transports are not asyncio's classes."""

    async def main() -> list[tuple[int, bytes]]:
        s = Server()
        srv = await asyncio.start_server(s._serve, "127.0.0.1", 0)
        origin = Origin.parse(f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}")
        assert origin is not None
        p = pool()
        try:
            return [await p.post(origin, "/", b"{}", total_s=5, read_s=5) for _ in range(3)]
        finally:
            p.close()
            srv.close()

    assert uvloop.run(main()) == [(200, b"{}")] * 3
