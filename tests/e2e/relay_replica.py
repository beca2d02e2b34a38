"""A second "replica" for the failover test: a plain relay in front of the real vLLM.

Run as ``python -m tests.e2e.relay_replica UPSTREAM PORT``. It forwards every request
unchanged, so until the test kills it (SIGKILL) it is indistinguishable from a
replica of the same engine; the kill is the fault a real vLLM cannot be made to
produce on cue without losing the shared engine.
"""

from __future__ import annotations

import sys

from aiohttp import ClientSession, ClientTimeout, web


def make_app(upstream: str) -> web.Application:
    async def on_startup(app: web.Application) -> None:
        app["session"] = ClientSession(timeout=ClientTimeout(total=300))

    async def on_cleanup(app: web.Application) -> None:
        await app["session"].close()

    async def relay(request: web.Request) -> web.StreamResponse:
        session: ClientSession = request.app["session"]
        body = await request.read()
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        async with session.request(
            request.method, f"{upstream}{request.path_qs}", data=body, headers=headers
        ) as up:
            resp = web.StreamResponse(status=up.status)
            ctype = up.headers.get("content-type")
            if ctype:
                resp.content_type = ctype.split(";")[0]
            await resp.prepare(request)
            async for chunk in up.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp

    app = web.Application()
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_route("*", "/{tail:.*}", relay)
    return app


if __name__ == "__main__":
    web.run_app(
        make_app(sys.argv[1].rstrip("/")), host="127.0.0.1", port=int(sys.argv[2]), print=None
    )
