"""The event contract shared by the gateway, the drift service and the retrain job.

Events travel gateway -> drift service as batched JSON over HTTP
(``POST /v1/events`` with an :class:`EventBatch`); feedback travels one at a
time (``POST /v1/feedback`` with a :class:`FeedbackEvent`) because it must be
committed before the gateway acknowledges it. Nothing else is duplicated
between the services: import these models, never redefine them.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from driftgate.core.ids import time_ordered_id
from driftgate.core.limits import INT_COLUMN_MAX

#: Largest batch the drift service accepts; the gateway never sends more.
MAX_BATCH_EVENTS = 1000
#: Largest batch body the gateway sends (bytes): half the drift service's default
#: ``max_body_bytes``, so a batch of events that carry long conversations is split, not refused.
MAX_BATCH_BYTES = 4 * 1024 * 1024
#: Longest text kept per prompt or completion (characters); longer is truncated by the sender.
MAX_TEXT_CHARS = 32_000

Endpoint = Literal["chat", "completions"]
MessageRole = Literal["system", "developer", "user", "assistant", "tool"]

#: Caps on the served-request record (:class:`ServedRequest`); the gateway cuts to them and
#: marks the record incomplete, so a valid request never produces an invalid event.
MAX_RECORD_MESSAGES = 64
MAX_RECORD_CHARS = 64_000
MAX_RECORD_TOOL_CALLS = 16
MAX_RECORD_TOOL_NAMES = 64
MAX_RECORD_STOP = 8
MAX_NAME_CHARS = 128
MAX_STOP_CHARS = 256
#: Longest ``tools`` list recorded as JSON; a longer one is kept by hash and names only.
MAX_TOOLS_CHARS = 16_000
#: Lowest logprob vLLM reports (it reports ``-inf`` as this); bounds the confidence fields.
LOGPROB_FLOOR = -9999.0
#: Longest ``response_format`` recorded as JSON; a longer one is kept by its type only.
MAX_RESPONSE_FORMAT_CHARS = 16_000
#: ``tool_choice`` as canonical JSON: a mode (``"auto"``) or a named function.
MAX_TOOL_CHOICE_CHARS = 512


def new_event_id() -> str:
    return time_ordered_id()


class RecordedToolCall(BaseModel):
    """One tool call an assistant turn made: the function's name and its JSON arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    name: str = Field(max_length=MAX_NAME_CHARS)
    arguments: str = Field(default="", max_length=MAX_TEXT_CHARS)


class RecordedMessage(BaseModel):
    """One chat message as the engine received it: its role and text content, the
    participant's ``name`` if the client gave one, the tool calls of an assistant turn, the
    call a tool result answers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: MessageRole
    content: str = Field(default="", max_length=MAX_TEXT_CHARS)
    tool_calls: tuple[RecordedToolCall, ...] = Field(default=(), max_length=MAX_RECORD_TOOL_CALLS)
    tool_call_id: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    #: OpenAI's optional participant name (``{"role": "user", "name": "alice"}``).
    name: str | None = Field(default=None, max_length=MAX_NAME_CHARS)

    def openai(self) -> dict[str, Any]:
        """The message in the OpenAI chat shape (content always a string; ``name`` only
        when recorded)."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.name is not None:
            out["name"] = self.name
        if self.tool_calls:
            out["tool_calls"] = [
                {
                    "id": c.id or f"call_{i}",
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for i, c in enumerate(self.tool_calls)
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


class SamplingRecord(BaseModel):
    """The sampling parameters that change what the answer should be."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=INT_COLUMN_MAX)
    stop: tuple[Annotated[str, Field(max_length=MAX_STOP_CHARS)], ...] = Field(
        default=(), max_length=MAX_RECORD_STOP
    )


class ServedRequest(BaseModel):
    """What the engine was asked for one chat request, bounded (docs/CONTRACTS.md).

    ``complete`` is ``False`` when the gateway had to leave something out to fit the caps
    (messages beyond :data:`MAX_RECORD_MESSAGES` or :data:`MAX_RECORD_CHARS`, non-text
    content parts, tools beyond :data:`MAX_RECORD_TOOL_NAMES`): such a record describes
    the request but is not what was served, so it is never trained on.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: tuple[RecordedMessage, ...] = Field(min_length=1, max_length=MAX_RECORD_MESSAGES)
    #: SHA-256 of the ``tools`` list as sent (canonical JSON: sorted keys, no spaces).
    tools_sha256: str | None = Field(default=None, pattern="^[0-9a-f]{64}$")
    tool_names: tuple[Annotated[str, Field(max_length=MAX_NAME_CHARS)], ...] = Field(
        default=(), max_length=MAX_RECORD_TOOL_NAMES
    )
    #: The ``tools`` list itself, as that canonical JSON, when it fits
    #: :data:`MAX_TOOLS_CHARS`: the chat template renders it into the prompt, so training
    #: needs it to see what was served.
    tools_json: str | None = Field(default=None, max_length=MAX_TOOLS_CHARS)
    #: ``response_format.type`` (``text``, ``json_object``, ``json_schema``).
    response_format: str | None = Field(default=None, max_length=32)
    #: The ``response_format`` object itself (canonical JSON, a JSON schema included) when
    #: it fits :data:`MAX_RESPONSE_FORMAT_CHARS`: the gate sends it again.
    response_format_json: str | None = Field(default=None, max_length=MAX_RESPONSE_FORMAT_CHARS)
    #: ``tool_choice`` as canonical JSON (``"required"``, or the named function's object):
    #: it changes the answer, so the gate sends it again.
    tool_choice_json: str | None = Field(default=None, max_length=MAX_TOOL_CHOICE_CHARS)
    sampling: SamplingRecord = Field(default_factory=SamplingRecord)
    complete: bool = True

    @model_validator(mode="after")
    def _bounded(self) -> ServedRequest:
        size = sum(
            len(m.content) + sum(len(c.arguments) for c in m.tool_calls) for m in self.messages
        )
        if size > MAX_RECORD_CHARS:
            raise ValueError(f"recorded messages hold {size} characters, over {MAX_RECORD_CHARS}")
        return self


class RequestEvent(BaseModel):
    """One inference request as the gateway saw it (successful or not)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["request"] = "request"
    event_id: str = Field(default_factory=new_event_id, min_length=8, max_length=64)
    request_id: str = Field(min_length=1, max_length=128)
    #: Unix seconds when the request arrived.
    ts: float = Field(default_factory=time.time)
    tenant: str = Field(min_length=1, max_length=128)
    #: Logical adapter name (``support``); ``None`` when the base model was called.
    adapter: str | None = Field(default=None, max_length=128)
    #: Adapter version number that served the request; ``None`` for the base model.
    version: int | None = Field(default=None, ge=1, le=INT_COLUMN_MAX)
    #: The client named the version (``support@3``): chosen by the caller, not the route's
    #: random draw, so the canary judge leaves it out. Events of older gateways: ``False``.
    pinned: bool = False
    endpoint: Endpoint = "chat"
    stream: bool = False
    prompt_text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    completion_text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    prompt_tokens: int = Field(default=0, ge=0, le=INT_COLUMN_MAX)
    completion_tokens: int = Field(default=0, ge=0, le=INT_COLUMN_MAX)
    latency_ms: float = Field(default=0.0, ge=0)
    ttft_ms: float | None = Field(default=None, ge=0)
    finish_reason: str | None = Field(default=None, max_length=32)
    status_code: int = Field(default=200, ge=100, le=599)
    replica: str | None = Field(default=None, max_length=256)
    #: The chat request as served (messages, tools by hash, sampling); ``None`` for
    #: completions, for gateways that do not record text, and for older gateways.
    served: ServedRequest | None = None
    #: Answer confidence of choice 0 of a chat answer, from the logprobs the gateway asked
    #: vLLM for: the mean logprob of its generated tokens, and the first token's logprob
    #: minus its best alternative's (top-1 minus top-2 under greedy decoding). ``None`` when
    #: unavailable: completions, no logprobs, a client that asked for fewer than 2
    #: alternatives (the margin), older gateways.
    mean_logprob: float | None = Field(default=None, ge=LOGPROB_FLOOR, le=0.0, allow_inf_nan=False)
    first_token_margin: float | None = Field(
        default=None, ge=LOGPROB_FLOOR, le=-LOGPROB_FLOOR, allow_inf_nan=False
    )


class FeedbackEvent(BaseModel):
    """User feedback on one earlier response, keyed by its request id.

    ``score`` is in [0, 1] (1 = good). ``label`` is a free label (for a
    classification task, the right class). ``correction`` is the completion
    the response should have been. At least one of the three is required.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["feedback"] = "feedback"
    event_id: str = Field(default_factory=new_event_id, min_length=8, max_length=64)
    request_id: str = Field(min_length=1, max_length=128)
    ts: float = Field(default_factory=time.time)
    tenant: str = Field(min_length=1, max_length=128)
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    label: str | None = Field(default=None, max_length=256)
    correction: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)

    @model_validator(mode="after")
    def _needs_content(self) -> FeedbackEvent:
        if self.score is None and self.label is None and self.correction is None:
            raise ValueError("feedback needs at least one of score, label or correction")
        return self

    @property
    def is_negative(self) -> bool:
        """Negative means a low score or a correction was given."""
        if self.score is not None:
            return self.score < 0.5
        return self.correction is not None


class ReviewLabel(BaseModel):
    """A reviewer's answer to one review queue item: the right ``label`` (a class) or the
    ``correction`` (the completion it should have been), or both. ``tenant``: the
    caller's, which the gateway sets (another tenant's item is not found)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str | None = Field(default=None, min_length=1, max_length=128)
    label: str | None = Field(default=None, min_length=1, max_length=256)
    correction: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT_CHARS)

    @model_validator(mode="after")
    def _needs_content(self) -> ReviewLabel:
        if self.label is None and self.correction is None:
            raise ValueError("a review label needs a label or a correction")
        return self


class EventBatch(BaseModel):
    """What the gateway posts to ``/v1/events``."""

    model_config = ConfigDict(extra="forbid")

    events: list[RequestEvent] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)
