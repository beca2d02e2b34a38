"""OpenAI request features through the gateway, with the official SDK against the real vLLM:
tools and tool_choice, response_format, stop, logprobs, stream_options.include_usage,
streaming and not. Each answer's shape is checked, and so is the event the drift store keeps
for it, field by field."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import OpenAI
from sqlalchemy import Engine, select

from driftgate.core.state.engine import make_engine
from driftgate.core.state.schema.drift import BASE_VERSION, requests
from tests.live import BASE_MODEL, LiveStack

pytestmark = pytest.mark.e2e

TENANT = "all"
SYSTEM = "You answer questions about the weather. Call a tool when one fits."
QUESTION = "What is the weather in Paris?"
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": QUESTION},
]
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 12}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
NAMED_CHOICE: dict[str, Any] = {"type": "function", "function": {"name": "get_weather"}}
CITY_SCHEMA: dict[str, Any] = {
    "name": "city",
    "schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 12}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
#: Enough for the small model to close a forced tool call's JSON.
TOOL_TOKENS = 120


@pytest.fixture(scope="module")
def api(live_stack: LiveStack) -> OpenAI:
    return OpenAI(
        base_url=f"{live_stack.gateway_url}/v1", api_key=live_stack.keys[TENANT], max_retries=0
    )


@pytest.fixture(scope="module")
def state(live_stack: LiveStack) -> Iterator[Engine]:
    engine = make_engine(live_stack.state_url)
    yield engine
    engine.dispose()


def stored(state: Engine, request_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """The drift store's row of one request, once the gateway's batch has arrived."""
    deadline = time.monotonic() + timeout_s
    query = select(requests).where(requests.c.request_id == request_id)
    while True:
        with state.connect() as conn:
            rows = conn.execute(query).mappings().all()
        if rows:
            assert len(rows) == 1, f"{len(rows)} events stored for one request"
            return dict(rows[0])
        assert time.monotonic() < deadline, f"no event stored for {request_id}"
        time.sleep(0.2)


def assert_event(
    row: dict[str, Any],
    *,
    request: dict[str, Any],
    stream: bool,
    completion_text: str,
    finish_reason: str | None,
    usage: Any,
) -> None:
    assert row["tenant"] == TENANT
    assert (row["adapter"], row["version"], row["pinned"]) == ("base", BASE_VERSION, False)
    assert (row["endpoint"], row["stream"], row["status_code"]) == ("chat", stream, 200)
    assert row["prompt_text"] == QUESTION  # the last user message: what drift features read
    assert row["completion_text"] == completion_text
    assert row["finish_reason"] == finish_reason
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert row["empty"] is False and row["refusal"] is False
    assert row["latency_ms"] > 0
    assert_served(json.loads(row["served_json"]), request)


def assert_served(served: dict[str, Any], request: dict[str, Any]) -> None:
    """The stored record of what vLLM was asked equals the request, field by field."""
    # Fields a message does not have are stored at their defaults (no tool calls, no id).
    assert [m.pop("tool_calls") for m in served["messages"]] == [[]] * len(request["messages"])
    assert [m.pop("tool_call_id") for m in served["messages"]] == [None] * len(request["messages"])
    assert [m.pop("name") for m in served["messages"]] == [None] * len(request["messages"])
    assert served["messages"] == request["messages"]
    tools = request.get("tools")
    assert served["tool_names"] == [t["function"]["name"] for t in tools or []]
    canonical = json.dumps(tools, sort_keys=True, separators=(",", ":"))
    assert served["tools_json"] == (canonical if tools else None)
    assert served["tools_sha256"] == (
        hashlib.sha256(canonical.encode()).hexdigest() if tools else None
    )
    response_format = request.get("response_format")
    assert served["response_format"] == (response_format or {}).get("type")
    assert served["response_format_json"] == (
        json.dumps(response_format, sort_keys=True, separators=(",", ":"))
        if response_format
        else None
    )
    tool_choice = request.get("tool_choice")
    assert served["tool_choice_json"] == (
        json.dumps(tool_choice, sort_keys=True, separators=(",", ":")) if tool_choice else None
    )
    stop = request.get("stop") or []
    assert served["sampling"] == {
        "temperature": float(request["temperature"]),
        "top_p": None,
        "max_tokens": request["max_tokens"],
        "stop": [stop] if isinstance(stop, str) else stop,
    }
    assert served["complete"] is True


def ask(api: OpenAI, request: dict[str, Any]) -> Any:
    """The raw response of one chat request (headers carry the request id)."""
    return api.chat.completions.with_raw_response.create(**request)


def request_for(stream: bool, **fields: Any) -> dict[str, Any]:
    """A greedy chat request to the base model; streamed ones ask for usage."""
    request = {"model": BASE_MODEL, "messages": MESSAGES, "temperature": 0, **fields}
    if stream:
        request |= {"stream": True, "stream_options": {"include_usage": True}}
    return request


def streamed_text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def tool_call_text(calls: list[tuple[str, str]]) -> str:
    """How the store keeps an answer that is a tool call (``recorded_answer.answer_text``)."""
    return json.dumps(
        {"tool_calls": [{"name": n, "arguments": a} for n, a in calls]},
        separators=(",", ":"),
        ensure_ascii=False,
    )


@pytest.mark.parametrize("choice", ["named", "required"])
def test_a_forced_tool_call_comes_back_as_tool_calls_and_is_stored_as_one(
    api: OpenAI, state: Engine, choice: str
) -> None:
    request = request_for(
        False,
        tools=[WEATHER_TOOL],
        tool_choice=NAMED_CHOICE if choice == "named" else "required",
        max_tokens=TOOL_TOKENS,
    )
    raw = ask(api, request)
    answer = raw.parse()
    message = answer.choices[0].message
    assert message.tool_calls, f"no tool call: {message.content!r}"
    calls = [(c.function.name, c.function.arguments) for c in message.tool_calls]
    assert [name for name, _ in calls] == ["get_weather"]
    json.loads(calls[0][1])  # the arguments are JSON
    assert all(c.id for c in message.tool_calls)
    # vLLM names the reason of a forced named call "stop", of a required one "tool_calls".
    reason = answer.choices[0].finish_reason
    assert reason == ("stop" if choice == "named" else "tool_calls")
    assert_event(
        stored(state, raw.headers["x-request-id"]),
        request=request,
        stream=False,
        completion_text=tool_call_text(calls),
        finish_reason=reason,
        usage=answer.usage,
    )


def test_a_streamed_tool_call_arrives_in_deltas_with_usage_last(api: OpenAI, state: Engine) -> None:
    request = request_for(
        True, tools=[WEATHER_TOOL], tool_choice="required", max_tokens=TOOL_TOKENS
    )
    raw = ask(api, request)
    chunks = list(raw.parse())
    name, arguments, reasons = "", "", []
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                name += (delta.function and delta.function.name) or ""
                arguments += (delta.function and delta.function.arguments) or ""
            if choice.finish_reason:
                reasons.append(choice.finish_reason)
    assert name == "get_weather"
    json.loads(arguments)
    assert reasons == ["tool_calls"]
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices  # usage comes alone, last
    assert all(c.usage is None for c in chunks[:-1])
    assert_event(
        stored(state, raw.headers["x-request-id"]),
        request=request,
        stream=True,
        completion_text=tool_call_text([(name, arguments)]),
        finish_reason="tool_calls",
        usage=usage,
    )


@pytest.mark.parametrize("stream", [False, True])
def test_response_format_json_schema_is_honoured(api: OpenAI, state: Engine, stream: bool) -> None:
    request = request_for(
        stream,
        response_format={"type": "json_schema", "json_schema": CITY_SCHEMA},
        max_tokens=40,
    )
    raw = ask(api, request)
    if stream:
        chunks = list(raw.parse())
        text = streamed_text(chunks)
        reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
        reason, usage = reasons[-1], chunks[-1].usage
    else:
        answer = raw.parse()
        text = answer.choices[0].message.content or ""
        reason, usage = answer.choices[0].finish_reason, answer.usage
    parsed = json.loads(text)
    assert set(parsed) == {"city"} and isinstance(parsed["city"], str)
    assert reason == "stop"
    assert_event(
        stored(state, raw.headers["x-request-id"]),
        request=request,
        stream=stream,
        completion_text=text,
        finish_reason="stop",
        usage=usage,
    )


def test_response_format_json_object_starts_a_json_object(api: OpenAI, state: Engine) -> None:
    request = request_for(False, response_format={"type": "json_object"}, max_tokens=24)
    raw = ask(api, request)
    answer = raw.parse()
    text = answer.choices[0].message.content or ""
    # Cut at max_tokens the object may be unfinished; it is an object from its first byte.
    assert text.lstrip().startswith("{")
    if answer.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)
    assert_event(
        stored(state, raw.headers["x-request-id"]),
        request=request,
        stream=False,
        completion_text=text,
        finish_reason=answer.choices[0].finish_reason,
        usage=answer.usage,
    )


@pytest.mark.parametrize("stream", [False, True])
def test_stop_sequences_end_the_answer_before_them(
    api: OpenAI, state: Engine, stream: bool
) -> None:
    free = ask(api, request_for(False, max_tokens=24)).parse().choices[0].message.content or ""
    words = free.split()
    assert len(words) >= 3, f"the model answered too little to cut: {free!r}"
    stop = " " + words[2]  # greedy decoding repeats the same answer up to it
    request = request_for(stream, max_tokens=24, stop=[stop])
    raw = ask(api, request)
    if stream:
        chunks = list(raw.parse())
        text, usage = streamed_text(chunks), chunks[-1].usage
    else:
        answer = raw.parse()
        text, usage = answer.choices[0].message.content or "", answer.usage
    assert text == free[: free.index(stop)]
    assert_event(
        stored(state, raw.headers["x-request-id"]),
        request=request,
        stream=stream,
        completion_text=text,
        finish_reason="stop",
        usage=usage,
    )


@pytest.mark.parametrize("stream", [False, True])
def test_logprobs_come_per_token_with_the_top_alternatives(
    api: OpenAI, state: Engine, stream: bool
) -> None:
    request = request_for(stream, max_tokens=6, logprobs=True, top_logprobs=2)
    raw = ask(api, request)
    if stream:
        chunks = list(raw.parse())
        tokens = [
            t
            for c in chunks
            if c.choices and c.choices[0].logprobs
            for t in c.choices[0].logprobs.content or []
        ]
        text, usage = streamed_text(chunks), chunks[-1].usage
    else:
        answer = raw.parse()
        tokens = list(answer.choices[0].logprobs.content or [])
        text, usage = answer.choices[0].message.content or "", answer.usage
    assert usage is not None and len(tokens) == usage.completion_tokens == 6
    assert "".join(t.token for t in tokens) == text
    for token in tokens:
        assert token.logprob <= 0.0
        assert len(token.top_logprobs) == 2
        # Greedy: the chosen token is the most likely one.
        assert token.logprob == pytest.approx(max(t.logprob for t in token.top_logprobs))
    assert_event(
        stored(state, raw.headers["x-request-id"]),
        request=request,
        stream=stream,
        completion_text=text,
        finish_reason="length",
        usage=usage,
    )


def _shape(value: Any) -> Any:
    """An answer without what differs between two calls of one request: ids (the gateway's
    request id, vLLM's tool-call ids), creation time, the model name the gateway rewrites."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items() if k not in ("id", "created", "model")}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


def _chunks(body: bytes) -> list[Any]:
    events = [e.removeprefix(b"data: ") for e in body.split(b"\n\n") if e.startswith(b"data: ")]
    assert events[-1] == b"[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_logprobs_asked_for_answer_confidence_never_reach_a_client_that_did_not_ask(
    live_stack: LiveStack, state: Engine
) -> None:
    """The gateway asks vLLM for logprobs (answer confidence) when the client did not: its
    answer equals vLLM's own to the same request, streamed or not (a streamed tool call
    included, where vLLM sends chunks that carry only logprobs), and the stored row holds
    the confidence vLLM reports when asked."""
    plain = request_for(False, max_tokens=12)
    tool_call = request_for(
        True, tools=[WEATHER_TOOL], tool_choice="required", max_tokens=TOOL_TOKENS
    )
    gateway = {"Authorization": f"Bearer {live_stack.keys[TENANT]}"}
    with httpx.Client(timeout=300) as http:

        def both(request: dict[str, Any]) -> tuple[httpx.Response, httpx.Response]:
            via = http.post(
                f"{live_stack.gateway_url}/v1/chat/completions", json=request, headers=gateway
            )
            direct = http.post(
                f"{live_stack.engine_url}/v1/chat/completions",
                json=request,
                headers=live_stack.engine_headers,
            )
            assert via.status_code == direct.status_code == 200, via.text
            return via, direct

        via, direct = both(plain)
        assert b"top_logprobs" not in via.content
        assert via.json()["choices"][0]["logprobs"] is None
        assert _shape(via.json()) == _shape(direct.json())
        via_stream, direct_stream = both(tool_call)
        assert b"top_logprobs" not in via_stream.content
        assert _shape(_chunks(via_stream.content)) == _shape(_chunks(direct_stream.content))
        asked = http.post(
            f"{live_stack.engine_url}/v1/chat/completions",
            json={**plain, "logprobs": True, "top_logprobs": 2},
            headers=live_stack.engine_headers,
        ).json()
    tokens = asked["choices"][0]["logprobs"]["content"]
    first = sorted((t["logprob"] for t in tokens[0]["top_logprobs"]), reverse=True)
    row = stored(state, via.headers["x-request-id"])
    assert math.isfinite(row["mean_logprob"]) and row["mean_logprob"] < 0
    assert row["mean_logprob"] == pytest.approx(
        sum(t["logprob"] for t in tokens) / len(tokens), abs=1e-3
    )
    assert row["first_token_margin"] == pytest.approx(first[0] - first[1], abs=1e-3)
    streamed = stored(state, via_stream.headers["x-request-id"])
    assert math.isfinite(streamed["mean_logprob"]) and streamed["mean_logprob"] < 0
    assert streamed["first_token_margin"] >= 0  # greedy: the chosen token is the top one
