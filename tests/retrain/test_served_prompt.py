"""Reading a logged chat request into an example's parts."""

from __future__ import annotations

import json

from driftgate.core.events import RecordedMessage
from retrain.served_prompt import PromptParts, split_prompt
from retrain.tool_answer import is_tool_call_answer


def test_split_prompt_shapes() -> None:
    assert split_prompt("plain question") == PromptParts(None, (), "plain question")
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    assert split_prompt(json.dumps(msgs)) == PromptParts("S", (), "U")
    multi = [*msgs, {"role": "assistant", "content": "A"}, {"role": "user", "content": "U2"}]
    history = (
        RecordedMessage(role="user", content="U"),
        RecordedMessage(role="assistant", content="A"),
    )
    assert split_prompt(json.dumps(multi)) == PromptParts("S", history, "U2")
    assert split_prompt(json.dumps([*msgs, {"role": "assistant", "content": "A"}])) is None
    assert split_prompt("[not json") == PromptParts(None, (), "[not json")


def test_tool_call_answers_are_recognised_as_the_gateway_records_them() -> None:
    call = '{"tool_calls": [{"name": "f", "arguments": "{}"}]}'
    assert is_tool_call_answer(call) and is_tool_call_answer(f"Let me look.\n{call}")
    assert not is_tool_call_answer('{"tool_calls": "none"}')
    assert not is_tool_call_answer('{"tool_calls": [broken')
    assert not is_tool_call_answer("Q-HW")
