"""Tool-call answers as training targets: trained in the template's tool format when the
chat template renders tool calls (a hand-written Hermes-like template on the tiny
tokenizer), left out and counted when it does not (the real SmolLM2 template), and judged
by their calls at the gate."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftgate.core.events import FeedbackEvent, ServedRequest
from retrain.dataset import CurationConfig, TrafficRecord, curate
from retrain.encoding import encode, render
from retrain.evaluate import VllmEngine, score_split
from retrain.examples import ChatExample
from retrain.metrics_task import exact_match
from retrain.template_probe import renders_tool_calls

#: Hermes-like: tools listed in a system turn, each call as ``<tool_call>{json}</tool_call>``.
HERMES_LIKE = (
    "{% if tools %}<|im_start|>system\n<tools>{{ tools | tojson }}</tools><|im_end|>\n"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' and message.get('tool_calls') %}"
    "{{ '<|im_start|>assistant\n' + message['content'] }}"
    "{% for call in message['tool_calls'] %}"
    "<tool_call>{{ {'name': call['function']['name'], "
    "'arguments': call['function']['arguments']} | tojson }}</tool_call>"
    "{% endfor %}{{ '<|im_end|>\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

TOOLS = json.dumps(
    [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
    sort_keys=True,
    separators=(",", ":"),
)
CALL = '{"tool_calls":[{"name":"lookup","arguments":"{\\"floor\\":3}"}]}'


@pytest.fixture(scope="module")
def chatml(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir), local_files_only=True)


@pytest.fixture(scope="module")
def hermes(chatml: Any) -> Any:
    tok = copy.copy(chatml)
    tok.chat_template = HERMES_LIKE
    return tok


def served_record(i: int, completion: str) -> TrafficRecord:
    served = ServedRequest.model_validate(
        {
            "messages": [
                {"role": "system", "content": "You route tickets."},
                {"role": "user", "content": f"Printer {i} jams on floor {i * 7919}"},
            ],
            "tools_json": TOOLS,
        }
    )
    rid = f"r{i}"
    return TrafficRecord(
        request_id=rid,
        ts=1000.0 + i,
        prompt_text=served.messages[-1].content,
        completion_text=completion,
        tenant="t",
        feedback=(FeedbackEvent(request_id=rid, tenant="t", ts=2000.0 + i, score=1.0),),
        served=served,
    )


RECORDS = [served_record(i, CALL if i < 3 else "Q-HW") for i in range(8)]
SMALL = CurationConfig(min_train=2, min_validation=1)


def test_the_probe_tells_templates_that_render_tool_calls_from_those_that_drop_them(
    hermes: Any, chatml: Any, base_model_dir: Path
) -> None:
    from transformers import AutoTokenizer

    smollm2 = AutoTokenizer.from_pretrained(str(base_model_dir), local_files_only=True)
    assert renders_tool_calls(hermes)
    assert not renders_tool_calls(chatml)
    assert not renders_tool_calls(smollm2)  # its template renders the turn's text only


def test_a_template_that_renders_tool_calls_trains_on_them_in_its_format(hermes: Any) -> None:
    ds = curate(RECORDS, CurationConfig(min_train=2, min_validation=1, tool_call_targets=True))
    calls = [e for e in (*ds.train, *ds.validation) if e.completion == CALL]
    assert len(calls) == 3 and ds.size == 8
    assert "excluded_tool_call_target_template_cannot_render" not in ds.stats
    prompt, target = render(hermes, calls[0])
    assert prompt.startswith("<|im_start|>system\n<tools>") and prompt.endswith("assistant\n")
    assert target == (
        '<tool_call>{"name": "lookup", "arguments": {"floor": 3}}</tool_call><|im_end|>\n'
    )
    enc = encode(hermes, calls[0], 4096)
    assert enc is not None  # the loss covers the assistant turn only
    assert hermes.decode(list(enc.input_ids[enc.n_prompt :])) == target
    assert hermes.decode(list(enc.input_ids[: enc.n_prompt])) == prompt


def test_text_before_the_calls_is_part_of_the_target_turn(hermes: Any) -> None:
    example = ChatExample(prompt="Printer jams", completion=f"Let me look.\n{CALL}")
    assert render(hermes, example)[1].startswith("Let me look.<tool_call>{")


def test_a_template_that_cannot_render_them_leaves_them_out_counted(base_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    smollm2 = AutoTokenizer.from_pretrained(str(base_model_dir), local_files_only=True)
    cfg = CurationConfig(
        min_train=2, min_validation=1, tool_call_targets=renders_tool_calls(smollm2)
    )
    ds = curate(RECORDS, cfg)
    assert ds.stats["excluded_tool_call_target_template_cannot_render"] == 3
    assert ds.size == 5 and all(e.completion == "Q-HW" for e in (*ds.train, *ds.validation))


def test_calls_over_the_record_caps_are_left_out_even_when_renderable() -> None:
    bad = json.dumps({"tool_calls": [{"name": "x" * 200, "arguments": "{}"}]})
    records = [served_record(0, bad), *RECORDS[3:]]
    ds = curate(records, CurationConfig(min_train=2, min_validation=1, tool_call_targets=True))
    assert ds.stats["excluded_tool_call_target_invalid"] == 1 and ds.size == 5


def test_the_gate_judges_tool_call_targets_by_their_calls() -> None:
    """The engine answers with parsed tool calls (vLLM with a tool parser): same function
    and JSON-equal arguments score 1 whatever the text and key order; another argument
    value or another function scores 0; text targets keep the task metric."""
    answers = iter(
        [
            {"content": "Sure.", "tool_calls": [call("lookup", '{ "floor": 3 }')]},
            {"content": None, "tool_calls": [call("lookup", '{"floor": 4}')]},
            {"content": None, "tool_calls": [call("escalate", '{"floor": 3}')]},
            {"content": "lookup floor 3"},
            {"content": " Q-HW "},
        ]
    )
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"message": next(answers)}]})

    examples = [ChatExample(prompt=f"Printer {i} jams", completion=CALL) for i in range(4)]
    examples.append(ChatExample(prompt="Printer 5 jams", completion="Q-HW"))
    with VllmEngine("http://vllm:8000", transport=httpx.MockTransport(handler), concurrency=1) as e:
        scores, got = score_split(e, "support--v2", examples, exact_match)
    assert scores.task == pytest.approx(2 / 5)
    assert got[0] == 'Sure.\n{"tool_calls":[{"name":"lookup","arguments":"{ \\"floor\\": 3 }"}]}'
    assert got[4] == "Q-HW"
    assert all(m["messages"][-1]["role"] == "user" for m in sent)


def call(name: str, arguments: str) -> dict[str, Any]:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}
