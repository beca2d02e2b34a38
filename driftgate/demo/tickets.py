"""A seeded generator of support tickets routed to made-up queue codes.

The task is label routing: the answer is one queue code (``Q-BIL``), so the
task metric is label accuracy. The codes are invented, so the base model
cannot know them (it scores near zero) and an adapter must learn them.

The *shift* adds a new product line whose tickets belong to their own queue
and speak their own vocabulary, the way a product launch changes real
support traffic overnight.

>>> gen = TicketGenerator(seed=7)
>>> t = gen.sample(shifted=False)
>>> t.queue in ORIGINAL_QUEUES
True
>>> len({gen.sample(shifted=True).queue for _ in range(200)} - set(ORIGINAL_QUEUES))
1
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SYSTEM_PROMPT = "Route the support ticket. Reply with the queue code only."

#: queue code -> (topic phrases, customer phrasings)
_TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Q-BIL": (
        (
            "my invoice",
            "the monthly charge",
            "a double charge",
            "my card payment",
            "the VAT on my bill",
        ),
        (
            "I was billed wrong for {t}.",
            "Why is {t} so high?",
            "Please fix {t}.",
            "Question about {t}.",
        ),
    ),
    "Q-ACC": (
        ("my password", "two-factor login", "my account email", "the login page", "my username"),
        (
            "I cannot get past {t}.",
            "Help, {t} is not working.",
            "How do I reset {t}?",
            "Locked out: {t}.",
        ),
    ),
    "Q-SHP": (
        (
            "my parcel",
            "the delivery date",
            "the tracking number",
            "a missing package",
            "the courier",
        ),
        ("Where is {t}?", "Problem with {t}.", "{t} has not arrived.", "Can you check {t}?"),
    ),
    "Q-RET": (
        (
            "a refund",
            "returning shoes",
            "the return label",
            "an exchange",
            "a broken item I sent back",
        ),
        ("I want {t}.", "How long does {t} take?", "Still waiting on {t}.", "Need help with {t}."),
    ),
}

#: The new product line that appears with the shift, and its queue.
_SHIFT_QUEUE = "Q-NOVA"
_SHIFT_TOPIC: tuple[tuple[str, ...], tuple[str, ...]] = (
    (
        "my Nova smart speaker",
        "the Nova hub firmware",
        "Nova voice pairing",
        "the Nova app sync",
        "my Nova bulbs",
    ),
    (
        "{t} keeps dropping wifi.",
        "Help, {t} is not working.",
        "Problem with {t}.",
        "{t} won't update.",
    ),
)

ORIGINAL_QUEUES: tuple[str, ...] = tuple(_TOPICS)
ALL_QUEUES: tuple[str, ...] = (*ORIGINAL_QUEUES, _SHIFT_QUEUE)


@dataclass(frozen=True, slots=True)
class Ticket:
    text: str
    queue: str
    shifted: bool


class TicketGenerator:
    """Draws tickets; ``shift_share`` of shifted traffic concerns the new product.

    Parameters
    ----------
    seed
        Seed of the private random generator; the same seed gives the same stream.
    shift_share
        Share of tickets about the new product once traffic has shifted.
    """

    def __init__(self, seed: int = 0, shift_share: float = 0.4) -> None:
        self.seed = seed
        self.shift_share = shift_share
        self._rng = random.Random(seed)

    def sample(self, *, shifted: bool) -> Ticket:
        if shifted and self._rng.random() < self.shift_share:
            queue, (topics, phrasings) = _SHIFT_QUEUE, _SHIFT_TOPIC
        else:
            queue = self._rng.choice(ORIGINAL_QUEUES)
            topics, phrasings = _TOPICS[queue]
        text = self._rng.choice(phrasings).format(t=self._rng.choice(topics))
        text = text[0].upper() + text[1:]
        order = self._rng.randint(10000, 99999)
        if self._rng.random() < 0.5:
            text = f"{text} Order {order}."
        return Ticket(text=text, queue=queue, shifted=shifted)

    def batch(self, n: int, *, shifted: bool) -> list[Ticket]:
        return [self.sample(shifted=shifted) for _ in range(n)]


def extract_queue(answer: str) -> str | None:
    """The first known queue code in a model's answer (the task metric's parser).

    >>> extract_queue(" Q-SHP\\n")
    'Q-SHP'
    >>> extract_queue("I think billing") is None
    True
    """
    tokens = answer.replace(".", " ").replace(",", " ").split()
    for token in tokens:
        if token.upper() in ALL_QUEUES:
            return token.upper()
    return None
