"""How a served answer is recorded as text (written by the gateway, read by the drift
features and the retrain job): its text, then its tool calls as one compact JSON line."""

from __future__ import annotations

import orjson

from driftgate.core.events import MAX_TEXT_CHARS


def answer_text(content: str, tool_calls: list[tuple[str, str]]) -> str:
    """What the drift store keeps of an answer: its text, then its tool calls as compact
    JSON (name and arguments), so an answer that is a tool call is not an empty one.

    >>> import json
    >>> json.loads(answer_text("", [("get_weather", '{"city":"Paris"}')]))
    {'tool_calls': [{'name': 'get_weather', 'arguments': '{"city":"Paris"}'}]}
    >>> answer_text("Q-BIL", [])
    'Q-BIL'
    """
    if not tool_calls:
        return content[:MAX_TEXT_CHARS]
    calls = [{"name": name, "arguments": arguments} for name, arguments in tool_calls]
    tools = orjson.dumps({"tool_calls": calls}).decode()
    return (f"{content}\n{tools}" if content else tools)[:MAX_TEXT_CHARS]
