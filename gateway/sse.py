"""Server-sent events from vLLM, rewritten chunk by chunk (pure; no network).

Each event gets the gateway's request id and public model name; the usage chunk
the gateway asked for is recorded and dropped unless the client asked for it.
"""

from __future__ import annotations

from typing import Any

import orjson

from driftgate.core.events import MAX_TEXT_CHARS
from gateway.openai_body import Endpoint

DONE = b"[DONE]"


class StreamRewriter:
    __slots__ = (
        "_chars",
        "_endpoint",
        "_keep_usage",
        "_model",
        "_parts",
        "_rid",
        "completion_tokens",
        "finish_reason",
        "prompt_tokens",
        "saw_content",
    )

    def __init__(self, request_id: str, public_model: str, endpoint: Endpoint, keep_usage: bool):
        self._rid = request_id
        self._model = public_model
        self._endpoint = endpoint
        self._keep_usage = keep_usage
        self._parts: list[str] = []
        self._chars = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.finish_reason: str | None = None
        self.saw_content = False

    @property
    def text(self) -> str:
        return "".join(self._parts)[:MAX_TEXT_CHARS]

    def feed(self, event: bytes) -> bytes | None:
        """One SSE event (its lines, blank separator excluded) -> bytes to send, or None."""
        out: list[bytes] = []
        for line in event.splitlines():
            if not line.startswith(b"data:"):
                if line and not line.startswith(b":"):
                    out.append(line)
                continue
            data = line[5:].strip()
            if data == DONE:
                out.append(b"data: [DONE]")
                continue
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                out.append(line)
                continue
            if not isinstance(obj, dict):
                out.append(line)
                continue
            if not self._observe(obj):
                continue
            if "id" in obj:
                obj["id"] = self._rid
            if "model" in obj:
                obj["model"] = self._model
            out.append(b"data: " + orjson.dumps(obj))
        if not out:
            return None
        return b"\n".join(out) + b"\n\n"

    def _observe(self, obj: dict[str, Any]) -> bool:
        """Record tokens, text and finish reason; False to drop the chunk."""
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.completion_tokens = int(usage.get("completion_tokens") or 0)
        choices = obj.get("choices")
        if not choices:
            return self._keep_usage or not isinstance(usage, dict)
        if not self._keep_usage and "usage" in obj:
            obj.pop("usage")
        first = choices[0]
        if not isinstance(first, dict):
            return True
        if self._endpoint == "chat":
            delta = first.get("delta")
            piece = delta.get("content") if isinstance(delta, dict) else None
        else:
            piece = first.get("text")
        if isinstance(piece, str) and piece:
            self.saw_content = True
            if self._chars < MAX_TEXT_CHARS:
                self._parts.append(piece)
                self._chars += len(piece)
        reason = first.get("finish_reason")
        if reason is not None:
            self.finish_reason = str(reason)[:32]
        return True
