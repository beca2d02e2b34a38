"""The bounded record of what the engine was asked for a chat request (no network).

Builds the JSON of :class:`driftgate.core.events.ServedRequest` from the request payload as
forwarded: every message's role, text content and participant name, an assistant turn's
tool calls, a tool result's call id; the tools by hash and name; ``response_format``;
the sampling parameters that change the target. Whatever does not fit the caps is cut and
the record is marked incomplete, so a valid request never produces an invalid event.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from driftgate.core.events import (
    MAX_NAME_CHARS,
    MAX_RECORD_CHARS,
    MAX_RECORD_MESSAGES,
    MAX_RECORD_STOP,
    MAX_RECORD_TOOL_CALLS,
    MAX_RECORD_TOOL_NAMES,
    MAX_RESPONSE_FORMAT_CHARS,
    MAX_STOP_CHARS,
    MAX_TEXT_CHARS,
    MAX_TOOL_CHOICE_CHARS,
    MAX_TOOLS_CHARS,
)
from driftgate.core.limits import INT_COLUMN_MAX

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


class _Budget:
    """Characters left for the record; notes whether anything was cut."""

    __slots__ = ("complete", "left")

    def __init__(self) -> None:
        self.left = MAX_RECORD_CHARS
        self.complete = True

    def take(self, text: str, cap: int = MAX_TEXT_CHARS) -> str:
        keep = min(len(text), cap, self.left)
        if keep < len(text):
            self.complete = False
        self.left -= keep
        return text[:keep]

    def name(self, value: Any) -> str:
        text = value if isinstance(value, str) else ""
        if len(text) > MAX_NAME_CHARS or not isinstance(value, str | None):
            self.complete = False
        return text[:MAX_NAME_CHARS]


def _content(content: Any, budget: _Budget) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return budget.take(content)
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            else:
                budget.complete = False  # images, audio: not recorded
        # Joined as vLLM joins text parts for a template that takes string content.
        return budget.take("\n".join(texts))
    budget.complete = False
    return ""


def _tool_calls(calls: Any, budget: _Budget) -> list[dict[str, Any]]:
    if not isinstance(calls, list):
        return []
    if len(calls) > MAX_RECORD_TOOL_CALLS:
        budget.complete = False
    out = []
    for call in calls[:MAX_RECORD_TOOL_CALLS]:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            budget.complete = False
            continue
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments).decode() if arguments is not None else ""
        out.append(
            {
                "id": budget.name(call.get("id")) or None,
                "name": budget.name(function.get("name")),
                "arguments": budget.take(arguments),
            }
        )
    return out


def _message(message: Any, budget: _Budget) -> dict[str, Any] | None:
    role = message.get("role") if isinstance(message, dict) else None
    if not isinstance(role, str) or role not in _ROLES:  # a dict role is unhashable
        budget.complete = False
        return None
    out: dict[str, Any] = {"role": role, "content": _content(message.get("content"), budget)}
    if message.get("name") is not None:
        out["name"] = budget.name(message["name"])
    if role == "assistant":
        calls = _tool_calls(message.get("tool_calls"), budget)
        if calls:
            out["tool_calls"] = calls
    if role == "tool":
        out["tool_call_id"] = budget.name(message.get("tool_call_id")) or None
    return out


def canonical_json(tools: Any) -> bytes:
    """A JSON value as sent (the tools list, ``response_format``) as canonical JSON
    (sorted keys, no spaces).

    >>> canonical_json([{"type": "function", "function": {"name": "f"}}])
    b'[{"function":{"name":"f"},"type":"function"}]'
    """
    return orjson.dumps(tools, option=orjson.OPT_SORT_KEYS)


def tools_sha256(tools: Any) -> str:
    """SHA-256 of the tools list as canonical JSON.

    >>> tools_sha256([{"type": "function", "function": {"name": "f"}}]) == tools_sha256(
    ...     [{"function": {"name": "f"}, "type": "function"}])
    True
    """
    return hashlib.sha256(canonical_json(tools)).hexdigest()


def _json_within(canonical: bytes | None, cap: int, budget: _Budget) -> str | None:
    """Canonical JSON as recorded; ``None`` (and the record incomplete) when over ``cap``."""
    if canonical is None:
        return None
    text = canonical.decode()
    if len(text) > cap:
        budget.complete = False
        return None
    return text


def _tool_names(tools: list[Any], budget: _Budget) -> list[str]:
    if len(tools) > MAX_RECORD_TOOL_NAMES:
        budget.complete = False
    names = []
    for tool in tools[:MAX_RECORD_TOOL_NAMES]:
        function = tool.get("function") if isinstance(tool, dict) else None
        names.append(budget.name(function.get("name") if isinstance(function, dict) else None))
    return names


def _number(value: Any, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if low <= value <= high else None


def _sampling(payload: dict[str, Any], budget: _Budget) -> dict[str, Any]:
    max_tokens = payload.get("max_tokens") or payload.get("max_completion_tokens")
    stop = payload.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    stops = [s for s in stops if isinstance(s, str)]
    if len(stops) > MAX_RECORD_STOP or any(len(s) > MAX_STOP_CHARS for s in stops):
        budget.complete = False
    return {
        "temperature": _number(payload.get("temperature"), 0.0, float("inf")),
        "top_p": _number(payload.get("top_p"), 0.0, 1.0),
        "max_tokens": (
            max_tokens if type(max_tokens) is int and 1 <= max_tokens <= INT_COLUMN_MAX else None
        ),
        "stop": [s[:MAX_STOP_CHARS] for s in stops[:MAX_RECORD_STOP]],
    }


def served_record(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON of a :class:`~driftgate.core.events.ServedRequest` for a chat payload that
    passed ``check_fields``; ``None`` when no message could be recorded.

    >>> r = served_record({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    >>> r["messages"], r["complete"]
    ([{'role': 'user', 'content': 'hi'}], True)
    """
    budget = _Budget()
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return None
    if len(messages) > MAX_RECORD_MESSAGES:
        budget.complete = False
        messages = messages[-MAX_RECORD_MESSAGES:]  # the latest turns matter most
    recorded = [m for m in (_message(m, budget) for m in messages) if m is not None]
    if not recorded:
        return None
    tools = payload.get("tools")
    canonical = canonical_json(tools) if tools else None
    response_format = payload.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    tool_choice = payload.get("tool_choice")
    return {
        "messages": recorded,
        "tools_sha256": hashlib.sha256(canonical).hexdigest() if canonical else None,
        "tool_names": _tool_names(tools, budget) if isinstance(tools, list) else [],
        "tools_json": _json_within(canonical, MAX_TOOLS_CHARS, budget),
        "response_format": kind[:32] if isinstance(kind, str) else None,
        "response_format_json": _json_within(
            canonical_json(response_format) if isinstance(response_format, dict) else None,
            MAX_RESPONSE_FORMAT_CHARS,
            budget,
        ),
        "tool_choice_json": _json_within(
            canonical_json(tool_choice) if isinstance(tool_choice, str | dict) else None,
            MAX_TOOL_CHOICE_CHARS,
            budget,
        ),
        "sampling": _sampling(payload, budget),
        "complete": budget.complete,
    }
