"""Signals extracted from request and feedback events (pure functions)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from driftgate.core.adapters import BASE_LABEL
from driftgate.core.events import FeedbackEvent, RequestEvent

SignalKind = Literal["numeric", "binary", "categorical"]

#: Every signal the service watches, with its kind.
SIGNALS: dict[str, SignalKind] = {
    "prompt_tokens": "numeric",
    "completion_tokens": "numeric",
    "latency_ms": "numeric",
    "ttft_ms": "numeric",
    # answer confidence of chat requests (RequestEvent fields), only where the gateway measured it
    "mean_logprob": "numeric",
    "first_token_margin": "numeric",
    "finish_length": "binary",
    "empty_output": "binary",
    "refusal": "binary",
    "finish_reason": "categorical",
    "feedback_score": "numeric",
    "negative_feedback": "binary",
}

REFUSAL_PATTERN = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry, (but )?i|i can(?:'|no)t|i cannot|i am unable|i'?m unable"
    r"|i'?m not able|i am not able|as an ai\b|i won'?t be able|unfortunately,? i can)",
    re.IGNORECASE,
)


def is_refusal(text: str | None) -> bool:
    """Whether a completion reads like a refusal.

    >>> is_refusal("I'm sorry, but I can't help with that.")
    True
    >>> is_refusal("The capital of France is Paris.")
    False
    """
    return bool(text) and REFUSAL_PATTERN.match(text or "") is not None


def is_empty(event: RequestEvent) -> bool:
    """No output: no completion tokens, or only whitespace. A tool call is an output (its
    text may be empty where the text policy keeps none)."""
    if event.finish_reason == "tool_calls":
        return False
    if event.completion_text is not None:
        return not event.completion_text.strip()
    return event.completion_tokens == 0


def labels(adapter: str | None, version: int | None) -> tuple[str, str]:
    """Metric labels of an (adapter, version): ``("base", "base")`` for the base model."""
    if adapter is None:
        return BASE_LABEL, BASE_LABEL
    return adapter, BASE_LABEL if version is None else str(version)


def sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class RequestFeatures:
    """What is always kept of a request, whatever the privacy setting."""

    ok: bool
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    ttft_ms: float | None
    finish_reason: str | None
    empty: bool
    refusal: bool
    mean_logprob: float | None = None
    first_token_margin: float | None = None

    def signals(self) -> list[tuple[str, float | str]]:
        """The (signal, value) pairs a successful request contributes; none for a failed one."""
        if not self.ok:
            return []
        out: list[tuple[str, float | str]] = [
            ("prompt_tokens", float(self.prompt_tokens)),
            ("completion_tokens", float(self.completion_tokens)),
            ("latency_ms", self.latency_ms),
            ("finish_length", 1.0 if self.finish_reason == "length" else 0.0),
            ("empty_output", 1.0 if self.empty else 0.0),
            ("refusal", 1.0 if self.refusal else 0.0),
            ("finish_reason", self.finish_reason or "none"),
        ]
        if self.ttft_ms is not None:
            out.append(("ttft_ms", self.ttft_ms))
        if self.mean_logprob is not None:
            out.append(("mean_logprob", self.mean_logprob))
        if self.first_token_margin is not None:
            out.append(("first_token_margin", self.first_token_margin))
        return out


def request_features(event: RequestEvent) -> RequestFeatures:
    return RequestFeatures(
        ok=event.status_code < 400,
        prompt_tokens=event.prompt_tokens,
        completion_tokens=event.completion_tokens,
        latency_ms=event.latency_ms,
        ttft_ms=event.ttft_ms,
        finish_reason=event.finish_reason,
        empty=is_empty(event),
        refusal=is_refusal(event.completion_text),
        mean_logprob=event.mean_logprob,
        first_token_margin=event.first_token_margin,
    )


def feedback_signals(score: float | None, negative: bool) -> list[tuple[str, float | str]]:
    """The (signal, value) pairs one feedback contributes."""
    out: list[tuple[str, float | str]] = [("negative_feedback", 1.0 if negative else 0.0)]
    if score is not None:
        out.append(("feedback_score", score))
    return out


def feedback_negative(event: FeedbackEvent) -> bool:
    return event.is_negative
