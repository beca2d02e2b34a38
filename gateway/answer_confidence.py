"""Answer confidence from token logprobs: asked of vLLM for the drift service, never shown to a
client that did not ask (pure; no network).

Per chat request the gateway measures two label-free signals of choice 0: the mean logprob
of its generated tokens, and the margin of its first token (the chosen token's logprob
minus the best alternative's: top-1 minus top-2 under greedy decoding, negative when a
sampler picked a less likely token). When the client did not ask for ``logprobs`` the
gateway asks for them (:func:`ask_for_logprobs`) and the answer is relayed with every
choice's ``logprobs`` set back to ``null``, as vLLM sends it unasked; when the client asked,
its answer is left as it is and the numbers come from what it gets.
"""

from __future__ import annotations

import math
from typing import Any

from driftgate.core.events import LOGPROB_FLOOR
from gateway.openai_body import first_choice

#: Alternatives asked per token: with the chosen token vLLM lists the top 2 (the chosen one
#: first), which always holds the chosen token's best alternative.
SIGNAL_TOP_LOGPROBS = 2


def ask_for_logprobs(payload: dict[str, Any]) -> bool:
    """Ask for the tokens' logprobs when the client did not; True when they were added.

    A request that sets any logprobs field itself (``top_logprobs`` without ``logprobs``,
    vLLM's ``logprob_token_ids``, a non-boolean ``logprobs``) goes on unchanged, so the
    engine answers it as the client sent it.

    >>> body = {"model": "m", "messages": []}
    >>> ask_for_logprobs(body), body["logprobs"], body["top_logprobs"]
    (True, True, 2)
    >>> ask_for_logprobs({"logprobs": True, "top_logprobs": 1})
    False
    >>> ask_for_logprobs({"logprobs": False, "top_logprobs": 3})
    False
    """
    if payload.get("logprobs") not in (None, False):
        return False
    if payload.get("top_logprobs") not in (None, 0) or payload.get("logprob_token_ids"):
        return False
    payload["logprobs"] = True
    payload["top_logprobs"] = SIGNAL_TOP_LOGPROBS
    return True


def hide_logprobs(choices: Any) -> None:
    """Set every choice's ``logprobs`` back to ``null`` (what vLLM sends when not asked)."""
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, dict) and choice.get("logprobs") is not None:
                choice["logprobs"] = None


def only_for_logprobs(obj: dict[str, Any]) -> bool:
    """A stream chunk vLLM sends only because logprobs were asked (with logprobs hidden).

    For a token that adds nothing to the answer (a tool-call parser holding back control
    tokens) vLLM skips the chunk, unless logprobs were asked: then it sends an empty delta
    to carry them. Such a chunk is dropped when the client did not ask.
    """
    choices = obj.get("choices")
    if not isinstance(choices, list) or len(choices) != 1:
        return False
    choice = choices[0]
    return (
        isinstance(choice, dict)
        and choice.get("delta") == {}
        and choice.get("finish_reason") is None
        and choice.get("token_ids") is None
        and choice.get("logprobs") is None
    )


def _finite(x: Any) -> float | None:
    if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


class ConfidenceTally:
    """The confidence of choice 0, from its logprobs as they arrive (O(1) state).

    Examples
    --------
    >>> tally = ConfidenceTally()
    >>> tally.add({"content": [
    ...     {"token": "Q", "logprob": -0.1, "top_logprobs": [
    ...         {"token": "Q", "logprob": -0.1}, {"token": "A", "logprob": -2.5}]},
    ...     {"token": "-", "logprob": -0.3, "top_logprobs": []}]})
    >>> round(tally.mean_logprob, 3), round(tally.first_token_margin, 3)
    (-0.2, 2.4)
    """

    __slots__ = ("_count", "_margin", "_sum")

    def __init__(self) -> None:
        self._sum = 0.0
        self._count = 0
        self._margin: float | None = None

    @property
    def mean_logprob(self) -> float | None:
        """Mean logprob of the generated tokens seen; None before any."""
        if not self._count:
            return None
        return min(0.0, max(LOGPROB_FLOOR, self._sum / self._count))

    @property
    def first_token_margin(self) -> float | None:
        """The first token's logprob minus its best alternative's; None when fewer than two
        alternatives came with it (``top_logprobs`` < 2)."""
        return self._margin

    def add(self, logprobs: Any) -> None:
        """Add a choice's ``logprobs`` (``{"content": [token, ...]}``, or ``null``)."""
        content = logprobs.get("content") if isinstance(logprobs, dict) else None
        if not isinstance(content, list):
            return
        for entry in content:
            lp = _finite(entry.get("logprob")) if isinstance(entry, dict) else None
            if lp is None:
                continue
            if self._count == 0:
                self._margin = _margin(entry, lp)
            self._sum += lp
            self._count += 1


def _margin(entry: dict[str, Any], chosen: float) -> float | None:
    tops = entry.get("top_logprobs")
    if not isinstance(tops, list) or len(tops) < 2:
        return None
    others: list[float] = []
    skipped = False
    for top in tops:
        if not isinstance(top, dict):
            continue
        lp = _finite(top.get("logprob"))
        if lp is None:
            continue
        if not skipped and top.get("token") == entry.get("token") and lp == chosen:
            skipped = True  # the chosen token itself
            continue
        others.append(lp)
    if not others:
        return None
    return min(-LOGPROB_FLOOR, max(LOGPROB_FLOOR, chosen - max(others)))


def answer_confidence(data: dict[str, Any], hide: bool) -> ConfidenceTally:
    """The confidence of a whole (non-streamed) chat answer; its logprobs hidden if ``hide``."""
    tally = ConfidenceTally()
    choices = data.get("choices")
    first = first_choice(choices) if isinstance(choices, list) else None
    if first is not None:
        tally.add(first.get("logprobs"))
    if hide:
        hide_logprobs(choices)
    return tally
