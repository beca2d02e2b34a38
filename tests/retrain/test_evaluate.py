"""The gate's engine client: a LoRA name vLLM already holds is the candidate only if it
was loaded from the candidate's path (an httpx mock transport stands in for vLLM's
"already loaded" answer and its ``/v1/models`` listing)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftgate.core.events import RecordedMessage, RecordedToolCall
from retrain.errors import EvaluationError
from retrain.evaluate import VllmEngine, evaluate_ahead
from retrain.examples import ChatExample
from retrain.metrics_task import exact_match


def engine_holding(name: str, root: str) -> VllmEngine:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/load_lora_adapter":
            return httpx.Response(
                400, json={"error": {"message": f"'{name}' has already been loaded."}}
            )
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": name, "root": root}]})
        return httpx.Response(404)

    return VllmEngine("http://vllm:8000", transport=httpx.MockTransport(handler))


def test_a_name_held_from_another_path_is_refused(tmp_path: Path) -> None:
    candidate = tmp_path / "candidate"
    refused = pytest.raises(EvaluationError, match="already holds support--v7 from '/elsewhere")
    with engine_holding("support--v7", "/elsewhere/weights") as engine, refused:
        engine.load_lora("support--v7", candidate)


def test_a_name_held_from_the_same_path_is_the_candidate(tmp_path: Path) -> None:
    candidate = tmp_path / "candidate"
    with engine_holding("support--v7", str(candidate)) as engine:
        engine.load_lora("support--v7", candidate)  # no error: a retried load of ours


def test_the_gate_asks_the_engine_with_the_messages_training_renders() -> None:
    """System prompt, earlier turns (a tool call and its result included), last user turn:
    the evaluation request holds exactly what the example trains on, minus the target."""
    sent: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"message": {"content": " Q-HW "}}]})

    example = ChatExample(
        prompt="Still jammed",
        completion="Q-HW",
        system="You route tickets.",
        history=(
            RecordedMessage(role="user", content="Printer jam"),
            RecordedMessage(
                role="assistant",
                tool_calls=(RecordedToolCall(id="c1", name="lookup", arguments="{}"),),
            ),
            RecordedMessage(role="tool", content="printer 3", tool_call_id="c1"),
            RecordedMessage(role="assistant", content="Q-HW"),
        ),
        tools_json='[{"function":{"name":"lookup","parameters":{}},"type":"function"}]',
    )
    with VllmEngine("http://vllm:8000", transport=httpx.MockTransport(handler)) as engine:
        assert engine.generate("support--v2", [example]) == ["Q-HW"]
        assert engine.generate("support--v2", [replace(example, tools_json=None)]) == ["Q-HW"]
    assert sent[0]["messages"] == example.messages(with_completion=False)
    assert sent[0]["tools"] == example.tools()  # the template renders them, as in training
    assert "tools" not in sent[1]
    assert example.messages(with_completion=True)[:-1] == sent[0]["messages"]
    assert len(example.messages(with_completion=False)) == 6


def test_the_gate_sends_the_served_response_format_and_stop_and_decodes_greedily() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"message": {"content": '{"q": "Q-HW"}'}}]})

    fmt = {"type": "json_schema", "json_schema": {"name": "q", "schema": {"type": "object"}}}
    constrained = ChatExample(
        prompt="Printer jams",
        completion='{"q": "Q-HW"}',
        response_format_json=json.dumps(fmt, sort_keys=True),
        stop=("\n\n", "END"),
    )
    plain = replace(constrained, response_format_json=None, stop=())
    with VllmEngine("http://vllm:8000", transport=httpx.MockTransport(handler)) as engine:
        engine.chat("support--v2", constrained)
        engine.chat("support--v2", plain)
    assert sent[0]["response_format"] == fmt and sent[0]["stop"] == ["\n\n", "END"]
    assert sent[0]["temperature"] == 0.0  # greedy whatever was served
    assert "response_format" not in sent[1] and "stop" not in sent[1]


def test_the_gate_sends_the_served_tool_choice_with_the_tools() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"message": {"content": "Q-HW"}}]})

    named = {"type": "function", "function": {"name": "lookup"}}
    example = ChatExample(
        prompt="Printer jams",
        completion="Q-HW",
        tools_json='[{"function":{"name":"lookup","parameters":{}},"type":"function"}]',
        tool_choice_json=json.dumps(named, sort_keys=True, separators=(",", ":")),
    )
    with VllmEngine("http://vllm:8000", transport=httpx.MockTransport(handler)) as engine:
        engine.chat("support--v2", example)
        engine.chat("support--v2", replace(example, tool_choice_json='"required"'))
        engine.chat("support--v2", replace(example, tool_choice_json=None))
    assert sent[0]["tool_choice"] == named and sent[1]["tool_choice"] == "required"
    assert "tool_choice" not in sent[2] and sent[2]["tools"] == example.tools()


class _Answering:
    """Answers every example right; ``asked`` is set once it is first asked."""

    def __init__(self, beside_training: bool, fail: bool = False) -> None:
        self.beside_training = beside_training
        self.fail = fail
        self.asked = threading.Event()

    def generate(self, model: str, examples: Sequence[ChatExample]) -> list[str]:
        self.asked.set()
        if self.fail:
            raise EvaluationError(f"generation with {model} failed: 503")
        return [e.completion for e in examples]

    def load_lora(self, name: str, path: Path) -> None: ...

    def unload_lora(self, name: str) -> None: ...


_SPLIT = [ChatExample(prompt=f"ticket {i}", completion="Q-BIL") for i in range(3)]


def test_an_engine_scores_the_serving_version_before_the_gate_asks() -> None:
    engine = _Answering(beside_training=True)
    scores = evaluate_ahead(engine, "support@1", _SPLIT, _SPLIT[:1], exact_match)
    assert engine.asked.wait(10.0)  # started without waiting for the call
    report, answers = scores()
    assert report.heldout.task == 1.0 and report.golden is not None and report.golden.n == 1
    assert answers["heldout"] == ["Q-BIL"] * 3


def test_a_generator_over_the_trained_model_scores_only_when_asked() -> None:
    local = _Answering(beside_training=False)
    scores = evaluate_ahead(local, "support@1", _SPLIT, [], exact_match)
    assert not local.asked.wait(0.2)
    assert scores()[0].heldout.n == 3 and local.asked.is_set()


def test_a_failure_while_scoring_ahead_is_raised_when_the_scores_are_wanted() -> None:
    scores = evaluate_ahead(_Answering(True, fail=True), "support@1", _SPLIT, [], exact_match)
    with pytest.raises(EvaluationError, match="503"):
        scores()
