"""The report's view of one curated example: the messages as the app sent them (the
served record the retrain job curated) and the text the base model's chat template
rendered from them for training, both as the retrain job recorded them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any


def _fence(text: str, lang: str = "") -> list[str]:
    """A Markdown code block whose fence is longer than any backtick run in ``text``.

    >>> _fence("a ``` b")[0]
    '````'
    """
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{lang}", text, fence]


def sample_lines(samples: Sequence[Mapping[str, Any]]) -> list[str]:
    """Markdown for the first recorded sample (the retrain job puts one with earlier turns
    first); a line saying none was recorded otherwise."""
    head = ["## One curated example, as served and as trained", ""]
    if not samples:
        return [*head, "The retrain run recorded no rendered example.", ""]
    s = samples[0]
    messages = json.dumps(s.get("messages", []), indent=2, ensure_ascii=False)
    return [
        *head,
        f"Request `{s.get('request_id') or '?'}` of tenant `{s.get('tenant') or '?'}`, "
        "as served (the messages the app sent; the target is its queue after feedback):",
        "",
        *_fence(messages, "json"),
        "",
        f"Target: `{s.get('target', '')}`",
        "",
        "As trained: the base model's chat template rendered the prompt (no loss) and the "
        "target (the loss), as the retrain job tokenized them:",
        "",
        *_fence(str(s.get("rendered_prompt", "")), "text"),
        "",
        *_fence(str(s.get("rendered_target", "")), "text"),
        "",
    ]
