"""A small aiohttp fake of vLLM's OpenAI server, for gateway unit tests only.

It exists to inject faults a real vLLM cannot be made to produce on demand
(500s, dropped connections, a replica killed mid-run, slow streams) and to run
the gateway tests in seconds. It mimics the parts the gateway uses: ``/health``,
``/v1/models`` (base model plus loaded LoRA names), ``/v1/load_lora_adapter``,
``/v1/unload_lora_adapter``, ``/v1/chat/completions`` and ``/v1/completions``
(JSON and SSE with ``stream_options.include_usage``; chat ``logprobs`` and
``top_logprobs`` as vLLM shapes them, ``null`` when not asked). The lead's end-to-end
tests run the gateway against the real vLLM.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class FakeVLLM:
    base_model: str = "SmolLM2-135M-Instruct"
    #: Answer every inference request with this status (None: answer normally).
    fail_status: int | None = None
    #: Close the connection without any answer (a crash mid-request).
    drop_connection: bool = False
    healthy: bool = True
    delay_s: float = 0.0
    #: Pause between streamed chunks.
    chunk_delay_s: float = 0.0
    chunks: int = 4
    #: Pause between ``[DONE]`` and the end of the stream (a client may hang up in it).
    eof_delay_s: float = 0.0
    #: Streamed chat tokens (before the text) that add nothing to the answer, as a tool-call
    #: parser holds back control tokens: vLLM sends a chunk for each only when logprobs
    #: were asked (an empty delta carrying them).
    silent_tokens: int = 0
    #: lora_path values that the load endpoint refuses.
    refuse_paths: set[str] = field(default_factory=set)
    loaded: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    streams_aborted: int = 0
    requests_aborted: int = 0
    streams_completed: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> FakeVLLM:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/load_lora_adapter", self._load)
        app.router.add_post("/v1/unload_lora_adapter", self._unload)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=0.1
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Stop listening and drop every open connection (like a killed process)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- handlers --------------------------------------------------------------------

    async def _health(self, _: web.Request) -> web.Response:
        return web.Response(status=200 if self.healthy else 503)

    async def _models(self, _: web.Request) -> web.Response:
        data = [{"id": self.base_model, "object": "model", "parent": None}]
        data += [
            {"id": n, "object": "model", "parent": self.base_model, "root": path}
            for n, path in self.loaded.items()
        ]
        return web.json_response({"object": "list", "data": data})

    async def _load(self, request: web.Request) -> web.Response:
        body = await request.json()
        name, path = body["lora_name"], body["lora_path"]
        if path in self.refuse_paths:
            return web.json_response(
                {"error": {"message": f"invalid LoRA at {path}", "type": "BadRequestError"}},
                status=400,
            )
        if name in self.loaded:
            return web.json_response(
                {"error": {"message": f"The lora adapter '{name}' has already been loaded."}},
                status=400,
            )
        self.loaded[name] = path
        return web.Response(text=f"Success: LoRA adapter '{name}' added successfully.")

    async def _unload(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.loaded.pop(body["lora_name"], None) is None:
            return web.json_response({"error": {"message": "not found"}}, status=404)
        return web.Response(text="Success")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._infer(request, "chat")

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._infer(request, "completions")

    async def _infer(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if self.drop_connection:
            assert request.transport is not None
            request.transport.close()
            raise asyncio.CancelledError
        if self.delay_s:
            loop = asyncio.get_running_loop()
            end = loop.time() + self.delay_s
            while loop.time() < end:
                await asyncio.sleep(0.02)
                if request.transport is None or request.transport.is_closing():
                    self.requests_aborted += 1  # the gateway dropped the request
                    raise asyncio.CancelledError
        if self.fail_status is not None:
            return web.json_response(
                {"error": {"message": "engine failure", "type": "InternalServerError"}},
                status=self.fail_status,
            )
        model = body.get("model")
        if model != self.base_model and model not in self.loaded:
            return web.json_response(
                {"error": {"message": f"The model `{model}` does not exist.", "code": 404}},
                status=404,
            )
        if endpoint == "chat":
            prompt = str(body["messages"][-1].get("content"))
        else:
            prompt = str(body["prompt"])
        words = [f"{model}", ":", *prompt.split()][: body.get("max_tokens") or 16]
        if body.get("stream"):
            return await self._stream(request, endpoint, model, words, body)
        text = " ".join(words)
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
        if endpoint == "chat":
            choice["message"] = {"role": "assistant", "content": text}
            pieces = [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)]
            choice["logprobs"] = logprobs_of(body, pieces, 0)
        else:
            choice["text"] = text
        return web.json_response(
            {
                "id": "vllm-internal-id",
                "object": "chat.completion" if endpoint == "chat" else "text_completion",
                "created": int(time.time()),
                "model": model,
                "choices": [choice],
                "usage": {
                    "prompt_tokens": len(prompt.split()),
                    "completion_tokens": len(words),
                    "total_tokens": len(prompt.split()) + len(words),
                },
            }
        )

    async def _stream(
        self,
        request: web.Request,
        endpoint: str,
        model: str,
        words: list[str],
        body: dict[str, Any],
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        words = (words * self.chunks)[: max(self.chunks, 1)]
        obj = "chat.completion.chunk" if endpoint == "chat" else "text_completion"

        def chunk(piece: str | None, finish: str | None, position: int) -> bytes:
            choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
            if endpoint == "chat":
                choice["delta"] = {"content": piece} if piece is not None else {}
                choice["logprobs"] = logprobs_of(body, [piece or ""], position)
            else:
                choice["text"] = piece or ""
            data = {"id": "vllm-internal-id", "object": obj, "model": model, "choices": [choice]}
            return b"data: " + orjson.dumps(data) + b"\n\n"

        try:
            silent = self.silent_tokens if endpoint == "chat" and body.get("logprobs") else 0
            for i in range(silent):
                await resp.write(chunk(None, None, i))
            for i, w in enumerate(words):
                finish = "stop" if i == len(words) - 1 else None
                await resp.write(chunk(w + " ", finish, silent + i))
                if self.chunk_delay_s:
                    await asyncio.sleep(self.chunk_delay_s)
            opts = body.get("stream_options") or {}
            if opts.get("include_usage"):
                usage = {"prompt_tokens": 3, "completion_tokens": len(words), "total_tokens": 0}
                data = {
                    "id": "vllm-internal-id",
                    "object": obj,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
                await resp.write(b"data: " + orjson.dumps(data) + b"\n\n")
            await resp.write(b"data: [DONE]\n\n")
            if self.eof_delay_s:
                await asyncio.sleep(self.eof_delay_s)
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.streams_aborted += 1  # the gateway closed the stream
            return resp
        self.streams_completed += 1
        return resp


def token_logprob(position: int) -> float:
    """The fake's logprob of the generated token at ``position`` (deterministic)."""
    return -0.25 * (position % 4 + 1)


#: How far below the chosen token the fake's alternatives lie, best first.
ALTERNATIVE_GAPS = (1.5, 2.0, 3.0, 4.0)


def logprobs_of(body: dict[str, Any], pieces: list[str], start: int) -> dict[str, Any] | None:
    """A chat choice's ``logprobs`` for ``pieces`` (tokens from ``start``), as vLLM shapes it:
    ``None`` unless asked; the chosen token first among ``top_logprobs`` alternatives."""
    if not body.get("logprobs"):
        return None
    wanted = int(body.get("top_logprobs") or 0)
    content = []
    for i, piece in enumerate(pieces):
        lp = token_logprob(start + i)
        tops = [(piece, lp)] + [(f"alt{g}", lp - g) for g in ALTERNATIVE_GAPS]
        content.append(
            {
                "token": piece,
                "logprob": lp,
                "bytes": list(piece.encode()),
                "top_logprobs": [
                    {"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in tops[:wanted]
                ],
            }
        )
    return {"content": content}
