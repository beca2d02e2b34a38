"""Reading, checking and summarising OpenAI request and response bodies (no network)."""

from __future__ import annotations

from typing import Any, Literal

import orjson

from driftgate.core.errors import InvalidRequest, UnprocessableBody
from driftgate.core.events import MAX_TEXT_CHARS
from driftgate.core.recorded_answer import answer_text

Endpoint = Literal["chat", "completions"]


def _bad(param: str, message: str) -> UnprocessableBody:
    return UnprocessableBody(f"{param}: {message}", param=param)


def _is_int(v: Any) -> bool:
    return type(v) is int  # bool is not a token count


def check_fields(payload: dict[str, Any], endpoint: Endpoint) -> None:
    """422 for the fields the gateway relies on; the engine checks the rest.

    Hand-written rather than a pydantic model: it runs on every request and is
    several times cheaper.
    """
    model = payload.get("model")
    if not isinstance(model, str) or not 1 <= len(model) <= 256:
        raise _bad("model", "must be a non-empty string (at most 256 characters)")
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad("stream", "must be a boolean")
    for key in ("max_tokens", "max_completion_tokens", "n", "best_of"):
        value = payload.get(key)
        if value is not None and (not _is_int(value) or value < 1):
            raise _bad(key, "must be an integer >= 1")
    min_tokens = payload.get("min_tokens")
    if min_tokens is not None and (not _is_int(min_tokens) or min_tokens < 0):
        raise _bad("min_tokens", "must be an integer >= 0")
    options = payload.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _bad("stream_options", "must be an object")
    if endpoint == "chat":
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _bad("messages", "must be a non-empty list of messages")
        if not all(isinstance(m, dict) for m in messages):
            raise _bad("messages", "every message must be an object")
        return
    prompt = payload.get("prompt")
    if isinstance(prompt, str):
        return
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, str) for p in prompt) or all(_is_int(p) for p in prompt):
            return
        if all(isinstance(p, list) and all(_is_int(t) for t in p) for p in prompt):
            return
    raise _bad("prompt", "must be a string, a list of strings or a list of token ids")


def parse_request(body: bytes, endpoint: Endpoint) -> dict[str, Any]:
    """The JSON object of a chat or completions request: 400 if not JSON, 422 if invalid."""
    if not body:
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object")
    check_fields(payload, endpoint)
    return payload


def apply_max_tokens(payload: dict[str, Any], cap: int) -> None:
    """Enforce the tenant's cap: a larger request is refused (400), a missing one is set."""
    asked = [
        (k, payload[k])
        for k in ("max_tokens", "max_completion_tokens")
        if payload.get(k) is not None
    ]
    for key, value in asked:
        if value > cap:
            raise InvalidRequest(
                f"{key} {value} exceeds this API key's limit of {cap}",
                param=key,
                code="max_tokens_exceeded",
            )
    if not asked:
        payload["max_tokens"] = cap


def _limit(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="request_limit_exceeded")


def _prompt_count(payload: dict[str, Any]) -> int:
    """How many prompts one completions request holds (a list of token ids is one)."""
    prompt = payload.get("prompt")
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str | list):
        return len(prompt)
    return 1


def apply_multiplier_limits(
    payload: dict[str, Any], *, max_n: int, max_best_of: int, max_prompts: int, max_total: int
) -> None:
    """400 for the fields that multiply the work of one request (after ``apply_max_tokens``).

    ``n`` and ``best_of`` (choices generated per prompt), the length of a completions
    prompt list, ``min_tokens`` (at most the request's ``max_tokens``), and the tokens all
    of them may generate together: ``max_tokens x max(n, best_of) x prompts`` (a request
    for one choice of one prompt is bounded by the key's ``max_tokens`` cap alone).
    """
    n = payload.get("n") or 1
    best_of = payload.get("best_of") or 1
    if n > max_n:
        raise _limit("n", f"n {n} exceeds this gateway's limit of {max_n}")
    if best_of > max_best_of:
        raise _limit("best_of", f"best_of {best_of} exceeds this gateway's limit of {max_best_of}")
    prompts = _prompt_count(payload)
    if prompts > max_prompts:
        raise _limit("prompt", f"{prompts} prompts exceed this gateway's limit of {max_prompts}")
    caps = [payload[k] for k in ("max_tokens", "max_completion_tokens") if payload.get(k)]
    max_tokens = max(caps) if caps else 0
    min_tokens = payload.get("min_tokens") or 0
    if min_tokens > max_tokens:
        raise _limit("min_tokens", f"min_tokens {min_tokens} exceeds max_tokens {max_tokens}")
    copies = max(n, best_of) * prompts
    if copies > 1 and max_tokens * copies > max_total:
        raise _limit(
            "max_tokens",
            f"max_tokens {max_tokens} x {copies} completions exceeds this gateway's budget of "
            f"{max_total} tokens per request; lower max_tokens, n, best_of or the prompts",
        )


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        parts = (p for p in content if isinstance(p, dict) and p.get("type") == "text")
        return "".join(str(p.get("text", "")) for p in parts)
    return ""


def prompt_text(payload: dict[str, Any], endpoint: Endpoint) -> str:
    """The text the drift service looks at: the last user message, or the prompt."""
    if endpoint == "chat":
        for message in reversed(payload["messages"]):
            if message.get("role") == "user":
                return _text_of(message.get("content"))[:MAX_TEXT_CHARS]
        return ""
    prompt = payload["prompt"]
    if isinstance(prompt, str):
        return prompt[:MAX_TEXT_CHARS]
    if prompt and isinstance(prompt[0], str):
        return str(prompt[0])[:MAX_TEXT_CHARS]
    return ""


def _tool_calls_of(message: dict[str, Any]) -> list[tuple[str, str]]:
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return []
    found = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            found.append((str(function.get("name") or ""), str(function.get("arguments") or "")))
    return found


def first_choice(choices: list[Any]) -> dict[str, Any] | None:
    """The choice with index 0 (``n > 1`` sends several; only the first is recorded)."""
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


def completion_summary(data: dict[str, Any], endpoint: Endpoint) -> tuple[str, str | None]:
    """(answer of the first choice, its finish reason) of a non-streaming response."""
    first = first_choice(data.get("choices") or [])
    if first is None:
        return "", None
    if endpoint == "chat":
        message = first.get("message") or {}
        if isinstance(message, dict):
            text = answer_text(_text_of(message.get("content")), _tool_calls_of(message))
        else:
            text = ""
    else:
        text = str(first.get("text") or "")
    reason = first.get("finish_reason")
    return text[:MAX_TEXT_CHARS], (str(reason)[:32] if reason is not None else None)


def usage_of(data: dict[str, Any]) -> tuple[int, int]:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return 0, 0
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
