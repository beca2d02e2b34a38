"""The floor for the gateway's stack: a minimal FastAPI + aiohttp pass-through, no features.

    python benchmarks/gateway/passthrough.py --port 18795 --upstream http://127.0.0.1:18771

Same server (uvicorn, uvloop, httptools) and framework (FastAPI/Starlette) as the
gateway, the ordinary way: a FastAPI route and one aiohttp session, no auth, routing,
limits, metrics or events. The benchmark runs it beside the gateway so RESULTS.md can say
whether a missed target is the stack's or the features' (the gateway itself answers its
two inference routes before FastAPI and uses a lean upstream client: ``gateway/http1.py``).
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import Response


def create_app(upstream: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app.state.session = session
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        session: aiohttp.ClientSession = request.app.state.session
        body = await request.body()
        async with session.post(
            upstream + "/v1/chat/completions",
            data=body,
            headers={"Content-Type": "application/json"},
        ) as r:
            data = await r.read()
        return Response(data, status_code=r.status, media_type="application/json")

    return app


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    args = ap.parse_args(argv)
    uvicorn.run(
        create_app(args.upstream.rstrip("/")),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
