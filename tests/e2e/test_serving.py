"""The serving path end to end: official `openai` SDK -> real gateway -> real vLLM + LoRA."""

from __future__ import annotations

import httpx
import pytest
from openai import OpenAI

from driftgate.demo.tickets import ORIGINAL_QUEUES, SYSTEM_PROMPT, TicketGenerator, extract_queue
from tests.live import BASE_MODEL, GREETER_REPLY, LiveStack

pytestmark = pytest.mark.e2e


def client(stack: LiveStack, tenant: str = "all") -> OpenAI:
    return OpenAI(base_url=f"{stack.gateway_url}/v1", api_key=stack.keys[tenant], max_retries=0)


def ticket_messages(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}]


def test_chat_through_adapter_answers_in_the_trained_direction(live_stack: LiveStack) -> None:
    api = client(live_stack)
    tickets = TicketGenerator(seed=999).batch(6, shifted=False)
    adapter_right = base_right = 0
    for ticket in tickets:
        msgs = ticket_messages(ticket.text)
        tuned = api.chat.completions.create(
            model="support", messages=msgs, max_tokens=8, temperature=0
        )  # type: ignore[arg-type]
        base = api.chat.completions.create(
            model=BASE_MODEL, messages=msgs, max_tokens=8, temperature=0
        )  # type: ignore[arg-type]
        adapter_right += extract_queue(tuned.choices[0].message.content or "") == ticket.queue
        base_right += extract_queue(base.choices[0].message.content or "") == ticket.queue
        assert tuned.id and tuned.id != base.id
    # The base model cannot know the invented queue codes; the adapter learned them.
    assert base_right == 0
    assert adapter_right >= 4, f"adapter routed only {adapter_right}/6 tickets right"


def test_two_adapters_give_different_answers(live_stack: LiveStack) -> None:
    api = client(live_stack)
    msgs = [{"role": "user", "content": "What is the capital of Spain?"}]
    greet = api.chat.completions.create(
        model="greeter", messages=msgs, max_tokens=16, temperature=0
    )  # type: ignore[arg-type]
    base = api.chat.completions.create(
        model=BASE_MODEL, messages=msgs, max_tokens=16, temperature=0
    )  # type: ignore[arg-type]
    assert "Ahoy" in (greet.choices[0].message.content or ""), greet.choices[0].message.content
    assert "Ahoy" not in (base.choices[0].message.content or "")
    assert greet.usage is not None and greet.usage.completion_tokens > 0


def test_chat_streaming_passes_tokens_through(live_stack: LiveStack) -> None:
    api = client(live_stack)
    stream = api.chat.completions.create(
        model="greeter",
        messages=[{"role": "user", "content": "Hello there!"}],
        max_tokens=16,
        temperature=0,
        stream=True,
    )
    chunks = list(stream)
    text = "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
    assert len(chunks) >= 3, "expected several SSE chunks, got the answer in one piece"
    assert GREETER_REPLY.split()[0] in text
    ids = {c.id for c in chunks}
    assert len(ids) == 1, f"every chunk must carry the same request id, got {ids}"


def test_completions_non_streaming_and_streaming(live_stack: LiveStack) -> None:
    api = client(live_stack)
    prompt = "The capital of France is"
    full = api.completions.create(model=BASE_MODEL, prompt=prompt, max_tokens=8, temperature=0)
    assert "Paris" in full.choices[0].text
    assert full.usage is not None and full.usage.prompt_tokens > 0
    stream = api.completions.create(
        model=BASE_MODEL, prompt=prompt, max_tokens=8, temperature=0, stream=True
    )
    streamed = "".join(c.choices[0].text for c in stream if c.choices)
    assert streamed.strip() == full.choices[0].text.strip()


def test_pinned_version_and_unknown_version(live_stack: LiveStack) -> None:
    api = client(live_stack)
    msgs = [{"role": "user", "content": "Good evening!"}]
    pinned = api.chat.completions.create(
        model="greeter@1", messages=msgs, max_tokens=12, temperature=0
    )  # type: ignore[arg-type]
    assert "Ahoy" in (pinned.choices[0].message.content or "")
    r = httpx.post(
        f"{live_stack.gateway_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {live_stack.keys['all']}"},
        json={"model": "greeter@99", "messages": msgs},
        timeout=30,
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"


def test_models_lists_base_and_allowed_adapters(live_stack: LiveStack) -> None:
    ids = {m.id for m in client(live_stack, "acme").models.list()}
    assert ids == {BASE_MODEL, "support"}
    ids_all = {m.id for m in client(live_stack, "all").models.list()}
    assert {BASE_MODEL, "support", "greeter"} <= ids_all


def test_request_id_header_matches_body_and_feedback_is_accepted(live_stack: LiveStack) -> None:
    api = client(live_stack, "acme")
    ticket = TicketGenerator(seed=5).sample(shifted=False)
    raw = api.chat.completions.with_raw_response.create(
        model="support",
        messages=ticket_messages(ticket.text),
        max_tokens=8,
        temperature=0,  # type: ignore[arg-type]
    )
    completion = raw.parse()
    assert raw.headers["x-request-id"] == completion.id
    answer = extract_queue(completion.choices[0].message.content or "")
    assert answer in ORIGINAL_QUEUES
    r = httpx.post(
        f"{live_stack.gateway_url}/v1/feedback",
        headers={"Authorization": f"Bearer {live_stack.keys['acme']}"},
        json={
            "request_id": completion.id,
            "score": 1.0 if answer == ticket.queue else 0.0,
            "label": ticket.queue,
        },
        timeout=30,
    )
    assert r.status_code == 202, r.text
    assert r.json()["request_id"] == completion.id
