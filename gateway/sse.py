"""Server-sent events from vLLM, rewritten chunk by chunk (pure; no network).

Each event gets the gateway's request id and public model name; the usage chunk
the gateway asked for is recorded and dropped unless the client asked for it, and so are
the logprobs it asked for (``gateway/answer_confidence.py``).
"""

from __future__ import annotations

from typing import Any

import orjson

from driftgate.core.events import MAX_TEXT_CHARS
from driftgate.core.recorded_answer import answer_text
from gateway.answer_confidence import ConfidenceTally, hide_logprobs, only_for_logprobs
from gateway.openai_body import Endpoint, first_choice

DONE = b"[DONE]"


class StreamRewriter:
    __slots__ = (
        "_chars",
        "_endpoint",
        "_hide_logprobs",
        "_keep_usage",
        "_model",
        "_parts",
        "_rid",
        "_tools",
        "completion_tokens",
        "confidence",
        "done",
        "finish_reason",
        "prompt_tokens",
        "saw_content",
    )

    def __init__(
        self,
        request_id: str,
        public_model: str,
        endpoint: Endpoint,
        keep_usage: bool,
        hide_logprobs: bool = False,
    ):
        self._rid = request_id
        self._model = public_model
        self._endpoint = endpoint
        self._keep_usage = keep_usage
        #: The gateway asked for the logprobs, the client did not: relay none of them.
        self._hide_logprobs = hide_logprobs
        #: Answer confidence of choice 0 (chat), from the logprobs in the chunks.
        self.confidence = ConfidenceTally()
        self._parts: list[str] = []
        self._chars = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.finish_reason: str | None = None
        self.saw_content = False
        #: The engine sent ``[DONE]``: whatever happens after, the answer was whole.
        self.done = False
        #: Tool calls of choice 0 by their index: [name, argument fragments...].
        self._tools: dict[int, list[str]] = {}

    @property
    def text(self) -> str:
        """The answer of choice 0: its text, then its tool calls (``answer_text``)."""
        calls = [(parts[0], "".join(parts[1:])) for _, parts in sorted(self._tools.items())]
        return answer_text("".join(self._parts), calls)

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
                self.done = True
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
            if self._hide_logprobs:
                hide_logprobs(obj.get("choices"))
                if only_for_logprobs(obj):
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
        first = first_choice(choices)
        if first is None:  # another choice (n > 1): relayed, not recorded
            return True
        if self._endpoint == "chat":
            self.confidence.add(first.get("logprobs"))
            delta = first.get("delta")
            piece = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(delta, dict) and isinstance(delta.get("tool_calls"), list):
                self._observe_tool_calls(delta["tool_calls"])
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

    def _observe_tool_calls(self, calls: list[Any]) -> None:
        for call in calls:
            if not isinstance(call, dict) or not isinstance(call.get("index", 0), int):
                continue
            self.saw_content = True
            parts = self._tools.setdefault(call.get("index", 0), [""])
            function = call.get("function")
            if isinstance(function, dict):
                if isinstance(function.get("name"), str):
                    parts[0] += function["name"]
                arguments = function.get("arguments")
                if isinstance(arguments, str) and self._chars < MAX_TEXT_CHARS:
                    parts.append(arguments)
                    self._chars += len(arguments)
