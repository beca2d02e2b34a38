"""The event contract shared by the gateway, the drift service and the retrain job.

Events travel gateway -> drift service as batched JSON over HTTP
(``POST /v1/events`` with an :class:`EventBatch`); feedback travels one at a
time (``POST /v1/feedback`` with a :class:`FeedbackEvent`) because it must be
committed before the gateway acknowledges it. Nothing else is duplicated
between the services: import these models, never redefine them.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from driftgate.core.ids import time_ordered_id
from driftgate.core.limits import INT_COLUMN_MAX

#: Largest batch the drift service accepts; the gateway never sends more.
MAX_BATCH_EVENTS = 1000
#: Longest text kept per prompt or completion (characters); longer is truncated by the sender.
MAX_TEXT_CHARS = 32_000

Endpoint = Literal["chat", "completions"]


def new_event_id() -> str:
    return time_ordered_id()


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


class EventBatch(BaseModel):
    """What the gateway posts to ``/v1/events``."""

    model_config = ConfigDict(extra="forbid")

    events: list[RequestEvent] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)
