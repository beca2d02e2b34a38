"""A trivial OpenAI-compatible upstream and a drift-service event sink, for the gateway benchmark.

    python benchmarks/gateway/upstream.py --port 18771 --sink-port 18772

The upstream answers every inference request at once with a small fixed completion, so
what the benchmark measures is the gateway, not a model. It mimics just enough of vLLM for
the gateway: ``/health``, ``/v1/models`` (base model plus loaded LoRA names),
``/v1/load_lora_adapter``, ``/v1/unload_lora_adapter``, ``/v1/chat/completions`` and
``/v1/completions`` (JSON, or server-sent events with ``"stream": true``: a few chunks
with no delay, the usage chunk when asked, ``[DONE]``). The sink plays the drift
service: ``POST /v1/events`` counts the events and answers ``202``; ``GET /count``
reports the totals. It keeps nothing, so memory stays flat however long it runs.

Self-contained on purpose (aiohttp, orjson, uvloop; no project imports): the same file
serves as the "direct" baseline of the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvloop
from aiohttp import web

_JSON = "application/json"


@dataclass
class Upstream:
    base_model: str
    loaded: set[str] = field(default_factory=set)
    requests: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/load_lora_adapter", self._load)
        app.router.add_post("/v1/unload_lora_adapter", self._unload)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        return app

    async def _health(self, _: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _models(self, _: web.Request) -> web.Response:
        data: list[dict[str, Any]] = [{"id": self.base_model, "object": "model", "parent": None}]
        data += [{"id": n, "object": "model", "parent": self.base_model} for n in self.loaded]
        return _json({"object": "list", "data": data})

    async def _load(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.loaded.add(str(body["lora_name"]))
        return web.Response(text=f"Success: LoRA adapter '{body['lora_name']}' added.")

    async def _unload(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.loaded.discard(str(body["lora_name"]))
        return web.Response(text="Success")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._infer(request, chat=True)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._infer(request, chat=False)

    async def _infer(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        self.requests += 1
        text = "Hello! How can I help you today?"
        if body.get("stream") is True:
            return await self._stream(request, body, chat, text)
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return _json(
            {
                "id": "cmpl-bench",
                "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()),
                "model": body.get("model", self.base_model),
                "choices": [choice],
                "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
            }
        )

    async def _stream(
        self, request: web.Request, body: dict[str, Any], chat: bool, text: str
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        base = {
            "id": "cmpl-bench",
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()),
            "model": body.get("model", self.base_model),
        }
        pieces = text.split(" ")
        for i, word in enumerate(pieces):
            piece = word if i == 0 else " " + word
            reason = "stop" if i == len(pieces) - 1 else None
            choice: dict[str, Any] = {"index": 0, "finish_reason": reason, "logprobs": None}
            if chat:
                choice["delta"] = {"content": piece, **({"role": "assistant"} if i == 0 else {})}
            else:
                choice["text"] = piece
            await resp.write(b"data: " + orjson.dumps({**base, "choices": [choice]}) + b"\n\n")
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            usage = {"prompt_tokens": 12, "completion_tokens": len(pieces), "total_tokens": 19}
            chunk = {**base, "choices": [], "usage": usage}
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


@dataclass
class EventSink:
    events: int = 0
    batches: int = 0
    feedback: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/events", self._events)
        app.router.add_post("/v1/feedback", self._feedback)
        app.router.add_get("/count", self._count)
        app.router.add_get("/healthz", self._healthz)
        return app

    async def _events(self, request: web.Request) -> web.Response:
        n = len(orjson.loads(await request.read()).get("events", []))
        self.events += n
        self.batches += 1
        return _json({"accepted": n, "duplicates": 0}, status=202)

    async def _feedback(self, request: web.Request) -> web.Response:
        await request.read()
        self.feedback += 1
        return _json({"feedback_id": f"fb-{self.feedback}"}, status=202)

    async def _count(self, _: web.Request) -> web.Response:
        return _json({"events": self.events, "batches": self.batches, "feedback": self.feedback})

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(status=200)


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type=_JSON)


async def serve(port: int, sink_port: int, base_model: str) -> None:
    runners: list[web.AppRunner] = []
    for app, p in ((Upstream(base_model).app(), port), (EventSink().app(), sink_port)):
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", p, backlog=1024).start()
        runners.append(runner)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"upstream on 127.0.0.1:{port}, event sink on 127.0.0.1:{sink_port}", flush=True)
    try:
        await stop.wait()
    finally:
        for runner in runners:
            await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sink-port", type=int, required=True)
    ap.add_argument("--base-model", default="SmolLM2-135M-Instruct")
    args = ap.parse_args(argv)
    uvloop.run(serve(args.port, args.sink_port, args.base_model))


if __name__ == "__main__":
    main()
