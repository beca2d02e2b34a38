"""One supervised chat example: what training, curation and evaluation exchange."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from driftgate.core.events import RecordedMessage
from retrain.tool_answer import parse_tool_call_answer


@dataclass(frozen=True, slots=True)
class ChatExample:
    """A served chat request and the assistant turn it should have got.

    The request is the system prompt (if any), the earlier turns (``history``: user,
    assistant and tool messages between the system prompt and the last user message, as
    served), and the last user message (``prompt``); ``completion`` is the target, as the
    gateway records answers: a completion that ends with a ``{"tool_calls": [...]}`` line
    is an assistant turn with those tool calls (:mod:`retrain.tool_answer`), which the
    chat template renders in its own tool format.

    Rendered with the base model's chat template, exactly as vLLM renders a chat request,
    so that what the adapter learns is what it will be asked. ``weight`` scales the
    example's loss (recency weighting); it never changes which tokens are trained.

    ``tenant`` and ``request_id`` say where an example curated from traffic came from
    (provenance: whose data trained a version); both are ``None`` for examples that are
    not traffic (the golden set, hand-made training sets). Neither reaches the model.
    """

    prompt: str
    completion: str
    system: str | None = None
    weight: float = 1.0
    tenant: str | None = None
    request_id: str | None = None
    history: tuple[RecordedMessage, ...] = ()
    #: The request's ``tools`` as served (canonical JSON); the template renders them.
    tools_json: str | None = None
    #: The ``name`` the system and last user messages carried, if any.
    system_name: str | None = None
    prompt_name: str | None = None
    #: The request's ``response_format`` (canonical JSON) and ``stop`` strings, as served:
    #: the gate sends them again (they change the answer, not the rendered prompt).
    response_format_json: str | None = None
    stop: tuple[str, ...] = ()
    #: The request's ``tool_choice`` (canonical JSON), as served: the gate sends it again.
    tool_choice_json: str | None = None

    def __post_init__(self) -> None:
        if not self.prompt:
            raise ValueError("ChatExample.prompt must not be empty")
        if not self.completion:
            raise ValueError("ChatExample.completion must not be empty")
        if not self.weight > 0:
            raise ValueError(f"ChatExample.weight must be > 0, got {self.weight}")

    def extras(self) -> dict[str, Any]:
        """The request's fields that newer records carry, only those set: the dataset
        hash and split key add them only when present, so older examples hash as before."""
        extras: dict[str, Any] = {
            "system_name": self.system_name,
            "prompt_name": self.prompt_name,
            "response_format_json": self.response_format_json,
            "stop": list(self.stop),
            "tool_choice_json": self.tool_choice_json,
        }
        return {k: v for k, v in extras.items() if v not in (None, [])}

    def response_format(self) -> dict[str, Any] | None:
        """The request's ``response_format`` as sent."""
        if self.response_format_json is None:
            return None
        return dict(json.loads(self.response_format_json))

    def tool_choice(self) -> str | dict[str, Any] | None:
        """The request's ``tool_choice`` as sent."""
        if self.tool_choice_json is None:
            return None
        choice: str | dict[str, Any] = json.loads(self.tool_choice_json)
        return choice

    def tools(self) -> list[dict[str, Any]] | None:
        """The request's tools, as vLLM passes them to the chat template."""
        return None if self.tools_json is None else list(json.loads(self.tools_json))

    def messages(self, *, with_completion: bool) -> list[dict[str, Any]]:
        """OpenAI-style chat messages (the shape vLLM's chat endpoint receives)."""
        out: list[dict[str, Any]] = []
        if self.system is not None:
            out.append(_named({"role": "system", "content": self.system}, self.system_name))
        out.extend(m.openai() for m in self.history)
        out.append(_named({"role": "user", "content": self.prompt}, self.prompt_name))
        if with_completion:
            out.append(self.target_message())
        return out

    def target_message(self) -> dict[str, Any]:
        """The target assistant turn: text, or text and tool calls."""
        calls = parse_tool_call_answer(self.completion)
        if calls is not None:
            return calls.message()
        return {"role": "assistant", "content": self.completion}


def _named(message: dict[str, Any], name: str | None) -> dict[str, Any]:
    return message if name is None else {**message, "name": name}
