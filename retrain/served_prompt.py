"""A logged chat request read as an example's parts: system prompt, earlier turns, last user
message; and what the retrain job cannot render as served (pure functions)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from driftgate.core.events import RecordedMessage, ServedRequest


@dataclass(frozen=True, slots=True)
class PromptParts:
    """A chat request as an example holds it: system prompt, earlier turns, last user text."""

    system: str | None
    history: tuple[RecordedMessage, ...]
    prompt: str
    tools_json: str | None = None
    #: The ``name`` the system and last user messages carried, if any.
    system_name: str | None = None
    prompt_name: str | None = None
    #: The request's ``response_format`` (canonical JSON) and ``stop`` strings, as served.
    response_format_json: str | None = None
    stop: tuple[str, ...] = ()
    tool_choice_json: str | None = None


def message_parts(messages: Sequence[RecordedMessage]) -> PromptParts | None:
    """The parts of a served message list; ``None`` unless it ends with a user message
    (the target is the assistant turn that answers it). A leading ``system`` message is
    the system prompt; everything between it and the last user message is history."""
    if not messages or messages[-1].role != "user":
        return None
    head = messages[0]
    has_system = head.role == "system" and len(messages) > 1
    last = messages[-1]
    return PromptParts(
        head.content if has_system else None,
        tuple(messages[1 if has_system else 0 : -1]),
        last.content,
        system_name=head.name if has_system else None,
        prompt_name=last.name,
    )


def split_prompt(prompt_text: str) -> PromptParts | None:
    """The parts of a logged prompt text: plain text is the user message; a JSON list of
    chat messages is read as a served message list (:func:`message_parts`)."""
    text = prompt_text.strip()
    if not text.startswith("["):
        return PromptParts(None, (), prompt_text)
    try:
        msgs = json.loads(text)
        recorded = [RecordedMessage.model_validate(m) for m in msgs]
    except (ValueError, TypeError):
        return PromptParts(None, (), prompt_text)
    return message_parts(recorded)


def served_parts(served: ServedRequest) -> tuple[PromptParts | None, str]:
    """(parts, counter key of the exclusion) of a recorded request."""
    if not served.complete:
        return None, "excluded_record_incomplete"
    if served.tools_json is None and (served.tools_sha256 is not None or served.tool_names):
        # Only the tools' hash is recorded: the template's tool block cannot be rebuilt.
        return None, "excluded_tools_not_recorded"
    parts = message_parts(served.messages)
    if parts is not None:
        parts = replace(
            parts,
            tools_json=served.tools_json,
            response_format_json=served.response_format_json,
            stop=served.sampling.stop,
            tool_choice_json=served.tool_choice_json,
        )
    return parts, "excluded_last_not_user"


def history_key(history: Sequence[RecordedMessage]) -> str:
    """Canonical JSON of earlier turns ("" when none): part of dedup and split keys."""
    if not history:
        return ""
    return json.dumps([m.openai() for m in history], sort_keys=True, ensure_ascii=False)
