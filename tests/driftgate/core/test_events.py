"""The served-request record of a request event: its caps and its defaults."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from driftgate.core.events import (
    MAX_RECORD_CHARS,
    MAX_RECORD_MESSAGES,
    MAX_RECORD_STOP,
    MAX_RECORD_TOOL_CALLS,
    MAX_RESPONSE_FORMAT_CHARS,
    MAX_TEXT_CHARS,
    RecordedMessage,
    RequestEvent,
    ServedRequest,
)


def event(**served: Any) -> RequestEvent:
    record = {"messages": [{"role": "user", "content": "hi"}], **served}
    return RequestEvent.model_validate({"request_id": "r1", "tenant": "acme", "served": record})


def test_an_event_without_a_record_is_valid_as_older_gateways_send_it() -> None:
    e = RequestEvent(request_id="r1", tenant="acme", prompt_text="hi")
    assert e.served is None
    again = RequestEvent.model_validate_json(e.model_dump_json(exclude={"served"}))
    assert again == e


def test_a_full_record_round_trips() -> None:
    e = event(
        messages=[
            {"role": "system", "content": "S"},
            {"role": "user", "content": "U"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "c1", "name": "f", "arguments": '{"a":1}'}],
            },
            {"role": "tool", "content": "42", "tool_call_id": "c1"},
            {"role": "user", "content": "U2"},
        ],
        tools_sha256="a" * 64,
        tool_names=["f"],
        response_format="json_object",
        response_format_json='{"type":"json_object"}',
        sampling={"temperature": 0.2, "top_p": 0.9, "max_tokens": 64, "stop": ["\n\n"]},
    )
    assert RequestEvent.model_validate_json(e.model_dump_json()) == e
    assert e.served is not None and e.served.complete


@pytest.mark.parametrize(
    ("served", "where"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}] * (MAX_RECORD_MESSAGES + 1)}, "messages"),
        ({"messages": [{"role": "user", "content": "x" * (MAX_TEXT_CHARS + 1)}]}, "content"),
        ({"messages": [{"role": "user", "content": "x" * MAX_TEXT_CHARS}] * 3}, "characters"),
        ({"messages": [{"role": "function", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user", "content": "x", "name": "b" * 129}]}, "name"),
        ({"messages": [{"role": "user", "content": "x", "nickname": "bob"}]}, "nickname"),
        ({"tools_sha256": "not-a-hash"}, "tools_sha256"),
        ({"response_format_json": "x" * (MAX_RESPONSE_FORMAT_CHARS + 1)}, "response_format_json"),
        ({"sampling": {"stop": ["s"] * (MAX_RECORD_STOP + 1)}}, "stop"),
        ({"sampling": {"top_p": 1.5}}, "top_p"),
        ({"sampling": {"seed": 1}}, "seed"),
        ({"extra": 1}, "extra"),
    ],
)
def test_caps_and_unknown_fields_are_refused(served: dict[str, Any], where: str) -> None:
    record = {"messages": [{"role": "user", "content": "hi"}], **served}
    with pytest.raises(ValidationError, match=where):
        ServedRequest.model_validate(record)


def test_tool_calls_per_message_are_capped() -> None:
    calls = [{"name": "f", "arguments": "{}"}] * (MAX_RECORD_TOOL_CALLS + 1)
    with pytest.raises(ValidationError, match="tool_calls"):
        RecordedMessage.model_validate({"role": "assistant", "tool_calls": calls})


def test_the_total_counts_tool_call_arguments_too() -> None:
    half = MAX_RECORD_CHARS // 2
    call = {"name": "f", "arguments": "x" * (half // 2 + 1)}
    messages = [
        {"role": "user", "content": "u" * half},
        {"role": "assistant", "content": "", "tool_calls": [call, call]},
    ]
    with pytest.raises(ValidationError, match="characters"):
        ServedRequest.model_validate({"messages": messages})


def test_openai_shape_of_a_recorded_message() -> None:
    m = RecordedMessage.model_validate(
        {"role": "assistant", "tool_calls": [{"name": "f", "arguments": "{}"}]}
    )
    assert m.openai() == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }
    tool = RecordedMessage(role="tool", content="42", tool_call_id="c1")
    assert tool.openai() == {"role": "tool", "content": "42", "tool_call_id": "c1"}


def test_a_participant_name_is_kept_and_given_back_in_the_openai_shape() -> None:
    e = event(
        messages=[
            {"role": "system", "content": "S", "name": "router"},
            {"role": "user", "content": "U", "name": "alice"},
        ]
    )
    assert RequestEvent.model_validate_json(e.model_dump_json()) == e
    assert e.served is not None
    assert [m.openai() for m in e.served.messages] == [
        {"role": "system", "content": "S", "name": "router"},
        {"role": "user", "content": "U", "name": "alice"},
    ]
    assert "name" not in RecordedMessage(role="user", content="U").openai()
