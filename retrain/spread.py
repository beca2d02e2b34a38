"""A spread-out pick of prompts: farthest-first over their words.

Picking the most confident answers alone repeats the prompts a model finds easiest; a pick
that starts there and then takes, each time, the prompt least like every one already taken
covers the phrasings and topics the pool holds (the k-center greedy order). Words are
compared after :func:`retrain.dedup.normalize_for_dedup`, with numbers masked: an order
number says nothing about what a prompt asks.

>>> prompts = ["Where is my parcel?", "Where is my parcel? Order 123.",
...            "Where is my parcel? Order 456.", "Problem with the tracking number."]
>>> [prompts[i] for i in farthest_first(prompts, 3)]
['Where is my parcel?', 'Problem with the tracking number.', 'Where is my parcel? Order 123.']
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrain.dedup import jaccard, normalize_for_dedup

_NUMBER = re.compile(r"\d+")


def prompt_words(text: str) -> frozenset[str]:
    """The normalized words of ``text``, every number the same word."""
    return frozenset(_NUMBER.sub("0", normalize_for_dedup(text)).split())


def farthest_first(prompts: Sequence[str], n: int) -> list[int]:
    """Indexes of at most ``n`` of ``prompts``: the first, then repeatedly the one whose
    nearest already-picked prompt is farthest (Jaccard distance of words); ties go to the
    earlier index, so callers put the prompts they prefer first."""
    words = [prompt_words(p) for p in prompts]
    nearest = [float("inf")] * len(prompts)
    picked: list[int] = []
    left = set(range(len(prompts)))
    while left and len(picked) < n:
        i = min(left) if not picked else max(left, key=lambda j: (nearest[j], -j))
        picked.append(i)
        left.discard(i)
        for j in left:
            nearest[j] = min(nearest[j], 1.0 - jaccard(words[i], words[j]))
    return picked
