"""A seeded generator of support tickets routed to made-up queue codes.

The task is label routing: the answer is one queue code (``Q-BIL``), so the
task metric is label accuracy. The codes are invented, so the base model
cannot know them (it scores near zero) and an adapter must learn them.

The app sends what a real app sends: a fixed system prompt that describes the
task and the queues by name (never by code: the base model must not be able to
guess them), and a share of tickets arrive as a follow-up in a conversation
whose earlier turn is an earlier ticket and the queue it was routed to.

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

from driftgate.core.events import RecordedMessage

#: 25 tokens: every prompt token costs CPU time in training and serving.
SYSTEM_PROMPT = (
    "Route the support ticket to its queue: billing, account, shipping or returns. "
    "Reply with the queue code only."
)
#: How the app words the last user turn of a conversation (6 tokens).
FOLLOW_UP_PREFIX = "Following up on that: "

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
    """One ticket as the app sends it: ``text`` is the last user message, ``queue`` its
    true queue (the label). A follow-up carries the ``earlier`` ticket of the conversation,
    already routed right."""

    text: str
    queue: str
    shifted: bool
    earlier: Ticket | None = None

    def history(self) -> tuple[RecordedMessage, ...]:
        """The turns between the system prompt and ``text`` (none for a first ticket)."""
        if self.earlier is None:
            return ()
        return (
            RecordedMessage(role="user", content=self.earlier.text),
            RecordedMessage(role="assistant", content=self.earlier.queue),
        )

    def messages(self) -> list[dict[str, str]]:
        """The chat messages the app sends for this ticket."""
        turns = [{"role": m.role, "content": m.content} for m in self.history()]
        return [
            {"role": "system", "content": SYSTEM_PROMPT},
            *turns,
            {"role": "user", "content": self.text},
        ]


class TicketGenerator:
    """Draws tickets; ``shift_share`` of shifted traffic concerns the new product.

    Parameters
    ----------
    seed
        Seed of the private random generator; the same seed gives the same stream.
    shift_share
        Share of tickets about the new product once traffic has shifted.
    follow_up_share
        Share of tickets that follow up an earlier one in a two-turn conversation. The
        earlier ticket is always about an original queue: the app routed it right before.
    """

    def __init__(
        self, seed: int = 0, shift_share: float = 0.4, follow_up_share: float = 0.2
    ) -> None:
        self.seed = seed
        self.shift_share = shift_share
        self.follow_up_share = follow_up_share
        self._rng = random.Random(seed)

    def sample(self, *, shifted: bool) -> Ticket:
        if self._rng.random() >= self.follow_up_share:
            return self._single(shifted=shifted)
        earlier = self._single(shifted=False)
        new = self._single(shifted=shifted)
        return Ticket(FOLLOW_UP_PREFIX + new.text, new.queue, shifted, earlier=earlier)

    def _single(self, *, shifted: bool) -> Ticket:
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
