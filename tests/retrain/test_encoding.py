"""Rendering a served conversation for training: the earlier turns in the prompt, the loss
on the target assistant turn only (the tiny ChatML tokenizer of the retrain fixtures)."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from driftgate.core.events import RecordedMessage, RecordedToolCall
from retrain.encoding import encode, prompt_ids, render
from retrain.examples import ChatExample

CONVERSATION = ChatExample(
    prompt="Still jammed, see above",
    completion="Q-HW",
    system="You route tickets.",
    history=(
        RecordedMessage(role="user", content="Printer jam on floor 3"),
        RecordedMessage(
            role="assistant",
            tool_calls=(RecordedToolCall(id="c1", name="lookup", arguments='{"floor": 3}'),),
        ),
        RecordedMessage(role="tool", content="printer P3-1", tool_call_id="c1"),
        RecordedMessage(role="assistant", content="Q-NET"),
    ),
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir), local_files_only=True)


def test_earlier_turns_are_prompt_and_only_the_target_is_trained(tokenizer: Any) -> None:
    prompt, completion = render(tokenizer, CONVERSATION)
    assert prompt == (
        "<|im_start|>system\nYou route tickets.<|im_end|>\n"
        "<|im_start|>user\nPrinter jam on floor 3<|im_end|>\n"
        "<|im_start|>assistant\n<|im_end|>\n"
        "<|im_start|>tool\nprinter P3-1<|im_end|>\n"
        "<|im_start|>assistant\nQ-NET<|im_end|>\n"
        "<|im_start|>user\nStill jammed, see above<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert completion == "Q-HW<|im_end|>\n"
    enc = encode(tokenizer, CONVERSATION, 4096)
    assert enc is not None
    assert tokenizer.decode(list(enc.input_ids[enc.n_prompt :])) == "Q-HW<|im_end|>\n"


def test_a_correction_changes_the_target_tokens_only(tokenizer: Any) -> None:
    corrected = replace(CONVERSATION, completion="Q-PRINT")
    served, fixed = encode(tokenizer, CONVERSATION, 4096), encode(tokenizer, corrected, 4096)
    assert served is not None and fixed is not None
    assert prompt_ids(tokenizer, corrected) == prompt_ids(tokenizer, CONVERSATION)
    assert fixed.input_ids[: fixed.n_prompt] == served.input_ids[: served.n_prompt]
    assert tokenizer.decode(list(fixed.input_ids[fixed.n_prompt :])) == "Q-PRINT<|im_end|>\n"


def test_recorded_tools_are_rendered_into_the_prompt_as_vllm_renders_them(tokenizer: Any) -> None:
    """A template that renders tools (this base model's ignores them): they are prompt, and
    the target is unchanged."""
    tools_template = (
        "{% if tools %}<tools>{{ tools | tojson }}</tools>\n{% endif %}" + tokenizer.chat_template
    )
    with_tools = replace(
        CONVERSATION,
        tools_json='[{"function":{"name":"lookup","parameters":{}},"type":"function"}]',
    )
    templated = copy.copy(tokenizer)
    templated.chat_template = tools_template
    prompt, completion = render(templated, with_tools)
    assert prompt.startswith('<tools>[{"function": {"name": "lookup"')
    assert completion == "Q-HW<|im_end|>\n"
    assert render(templated, CONVERSATION)[0] == render(tokenizer, CONVERSATION)[0]


def test_participant_names_reach_a_template_that_renders_them(tokenizer: Any) -> None:
    named_template = tokenizer.chat_template.replace(
        "message['role'] + '\n'",
        "message['role'] + (' ' + message['name'] if message.get('name') else '') + '\n'",
    )
    assert named_template != tokenizer.chat_template
    templated = copy.copy(tokenizer)
    templated.chat_template = named_template
    named = replace(CONVERSATION, system_name="router", prompt_name="alice")
    prompt, completion = render(templated, named)
    assert prompt.startswith("<|im_start|>system router\nYou route tickets.")
    assert prompt.endswith(
        "<|im_start|>user alice\nStill jammed, see above<|im_end|>\n<|im_start|>assistant\n"
    )
    assert completion == "Q-HW<|im_end|>\n"
    assert render(templated, CONVERSATION)[0] == render(tokenizer, CONVERSATION)[0]
