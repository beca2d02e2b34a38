"""A few curated examples as the run trained them: the messages as served and the text the
chat template rendered from them. Recorded with a version so that anyone (the demo report,
an operator) can check that training matched serving without loading a tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from retrain.encoding import ChatTokenizer, render
from retrain.examples import ChatExample


def pick_samples(examples: Sequence[ChatExample], limit: int = 2) -> list[ChatExample]:
    """The first example with earlier turns, then the first without, up to ``limit``:
    one of each shape the data holds, first in their order.

    >>> from driftgate.core.events import RecordedMessage
    >>> turn = (RecordedMessage(role="user", content="a"),
    ...         RecordedMessage(role="assistant", content="b"))
    >>> xs = [ChatExample("p1", "c"), ChatExample("p2", "c", history=turn)]
    >>> [x.prompt for x in pick_samples(xs)]
    ['p2', 'p1']
    """
    with_history = [e for e in examples if e.history][:1]
    without = [e for e in examples if not e.history][:1]
    return (with_history + without)[:limit]


def rendered_samples(
    tokenizer: ChatTokenizer, examples: Sequence[ChatExample], limit: int = 2
) -> list[dict[str, Any]]:
    """``{"request_id", "tenant", "messages", "target", "rendered_prompt",
    "rendered_target"}`` for the examples :func:`pick_samples` chooses; the rendered texts
    are exactly what training tokenized (prompt: no loss; target: the loss)."""
    out = []
    for example in pick_samples(examples, limit):
        prompt, target = render(tokenizer, example)
        out.append(
            {
                "request_id": example.request_id,
                "tenant": example.tenant,
                "messages": example.messages(with_completion=False),
                "target": example.completion,
                "rendered_prompt": prompt,
                "rendered_target": target,
            }
        )
    return out
