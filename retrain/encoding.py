"""Chat examples -> token ids with the loss restricted to the completion.

The prompt is rendered by the model's chat template with the generation prompt, exactly what
vLLM renders for a chat request, and tokenized on its own; the completion is the rest of the
rendered conversation (content plus end-of-turn marker), tokenized on its own. Their
concatenation is what the model sees at serving time followed by what it should generate, so
the loss covers exactly the tokens the adapter will have to produce.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from retrain.examples import ChatExample


class ChatTokenizer(Protocol):
    """The part of a Hugging Face tokenizer this module uses."""

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...

    def __call__(self, text: str, **kwargs: Any) -> Any: ...


class TemplateError(ValueError):
    """The chat template does not render the prompt as a prefix of the full conversation."""


@dataclass(frozen=True, slots=True)
class EncodedExample:
    """Token ids of prompt + completion; the first ``n_prompt`` positions carry no loss."""

    input_ids: tuple[int, ...]
    n_prompt: int
    weight: float

    @property
    def n_completion(self) -> int:
        return len(self.input_ids) - self.n_prompt


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        parsed = json.loads(raw) if isinstance(raw, str) and raw else {}
    except json.JSONDecodeError:
        parsed = {}
    return parsed if isinstance(parsed, dict) else {}


def as_template_input(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as vLLM hands them to the chat template: an assistant turn's tool-call
    arguments parsed from their JSON string into an object (``{}`` when not an object).

    >>> as_template_input([{"role": "assistant", "content": "", "tool_calls": [
    ...     {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    ... ]}])[0]["tool_calls"][0]["function"]
    {'name': 'f', 'arguments': {'a': 1}}
    """
    out = []
    for message in messages:
        calls = message.get("tool_calls")
        if message.get("role") == "assistant" and isinstance(calls, list):
            message = dict(message)
            if calls:
                message["tool_calls"] = [
                    {
                        **call,
                        "function": {
                            **call["function"],
                            "arguments": _arguments(call["function"].get("arguments")),
                        },
                    }
                    for call in calls
                ]
            else:
                del message["tool_calls"]
        out.append(message)
    return out


def render(tokenizer: ChatTokenizer, example: ChatExample) -> tuple[str, str]:
    """(prompt text with generation prompt, completion text including the end-of-turn)."""
    tools = example.tools()
    prompt = tokenizer.apply_chat_template(
        as_template_input(example.messages(with_completion=False)),
        tools=tools,
        tokenize=False,
        add_generation_prompt=True,
    )
    full = tokenizer.apply_chat_template(
        as_template_input(example.messages(with_completion=True)),
        tools=tools,
        tokenize=False,
        add_generation_prompt=False,
    )
    if not isinstance(prompt, str) or not isinstance(full, str):
        raise TemplateError("the chat template did not render text")
    if not full.startswith(prompt):
        raise TemplateError(
            "the chat template does not render the prompt as a prefix of the conversation; "
            "completion-only loss needs that"
        )
    completion = full[len(prompt) :]
    if not completion.strip():
        raise TemplateError("the chat template rendered an empty completion")
    return prompt, completion


def prompt_ids(tokenizer: ChatTokenizer, example: ChatExample) -> list[int]:
    prompt, _ = render(tokenizer, example)
    return list(tokenizer(prompt, add_special_tokens=False)["input_ids"])


def encode(
    tokenizer: ChatTokenizer, example: ChatExample, max_length: int
) -> EncodedExample | None:
    """Encode one example; ``None`` when prompt + completion exceed ``max_length`` tokens."""
    prompt, completion = render(tokenizer, example)
    p_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    c_ids = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    if not c_ids or len(p_ids) + len(c_ids) > max_length:
        return None
    return EncodedExample(
        input_ids=tuple(p_ids + c_ids), n_prompt=len(p_ids), weight=example.weight
    )


def encode_all(
    tokenizer: ChatTokenizer, examples: list[ChatExample], max_length: int
) -> tuple[list[EncodedExample], int]:
    """Encode every example; returns the encoded ones and how many were too long."""
    out: list[EncodedExample] = []
    skipped = 0
    for ex in examples:
        enc = encode(tokenizer, ex, max_length)
        if enc is None:
            skipped += 1
        else:
            out.append(enc)
    return out, skipped
