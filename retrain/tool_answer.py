"""Answers that are tool calls, as the gateway records them (pure functions).

The recorded answer (``driftgate.core.recorded_answer.answer_text``) is an answer's text,
then its tool calls as one ``{"tool_calls": [{"name", "arguments"}, ...]}`` JSON line.
Such an answer becomes an assistant message with ``tool_calls`` again for training (the
chat template renders it in its own tool format), and is judged by its calls: the same
functions, in order, with JSON-equal arguments; the text around them does not count.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from driftgate.core.events import RecordedToolCall


@dataclass(frozen=True, slots=True)
class ToolCallAnswer:
    """A recorded answer that ends with tool calls: its text before them, and the calls."""

    content: str
    calls: tuple[RecordedToolCall, ...]

    def message(self) -> dict[str, Any]:
        """The assistant message in the OpenAI chat shape (arguments as JSON strings)."""
        return {
            "role": "assistant",
            "content": self.content,
            "tool_calls": [
                {
                    "id": c.id or f"call_{i}",
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for i, c in enumerate(self.calls)
            ],
        }


def parse_tool_call_answer(text: str) -> ToolCallAnswer | None:
    """The tool calls a recorded answer ends with; ``None`` for a text answer (or a line
    that is not a valid list of calls).

    >>> a = parse_tool_call_answer('Checking.\\n{"tool_calls": [{"name": "f", "arguments": "{}"}]}')
    >>> a.content, a.calls[0].name
    ('Checking.', 'f')
    >>> parse_tool_call_answer("Q-BIL") is None
    True
    """
    head, _, last = text.rstrip().rpartition("\n")
    if not last.startswith('{"tool_calls"'):
        return None
    try:
        raw = json.loads(last).get("tool_calls")
        if not isinstance(raw, list) or not raw:
            return None
        calls = tuple(RecordedToolCall.model_validate(c) for c in raw)
    except (ValueError, TypeError, AttributeError, ValidationError):
        return None
    return ToolCallAnswer(content=head.rstrip(), calls=calls)


def is_tool_call_answer(text: str) -> bool:
    """Whether a recorded answer ends with a tool-call line (a JSON object whose
    ``tool_calls`` is a list), whether or not the calls in it are valid.

    >>> is_tool_call_answer('{"tool_calls": [{"name": "f", "arguments": "{}"}]}')
    True
    >>> is_tool_call_answer("Q-BIL")
    False
    """
    last = text.rstrip().rsplit("\n", 1)[-1]
    if not last.startswith('{"tool_calls"'):
        return False
    try:
        return isinstance(json.loads(last).get("tool_calls"), list)
    except ValueError:
        return False


def _arguments(raw: str) -> object:
    """Arguments as JSON values; text that is not JSON is compared as text."""
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        return raw


def calls_match(prediction: str, reference: str) -> float:
    """1.0 when ``prediction`` makes the tool calls of ``reference`` (same function names
    in the same order, JSON-equal arguments), else 0.0; the text around them is ignored.

    >>> def answer(name, arguments, text=""):
    ...     line = json.dumps({"tool_calls": [{"name": name, "arguments": arguments}]})
    ...     return f"{text}\\n{line}" if text else line
    >>> ref = answer("lookup", '{"floor": 3, "b": 1}')
    >>> calls_match(answer("lookup", '{"b":1,"floor":3}', "Sure."), ref)
    1.0
    >>> calls_match(answer("lookup", '{"floor": 4, "b": 1}'), ref), calls_match("lookup", ref)
    (0.0, 0.0)
    """
    want, got = parse_tool_call_answer(reference), parse_tool_call_answer(prediction)
    if want is None or got is None or len(want.calls) != len(got.calls):
        return 0.0
    same = all(
        w.name == g.name and _arguments(w.arguments) == _arguments(g.arguments)
        for w, g in zip(want.calls, got.calls, strict=True)
    )
    return 1.0 if same else 0.0


def judging_tool_calls(metric: Callable[[str, str], float]) -> Callable[[str, str], float]:
    """``metric`` for text references; :func:`calls_match` for tool-call references.

    >>> score = judging_tool_calls(lambda p, r: float(p == r))
    >>> ref = json.dumps({"tool_calls": [{"name": "f", "arguments": '{"a": 1}'}]})
    >>> said = json.dumps({"tool_calls": [{"name": "f", "arguments": '{"a":1}'}]})
    >>> score("Q-HW", "Q-HW"), score(said, ref), score("f(a=1)", ref)
    (1.0, 1.0, 0.0)
    """

    def score(prediction: str, reference: str) -> float:
        if is_tool_call_answer(reference):
            return calls_match(prediction, reference)
        return metric(prediction, reference)

    return score
