"""One supervised chat example: what training, curation and evaluation exchange."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChatExample:
    """A (system prompt, user prompt, assistant completion) triple.

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

    def __post_init__(self) -> None:
        if not self.prompt:
            raise ValueError("ChatExample.prompt must not be empty")
        if not self.completion:
            raise ValueError("ChatExample.completion must not be empty")
        if not self.weight > 0:
            raise ValueError(f"ChatExample.weight must be > 0, got {self.weight}")

    def messages(self, *, with_completion: bool) -> list[dict[str, str]]:
        """OpenAI-style chat messages (the shape vLLM's chat endpoint receives)."""
        out: list[dict[str, str]] = []
        if self.system is not None:
            out.append({"role": "system", "content": self.system})
        out.append({"role": "user", "content": self.prompt})
        if with_completion:
            out.append({"role": "assistant", "content": self.completion})
        return out
