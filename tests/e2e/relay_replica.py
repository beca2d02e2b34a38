"""A second "replica" for the failover test: a plain relay in front of the real vLLM.

Run as ``python -m tests.e2e.relay_replica UPSTREAM PORT``. It forwards every request
unchanged, so until the test kills it (SIGKILL) it is indistinguishable from a
replica of the same engine; the kill is the fault a real vLLM cannot be made to
produce on cue without losing the shared engine.

Two control routes (never called by the gateway) let the test place the fault
exactly instead of guessing with a sleep:

- ``GET /_relay/state``: ``{"relayed": n, "hold": bool, "held": [request bodies]}``;
  ``relayed`` counts inference requests (``POST /v1/...completions``) answered in full.
- ``POST /_relay/hold``: from now on every inference request is accepted and held
  without an answer until the process dies, so a request listed in ``held`` is in
  flight on this replica when the test kills it, by construction.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson
from aiohttp import ClientSession, ClientTimeout, web

_INFERENCE = ("/v1/completions", "/v1/chat/completions")


def make_app(upstream: str) -> web.Application:
    state: dict[str, Any] = {"relayed": 0, "hold": False, "held": []}
    never: asyncio.Future[None] | None = None

    async def on_startup(app: web.Application) -> None:
        nonlocal never
        app["session"] = ClientSession(timeout=ClientTimeout(total=300))
        never = asyncio.get_running_loop().create_future()

    async def on_cleanup(app: web.Application) -> None:
        await app["session"].close()

    async def get_state(request: web.Request) -> web.Response:
        return web.json_response(state)

    async def set_hold(request: web.Request) -> web.Response:
        state["hold"] = True
        return web.json_response(state)

    async def relay(request: web.Request) -> web.StreamResponse:
        session: ClientSession = request.app["session"]
        body = await request.read()
        inference = request.method == "POST" and request.path in _INFERENCE
        if inference and state["hold"]:
            assert never is not None
            state["held"].append(orjson.loads(body))
            await never  # held until the process dies: no answer, no upstream request
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
        if inference:
            state["relayed"] += 1
        return resp

    app = web.Application()
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_get("/_relay/state", get_state)
    app.router.add_post("/_relay/hold", set_hold)
    app.router.add_route("*", "/{tail:.*}", relay)
    return app


if __name__ == "__main__":
    web.run_app(
        make_app(sys.argv[1].rstrip("/")), host="127.0.0.1", port=int(sys.argv[2]), print=None
    )
