"""The demo app's tickets: a fixed system prompt, one in five a two-turn follow-up,
deterministic by seed; and the retrain job reads a served follow-up back as a conversation."""

from __future__ import annotations

from driftgate.core.events import FeedbackEvent, RequestEvent, ServedRequest
from driftgate.demo.ticket_examples import ticket_example
from driftgate.demo.tickets import (
    ALL_QUEUES,
    FOLLOW_UP_PREFIX,
    ORIGINAL_QUEUES,
    SYSTEM_PROMPT,
    TicketGenerator,
)
from gateway.served_record import served_record
from retrain.dataset import CurationConfig, TrafficRecord, curate


def test_about_one_ticket_in_five_is_a_follow_up() -> None:
    """2,000 tickets from one seed per phase; follow-ups are Bin(2000, 0.2): mean 400, sd 17.9.
    The bounds 320..480 are 4.5 sd out: P(outside) = 7.3e-6 (exact binomial), so this fails
    with probability < 1e-4 when the generator is right."""
    for shifted in (False, True):
        tickets = TicketGenerator(seed=5).batch(2000, shifted=shifted)
        follow_ups = sum(t.earlier is not None for t in tickets)
        assert 320 <= follow_ups <= 480, (shifted, follow_ups)


def test_the_same_seed_gives_the_same_stream() -> None:
    a = TicketGenerator(seed=42).batch(300, shifted=True)
    b = TicketGenerator(seed=42).batch(300, shifted=True)
    c = TicketGenerator(seed=43).batch(300, shifted=True)
    assert a == b
    assert [t.messages() for t in a] == [t.messages() for t in b]
    assert a != c


def test_a_follow_up_is_a_two_turn_conversation_whose_target_is_the_new_ticket() -> None:
    tickets = TicketGenerator(seed=9, follow_up_share=1.0).batch(200, shifted=True)
    assert {t.queue for t in tickets} == set(ALL_QUEUES)  # Nova follow-ups too
    for t in tickets:
        assert t.earlier is not None and t.earlier.earlier is None
        # The earlier turn is a ticket the app routed right, about an original queue.
        assert t.earlier.queue in ORIGINAL_QUEUES and not t.earlier.shifted
        msgs = t.messages()
        assert msgs == [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": t.earlier.text},
            {"role": "assistant", "content": t.earlier.queue},
            {"role": "user", "content": t.text},
        ]
        assert t.text.startswith(FOLLOW_UP_PREFIX) and len(t.text) > len(FOLLOW_UP_PREFIX)
        assert t.shifted


def test_a_first_ticket_is_the_system_prompt_and_the_ticket() -> None:
    t = TicketGenerator(seed=9, follow_up_share=0.0).sample(shifted=False)
    assert t.earlier is None and t.history() == ()
    assert t.messages() == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": t.text},
    ]


def test_the_system_prompt_names_no_queue_code() -> None:
    # The base model must not be able to copy a code: the adapter has to learn them.
    assert not any(q in SYSTEM_PROMPT for q in ALL_QUEUES)


def test_curate_reads_a_served_follow_up_with_the_earlier_turn_as_history() -> None:
    tickets = TicketGenerator(seed=3, follow_up_share=1.0).batch(40, shifted=True)
    records = []
    for i, t in enumerate(tickets):
        payload = {"model": "support", "messages": t.messages(), "max_tokens": 8}
        served = ServedRequest.model_validate(served_record(payload))
        rid = f"r{i}"
        event = RequestEvent(
            request_id=rid,
            tenant="demo-app",
            adapter="support",
            version=1,
            ts=1000.0 + i,
            prompt_text=t.text,
            completion_text="Q-ACC",
            served=served,
        )
        # As the demo's users do: a thumbs-down whose correction is the new ticket's queue.
        fb = FeedbackEvent(request_id=rid, tenant="demo-app", score=0.0, correction=t.queue)
        records.append(TrafficRecord.from_events(event, [fb]))
    data = curate(records, CurationConfig(min_train=4, min_validation=2))
    by_id = {f"r{i}": t for i, t in enumerate(tickets)}
    examples = [*data.train, *data.validation]
    assert len(examples) >= 30  # only duplicates dropped
    for ex in examples:
        assert ex.request_id is not None
        expected = ticket_example(by_id[ex.request_id])
        assert ex.history == expected.history and len(ex.history) == 2
        assert (ex.system, ex.prompt, ex.completion) == (
            SYSTEM_PROMPT,
            expected.prompt,
            expected.completion,
        )
