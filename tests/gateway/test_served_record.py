"""The served-request record the gateway builds from an OpenAI chat payload (no network)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from driftgate.core.events import (
    MAX_NAME_CHARS,
    MAX_RECORD_CHARS,
    MAX_RECORD_MESSAGES,
    MAX_RECORD_STOP,
    MAX_RECORD_TOOL_NAMES,
    MAX_RESPONSE_FORMAT_CHARS,
    MAX_TEXT_CHARS,
    MAX_TOOLS_CHARS,
    ServedRequest,
)
from gateway.openai_body import prompt_text
from gateway.served_record import served_record

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def record(payload: dict[str, Any]) -> ServedRequest:
    """The record, validated as the drift service validates it."""
    built = served_record({"model": "m", **payload})
    assert built is not None
    return ServedRequest.model_validate_json(orjson.dumps(built))


def test_a_conversation_with_tools_is_recorded_as_sent() -> None:
    payload = {
        "messages": [
            {"role": "system", "content": "You route tickets."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Printer "}, {"type": "text", "text": "jam"}],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "user", "content": "And now?"},
        ],
        "tools": TOOLS,
        "tool_choice": "auto",
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        "temperature": 0.3,
        "top_p": 0.8,
        "max_tokens": 32,
        "stop": "\n\n",
        "seed": 7,
    }
    r = record(payload)
    assert [m.openai() for m in r.messages] == [
        {"role": "system", "content": "You route tickets."},
        {"role": "user", "content": "Printer \njam"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
        {"role": "user", "content": "And now?"},
    ]
    canonical = orjson.dumps(TOOLS, option=orjson.OPT_SORT_KEYS)
    assert r.tools_sha256 == hashlib.sha256(canonical).hexdigest()
    assert r.tools_json is not None and r.tools_json.encode() == canonical
    assert r.tool_names == ("get_weather",)
    assert r.response_format == "json_schema"
    assert r.response_format_json == '{"json_schema":{"name":"x","schema":{}},"type":"json_schema"}'
    assert r.tool_choice_json == '"auto"'
    assert (r.sampling.temperature, r.sampling.top_p, r.sampling.max_tokens) == (0.3, 0.8, 32)
    assert r.sampling.stop == ("\n\n",)
    assert r.complete
    # the drift features keep measuring the last user message
    assert prompt_text(payload, "chat") == "And now?"


def test_the_tools_hash_ignores_key_order_and_follows_the_schema() -> None:
    reordered = [{"function": dict(reversed(TOOLS[0]["function"].items())), "type": "function"}]
    changed = [{"type": "function", "function": {**TOOLS[0]["function"], "parameters": {}}}]
    msgs = [{"role": "user", "content": "hi"}]
    a = record({"messages": msgs, "tools": TOOLS}).tools_sha256
    assert record({"messages": msgs, "tools": reordered}).tools_sha256 == a
    assert record({"messages": msgs, "tools": changed}).tools_sha256 != a
    assert record({"messages": msgs}).tools_sha256 is None


def test_defaults_when_the_request_sets_nothing() -> None:
    r = record({"messages": [{"role": "user", "content": "hi"}]})
    assert r.sampling.model_dump() == {
        "temperature": None,
        "top_p": None,
        "max_tokens": None,
        "stop": (),
    }
    assert r.tool_names == () and r.response_format is None and r.complete
    assert r.response_format_json is None and r.tool_choice_json is None


def test_a_named_tool_choice_is_recorded_as_canonical_json() -> None:
    choice = {"function": {"name": "get_weather"}, "type": "function"}
    msgs = [{"role": "user", "content": "hi"}]
    r = record({"messages": msgs, "tools": TOOLS, "tool_choice": choice})
    assert r.tool_choice_json == '{"function":{"name":"get_weather"},"type":"function"}'
    assert r.complete


def test_max_completion_tokens_and_stop_lists() -> None:
    r = record(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "max_completion_tokens": 9,
            "stop": ["a", "b"],
        }
    )
    assert r.sampling.max_tokens == 9 and r.sampling.stop == ("a", "b")


def test_oversized_requests_give_valid_records_marked_incomplete() -> None:
    """Each cap: the record is cut to fit, validates, and says it is not what was served."""
    big = "x" * (MAX_TEXT_CHARS + 10)
    many = [{"role": "user", "content": f"m{i}"} for i in range(MAX_RECORD_MESSAGES + 5)]
    cases = [
        {"messages": [{"role": "user", "content": big}]},
        {"messages": [{"role": "user", "content": "y" * MAX_TEXT_CHARS}] * 3},
        {"messages": many},
        {"messages": [{"role": "user", "content": "hi"}], "stop": ["s"] * (MAX_RECORD_STOP + 1)},
        {"messages": [{"role": "user", "content": "hi"}], "stop": ["s" * 1000]},
        {
            "messages": [{"role": "user", "content": "hi"}],
            "tools": TOOLS * (MAX_RECORD_TOOL_NAMES + 1),
        },
        {
            "messages": [
                {"role": "function", "name": "f", "content": "x"},
                {"role": "user", "content": "hi"},
            ]
        },
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": "data:x"}},
                    ],
                }
            ]
        },
        {
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c" * 500, "function": {"name": "f", "arguments": "{}"}}],
                },
                {"role": "user", "content": "hi"},
            ]
        },
    ]
    for payload in cases:
        r = record(payload)
        assert not r.complete, payload
        size = sum(len(m.content) + sum(len(c.arguments) for c in m.tool_calls) for m in r.messages)
        assert size <= MAX_RECORD_CHARS
    kept = record({"messages": many}).messages
    assert len(kept) == MAX_RECORD_MESSAGES and kept[-1].content == f"m{MAX_RECORD_MESSAGES + 4}"


def test_arguments_sent_as_an_object_are_recorded_as_json() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
    r = record(
        {
            "messages": [
                {"role": "assistant", "tool_calls": [call]},
                {"role": "user", "content": "ok"},
            ]
        }
    )
    assert r.messages[0].tool_calls[0].arguments == '{"a":1}'


def test_no_record_without_a_recordable_message() -> None:
    assert served_record({"model": "m", "messages": [{"role": "function", "content": "x"}]}) is None


def test_tools_too_long_to_record_are_kept_by_hash_and_the_record_is_incomplete() -> None:
    long_tool = {
        "type": "function",
        "function": {"name": "f", "description": "d" * MAX_TOOLS_CHARS, "parameters": {}},
    }
    r = record({"messages": [{"role": "user", "content": "hi"}], "tools": [long_tool]})
    assert r.tools_json is None and r.tools_sha256 is not None and r.tool_names == ("f",)
    assert not r.complete


def test_a_participant_name_is_recorded_within_the_name_cap() -> None:
    named = record(
        {
            "messages": [
                {"role": "system", "content": "Route.", "name": "router"},
                {"role": "user", "content": "Printer jam", "name": "alice"},
                {"role": "assistant", "content": "Q-HW", "name": "bot"},
                {"role": "user", "content": "Thanks"},
            ]
        }
    )
    assert [m.name for m in named.messages] == ["router", "alice", "bot", None]
    assert named.messages[1].openai() == {"role": "user", "content": "Printer jam", "name": "alice"}
    assert named.complete
    long = record({"messages": [{"role": "user", "content": "hi", "name": "a" * 300}]})
    assert long.messages[0].name == "a" * MAX_NAME_CHARS and not long.complete
    odd = record({"messages": [{"role": "user", "content": "hi", "name": 7}]})
    assert not odd.complete


def test_a_response_format_too_long_to_record_keeps_its_type_and_the_record_is_incomplete() -> None:
    schema = {"type": "object", "description": "d" * MAX_RESPONSE_FORMAT_CHARS}
    r = record(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": schema},
            },
        }
    )
    assert r.response_format == "json_schema" and r.response_format_json is None
    assert not r.complete


def test_malformed_messages_are_left_out_not_a_crash() -> None:
    """A role that is an object (unhashable) or a message that is not an object: the record
    keeps the well-formed turns and says it is incomplete (found by the fuzz run with a
    drift service behind the gateway)."""
    payload = {
        "model": "m",
        "messages": [{"role": {}, "content": ""}, "hi", {"role": "user", "content": "ok"}],
    }
    record = served_record(payload)
    assert record is not None
    assert record["messages"] == [{"role": "user", "content": "ok"}]
    assert record["complete"] is False
    assert served_record({"model": "m", "messages": [{"role": ["user"]}]}) is None
