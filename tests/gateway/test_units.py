"""Pure pieces: rate limiter, key index, request ids, body checks, SSE rewriting."""

from __future__ import annotations

import logging

import orjson
import pytest
from pydantic import ValidationError

from driftgate.core.credentials import check_admin
from driftgate.core.errors import InvalidRequest, PayloadTooLarge, Unauthorized, UnprocessableBody
from driftgate.core.ids import time_ordered_id
from driftgate.core.state import TenantInfo, hash_key
from gateway.auth import KeyIndex
from gateway.openai_body import apply_max_tokens, completion_summary, parse_request, prompt_text
from gateway.ratelimit import RateLimiter
from gateway.request_ids import TAG_HEX, RequestIds
from gateway.settings import GatewaySettings
from gateway.sse import StreamRewriter

T = TenantInfo(id=1, name="acme", adapters=("support",), rate_limit_rps=2, burst=3, max_tokens=64)


def test_rate_limiter_bucket() -> None:
    rl = RateLimiter()
    assert [rl.acquire("a", rate=2, burst=3, now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rl.acquire("a", rate=2, burst=3, now=0.0) == pytest.approx(0.5)
    assert rl.acquire("b", rate=2, burst=3, now=0.0) == 0.0  # tenants are separate
    assert rl.acquire("a", rate=2, burst=3, now=0.5) == 0.0  # refilled one token
    assert rl.acquire("a", rate=2, burst=3, now=0.5) > 0
    assert rl.acquire("a", rate=2, burst=3, now=100.0) == 0.0
    assert all(rl.acquire("u", rate=0, burst=0, now=0.0) == 0.0 for _ in range(100))
    rl.forget({"b"})
    assert rl.acquire("a", rate=2, burst=3, now=100.0) == 0.0  # fresh bucket


def test_request_ids_are_bound_to_their_tenant_across_replicas(
    caplog: pytest.LogCaptureFixture,
) -> None:
    one, other = RequestIds(b"s" * 32), RequestIds(b"s" * 32)  # two replicas, one secret
    unbound = "chatcmpl-" + time_ordered_id()
    rid = one.bind(unbound, "acme")
    assert rid.startswith(unbound) and len(rid) == len(unbound) + TAG_HEX  # still time-ordered
    assert other.issued_to(rid, "acme")
    assert not other.issued_to(rid, "acme2") and not other.issued_to(rid, "acm")
    assert not RequestIds(b"t" * 32).issued_to(rid, "acme")  # another deployment's secret
    assert not one.issued_to(unbound, "acme") and not one.issued_to("", "acme")
    assert not one.issued_to(rid + "0", "acme") and not one.issued_to(rid[:-1] + "g", "acme")
    with caplog.at_level(logging.WARNING, logger="gateway.request_ids"):
        a, b = RequestIds.from_secret(None), RequestIds.from_secret(None)
    assert "REQUEST_ID_SECRET is unset" in caplog.text
    assert not b.issued_to(a.bind(unbound, "acme"), "acme")  # a random secret per process
    with pytest.raises(ValidationError, match="at least 16 bytes"):
        GatewaySettings(request_id_secret="short")


def test_key_index() -> None:
    idx = KeyIndex({hash_key("dg-secret"): T})
    assert idx.tenant_for("Bearer dg-secret") is T
    assert idx.tenant_for("bearer  dg-secret") is T
    for header in (None, "", "Bearer", "Basic dg-secret", "Bearer dg-secre", "dg-secret"):
        with pytest.raises(Unauthorized):
            idx.tenant_for(header)
    # a header found valid is remembered, and still answers the same the second time
    assert idx.tenant_for("Bearer dg-secret") is T
    # the remembered header dies with the index: a refresh without the key refuses it
    with pytest.raises(Unauthorized):
        KeyIndex({hash_key("dg-other"): T}).tenant_for("Bearer dg-secret")
    check_admin("Bearer adm", "adm")
    with pytest.raises(Unauthorized):
        check_admin("Bearer adm", None)
    with pytest.raises(Unauthorized):
        check_admin("Bearer nope", "adm")


def test_key_index_refuses_an_expired_key_even_when_remembered() -> None:
    """Expiry is checked on every request, also for a header the index cached as valid."""
    now = [1000.0]
    idx = KeyIndex(
        {hash_key("dg-short"): T, hash_key("dg-forever"): T},
        {hash_key("dg-short"): 1010.0},
        clock=lambda: now[0],
    )
    assert idx.tenant_for("Bearer dg-short") is T
    assert idx.tenant_for("Bearer dg-short") is T  # now answered from the cache
    now[0] = 1009.999
    assert idx.tenant_for("Bearer dg-short") is T
    now[0] = 1010.0
    with pytest.raises(Unauthorized, match="expired") as refused:
        idx.tenant_for("Bearer dg-short")
    assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
    assert idx.tenant_for("Bearer dg-forever") is T  # a key without expiry never expires
    fresh = KeyIndex(
        {hash_key("dg-short"): T}, {hash_key("dg-short"): 1010.0}, clock=lambda: now[0]
    )
    with pytest.raises(Unauthorized, match="expired"):
        fresh.tenant_for("Bearer dg-short")  # uncached path


def test_parse_request() -> None:
    ok = parse_request(b'{"model":"m","messages":[{"role":"user","content":"hi"}]}', "chat")
    assert ok["model"] == "m"
    for bad in (b"", b"{", b"[1]", b'"x"'):
        with pytest.raises(InvalidRequest) as e:
            parse_request(bad, "chat")
        assert e.value.status_code == 400
    for body, param in [
        (b'{"messages":[{"role":"user","content":"hi"}]}', "model"),
        (b'{"model":"m","messages":[]}', "messages"),
        (b'{"model":"m","messages":[{"role":"user"}],"stream":"yes"}', "stream"),
        (b'{"model":"m","messages":[{"role":"user"}],"max_tokens":0}', "max_tokens"),
        (b'{"model":"m"}', "prompt"),
    ]:
        with pytest.raises(UnprocessableBody) as e422:
            parse_request(body, "completions" if param == "prompt" else "chat")
        assert e422.value.status_code == 422 and e422.value.param == param


def test_max_tokens_cap() -> None:
    p: dict[str, object] = {}
    apply_max_tokens(p, 64)
    assert p == {"max_tokens": 64}
    p = {"max_tokens": 10}
    apply_max_tokens(p, 64)
    assert p == {"max_tokens": 10}
    for key in ("max_tokens", "max_completion_tokens"):
        with pytest.raises(InvalidRequest) as e:
            apply_max_tokens({key: 65}, 64)
        assert e.value.param == key


def test_prompt_text() -> None:
    chat = {
        "messages": [
            {"role": "system", "content": "s"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "a"},
                    {"type": "image_url"},
                    {"type": "text", "text": "b"},
                ],
            },
        ]
    }
    assert prompt_text(chat, "chat") == "ab"
    assert prompt_text({"prompt": ["x", "y"]}, "completions") == "x"
    assert prompt_text({"prompt": [1, 2]}, "completions") == ""


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish}
    return b"data: " + orjson.dumps({"id": "x", "model": "support--v1", "choices": [choice]})


def test_stream_rewriter_rewrites_and_strips_usage() -> None:
    rw = StreamRewriter("chatcmpl-1", "support@1", "chat", keep_usage=False)
    out = rw.feed(_chunk("Hel"))
    assert out is not None and out.endswith(b"\n\n")
    obj = orjson.loads(out[6:])
    assert obj["id"] == "chatcmpl-1" and obj["model"] == "support@1"
    rw.feed(_chunk("lo", "stop"))
    usage = {"id": "x", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
    assert rw.feed(b"data: " + orjson.dumps(usage)) is None
    assert rw.feed(b"data: [DONE]") == b"data: [DONE]\n\n"
    assert (rw.text, rw.finish_reason, rw.prompt_tokens, rw.completion_tokens) == (
        "Hello",
        "stop",
        5,
        2,
    )
    keep = StreamRewriter("chatcmpl-2", "m", "chat", keep_usage=True)
    kept = keep.feed(b"data: " + orjson.dumps(usage))
    assert kept is not None and orjson.loads(kept[6:])["usage"]["completion_tokens"] == 2


def test_payload_too_large_is_413() -> None:
    assert PayloadTooLarge.status_code == 413


def _tool_chunk(index: int, name: str | None, arguments: str, choice: int = 0) -> bytes:
    function = {"arguments": arguments} | ({"name": name} if name else {})
    delta = {"tool_calls": [{"index": index, "function": function}]}
    obj = {"id": "x", "model": "m", "choices": [{"index": choice, "delta": delta}]}
    return b"data: " + orjson.dumps(obj)


def test_a_streamed_tool_call_is_recorded_as_the_answer() -> None:
    rw = StreamRewriter("chatcmpl-3", "support@1", "chat", keep_usage=False)
    rw.feed(_tool_chunk(0, "get_weather", ""))
    rw.feed(_tool_chunk(0, None, '{"city": '))
    rw.feed(_tool_chunk(0, None, '"Paris"}'))
    rw.feed(_tool_chunk(1, "get_time", "{}"))
    rw.feed(_chunk(None, "tool_calls"))
    assert rw.finish_reason == "tool_calls" and rw.saw_content
    assert orjson.loads(rw.text) == {
        "tool_calls": [
            {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            {"name": "get_time", "arguments": "{}"},
        ]
    }


def test_with_several_choices_only_the_first_is_recorded_and_all_are_relayed() -> None:
    rw = StreamRewriter("chatcmpl-4", "m", "chat", keep_usage=False)
    for index, piece in [(0, "Q-"), (1, "other "), (0, "BIL"), (1, "answer")]:
        choice = {"index": index, "delta": {"content": piece}, "finish_reason": None}
        out = rw.feed(b"data: " + orjson.dumps({"id": "x", "choices": [choice]}))
        assert out is not None and orjson.loads(out[6:])["choices"][0]["delta"]["content"] == piece
    assert rw.text == "Q-BIL"


def test_a_tool_call_answer_is_not_summarised_as_empty() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    data = {
        "choices": [
            {"index": 1, "message": {"content": "second"}, "finish_reason": "stop"},
            {
                "index": 0,
                "message": {"content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            },
        ]
    }
    text, reason = completion_summary(data, "chat")
    assert reason == "tool_calls"
    assert orjson.loads(text) == {"tool_calls": [{"name": "lookup", "arguments": "{}"}]}
