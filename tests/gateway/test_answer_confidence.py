"""Answer confidence: the logprobs the gateway asks vLLM for reach no client that did not ask,
a client that asked gets its own untouched, and the request event carries the numbers."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import orjson
import pytest

from driftgate.core.events import RequestEvent
from gateway.answer_confidence import ConfidenceTally, ask_for_logprobs, only_for_logprobs
from tests.gateway.conftest import BASE, Stack, StackFactory
from tests.gateway.fake_vllm import ALTERNATIVE_GAPS, logprobs_of, token_logprob
from tests.gateway.test_events import FakeDrift

#: Tokens the fake generates for ``Stack.chat``'s "hello there": the model, ":", two words.
WORDS = 4
#: Streamed chat tokens that carry no text (a tool-call parser's control tokens).
SILENT = 2


async def _stacks(make_stack: StackFactory, drift: FakeDrift) -> tuple[Stack, Stack, str, str]:
    """Two gateways on one state, answer confidence on and off; a tenant key for each."""
    events = {"drift_url": drift.url, "event_flush_interval_s": 0.05}
    on = await make_stack(**events)
    off = await make_stack(**events, answer_confidence=False)
    for s in (on, off):
        s.replicas[0].silent_tokens = SILENT
    return on, off, await on.tenant("on", ["*"]), await off.tenant("off", ["*"])


async def _event(drift: FakeDrift, request_id: str) -> RequestEvent:
    for _ in range(100):
        found = [e for b in drift.batches for e in b.events if e.request_id == request_id]
        if found:
            return found[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no event for {request_id}")


def _neutral(body: bytes, request_id: str) -> bytes:
    """The answer with what differs between two calls (request id, creation time) blanked."""
    body = body.replace(request_id.encode(), b"RID")
    return re.sub(rb'"created":\d+', b'"created":0', body)


async def _post(s: Stack, key: str, **kw: Any) -> httpx.Response:
    return await s.chat(key, BASE, **kw)


@pytest.mark.parametrize("stream", [False, True])
async def test_logprobs_asked_for_the_signal_never_reach_a_client_that_did_not_ask(
    make_stack: StackFactory, stream: bool
) -> None:
    drift = await FakeDrift().start()
    on, off, key_on, key_off = await _stacks(make_stack, drift)
    extra: dict[str, Any] = {"stream": True} if stream else {}
    r_on, r_off = await _post(on, key_on, **extra), await _post(off, key_off, **extra)
    assert r_on.status_code == r_off.status_code == 200
    sent_on, sent_off = on.replicas[0].requests[-1], off.replicas[0].requests[-1]
    assert (sent_on["logprobs"], sent_on["top_logprobs"]) == (True, 2)
    assert "logprobs" not in sent_off and "top_logprobs" not in sent_off
    rid_on, rid_off = r_on.headers["x-request-id"], r_off.headers["x-request-id"]
    # Byte for byte what the client gets without the extra request (ids and times aside).
    assert _neutral(r_on.content, rid_on) == _neutral(r_off.content, rid_off)
    assert b'"logprobs":null' in r_on.content and b'"top_logprobs"' not in r_on.content
    if stream:  # the chunks vLLM sends only to carry logprobs are dropped, not emptied
        assert r_on.content.count(b"data: ") == WORDS + 1  # the text chunks and [DONE]
    event = await _event(drift, rid_on)
    tokens = [token_logprob(i) for i in range(WORDS + (SILENT if stream else 0))]
    assert event.mean_logprob == pytest.approx(sum(tokens) / len(tokens))
    assert event.first_token_margin == pytest.approx(ALTERNATIVE_GAPS[0])
    unmeasured = await _event(drift, rid_off)
    assert (unmeasured.mean_logprob, unmeasured.first_token_margin) == (None, None)
    await drift.runner.cleanup()  # type: ignore[union-attr]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("top", [1, 3])
async def test_a_client_that_asked_gets_its_logprobs_untouched(
    make_stack: StackFactory, stream: bool, top: int
) -> None:
    drift = await FakeDrift().start()
    s = await make_stack(drift_url=drift.url, event_flush_interval_s=0.05)
    key = await s.tenant("acme", ["*"])
    asked: dict[str, Any] = {"logprobs": True, "top_logprobs": top}
    r = await _post(s, key, stream=stream, **asked)
    assert r.status_code == 200
    sent = s.replicas[0].requests[-1]
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, top)
    body = {**sent, "stream": False}
    if stream:
        chunks = [
            orjson.loads(line[6:])
            for line in r.content.split(b"\n\n")
            if line.startswith(b"data: {")
        ]
        got = [c["choices"][0]["logprobs"] for c in chunks if c["choices"]]
        pieces = [c["choices"][0]["delta"]["content"] for c in chunks if c["choices"]]
        assert got == [logprobs_of(body, [p], i) for i, p in enumerate(pieces)]
        n = len(pieces)
    else:
        choice = r.json()["choices"][0]
        words = choice["message"]["content"].split(" ")
        pieces = [w + " " for w in words[:-1]] + words[-1:]
        assert choice["logprobs"] == logprobs_of(body, pieces, 0)
        n = len(pieces)
    event = await _event(drift, r.headers["x-request-id"])
    tokens = [token_logprob(i) for i in range(n)]
    assert event.mean_logprob == pytest.approx(sum(tokens) / n)
    # top_logprobs 1: the chosen token alone, no alternative to measure a margin against
    assert event.first_token_margin == (None if top < 2 else pytest.approx(ALTERNATIVE_GAPS[0]))
    await drift.runner.cleanup()  # type: ignore[union-attr]


async def test_a_request_setting_logprob_fields_itself_goes_on_unchanged(stack: Stack) -> None:
    key = await stack.tenant("acme", ["*"])
    await _post(stack, key, top_logprobs=3)  # vLLM refuses it without logprobs: its call
    sent = stack.replicas[0].requests[-1]
    assert sent["top_logprobs"] == 3 and "logprobs" not in sent
    await _post(stack, key, messages=[{"role": "user", "content": "hi"}], logprobs=False)
    assert stack.replicas[0].requests[-1]["logprobs"] is True  # did not ask: asked for it
    r = await stack.client.post(
        stack.url + "/v1/completions",
        json={"model": BASE, "prompt": "hello"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 200 and "logprobs" not in stack.replicas[0].requests[-1]


def test_ask_for_logprobs_only_when_no_logprob_field_is_set() -> None:
    for body in ({}, {"logprobs": None}, {"logprobs": False, "top_logprobs": 0}):
        assert ask_for_logprobs(body) and (body["logprobs"], body["top_logprobs"]) == (True, 2)
    for body in (
        {"logprobs": True},
        {"logprobs": "yes"},
        {"top_logprobs": 2},
        {"logprob_token_ids": [5]},
    ):
        before = dict(body)
        assert not ask_for_logprobs(body) and body == before


def _token(token: str, lp: float, tops: list[tuple[str, float]]) -> dict[str, Any]:
    return {
        "token": token,
        "logprob": lp,
        "top_logprobs": [{"token": t, "logprob": v} for t, v in tops],
    }


def test_the_margin_is_the_chosen_token_against_its_best_alternative() -> None:
    def margin(first: dict[str, Any]) -> float | None:
        tally = ConfidenceTally()
        tally.add({"content": [first]})
        return tally.first_token_margin

    # greedy: the chosen token is top 1, the margin top-1 minus top-2
    assert margin(_token("A", -0.1, [("A", -0.1), ("B", -2.1)])) == pytest.approx(2.0)
    # sampled below the top: vLLM lists it first, then the top ones; the margin is negative
    assert margin(_token("C", -3.0, [("C", -3.0), ("A", -0.1)])) == pytest.approx(-2.9)
    # two tokens with the same text: only the chosen one is left out
    assert margin(_token("A", -0.7, [("A", -0.7), ("A", -0.7)])) == 0.0
    assert margin(_token("A", -0.1, [("A", -0.1)])) is None  # top_logprobs 1
    assert margin(_token("A", -0.1, [])) is None


def test_the_mean_skips_what_is_not_a_finite_logprob_and_stays_in_bounds() -> None:
    tally = ConfidenceTally()
    assert (tally.mean_logprob, tally.first_token_margin) == (None, None)
    tally.add(None)
    tally.add({"content": None})
    tally.add({"content": [{"token": "x", "logprob": float("nan")}, "junk", {"token": "y"}]})
    assert tally.mean_logprob is None
    tally.add({"content": [_token("a", -1.0, []), _token("b", -3.0, [])]})
    tally.add({"content": [{"token": "c", "logprob": True}]})  # a bool is not a logprob
    assert tally.mean_logprob == -2.0 and tally.first_token_margin is None
    big = ConfidenceTally()
    big.add({"content": [_token("a", -1e6, [("a", -1e6), ("b", 0.0)])]})
    event = RequestEvent(
        request_id="r",
        tenant="t",
        mean_logprob=big.mean_logprob,
        first_token_margin=big.first_token_margin,
    )
    assert (event.mean_logprob, event.first_token_margin) == (-9999.0, -9999.0)


def test_only_chunks_that_carry_nothing_but_logprobs_are_dropped() -> None:
    def chunk(**choice: Any) -> dict[str, Any]:
        return {"choices": [{"index": 0, "logprobs": None, "finish_reason": None, **choice}]}

    assert only_for_logprobs(chunk(delta={}))
    assert not only_for_logprobs(chunk(delta={"content": ""}))
    assert not only_for_logprobs(chunk(delta={}, finish_reason="stop"))
    assert not only_for_logprobs(chunk(delta={}, token_ids=[7]))
    assert not only_for_logprobs({"choices": [], "usage": {"prompt_tokens": 1}})
