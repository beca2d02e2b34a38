"""Tickets as chat examples: what adapter v1 trains on and the golden set holds, in the
shape the app serves them (system prompt, earlier turns, last user message)."""

from __future__ import annotations

from collections.abc import Iterable

from driftgate.demo.tickets import SYSTEM_PROMPT, Ticket
from retrain.examples import ChatExample


def ticket_example(ticket: Ticket) -> ChatExample:
    """The ticket as served, with its queue as the target.

    >>> from driftgate.demo.tickets import TicketGenerator
    >>> gen = TicketGenerator(seed=3, follow_up_share=1.0)
    >>> ex = ticket_example(gen.sample(shifted=False))
    >>> [m["role"] for m in ex.messages(with_completion=True)]
    ['system', 'user', 'assistant', 'user', 'assistant']
    """
    return ChatExample(
        prompt=ticket.text, completion=ticket.queue, system=SYSTEM_PROMPT, history=ticket.history()
    )


def ticket_examples(tickets: Iterable[Ticket]) -> list[ChatExample]:
    return [ticket_example(t) for t in tickets]
