"""Raw ASGI input and output for the hot path, without Starlette's Request and Response.

A Request object builds a header mapping and a body stream per request, a Response
builds and re-encodes its header list; the hot path needs two request headers, the
body, and one JSON answer with a few fixed headers, so it reads and writes the ASGI
messages itself.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from driftgate.core.errors import PayloadTooLarge

Headers = list[tuple[bytes, bytes]]

_JSON_TYPE = (b"content-type", b"application/json")


def auth_and_length(scope: Scope) -> tuple[str | None, str | None]:
    """The ``authorization`` and ``content-length`` request headers (None when absent)."""
    auth = length = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            auth = value.decode("latin-1")
        elif name == b"content-length":
            length = value.decode("latin-1")
    return auth, length


def check_declared_length(declared: str | None, limit: int) -> None:
    """413 when ``Content-Length`` declares more than ``limit`` bytes (run before auth)."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body exceeds {limit} bytes")


async def read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The request body, or 413 as soon as it is known to exceed ``limit`` bytes."""
    check_declared_length(declared, limit)
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):  # the usual case: one message
        if len(body) > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes")
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def send_json(send: Send, status: int, body: bytes, headers: Headers) -> None:
    """One whole JSON response: ``headers`` plus content type and length."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-length", str(len(body)).encode()),
                _JSON_TYPE,
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
