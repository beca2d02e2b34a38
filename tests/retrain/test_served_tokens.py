"""Training matches serving, token for token, against the real vLLM.

A chat request as a client sends it (system prompt, a tool definition, earlier turns with a
tool call and its result, content parts) goes the way the loop takes it: the gateway's
record of it, the request event the drift service validates, the retrain job's curation.
The prompt token ids the job trains on must be the ids vLLM renders for the client's own
messages and tools (its ``POST /tokenize``, chat form, with the generation prompt), for an
approved answer and for a correction of it.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from driftgate.core.events import FeedbackEvent, RequestEvent
from driftgate.engine import EngineProcess
from gateway.served_record import served_record
from retrain.dataset import CurationConfig, TrafficRecord, curate
from retrain.encoding import encode, prompt_ids
from retrain.examples import ChatExample

SYSTEM = "You route support tickets to a queue. Answer with the queue code only."
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "find_printer",
            "description": "The printer on a floor.",
            "parameters": {
                "type": "object",
                "properties": {"floor": {"type": "integer"}},
                "required": ["floor"],
            },
        },
    }
]


def conversation(last: str) -> list[dict[str, Any]]:
    """What a client sends: a system prompt, two earlier turns (one a tool round trip)."""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "My printer on floor 3 jams every morning."},
        {"role": "assistant", "content": "Q-HW"},
        {"role": "user", "content": [{"type": "text", "text": "Which printer is it?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_7",
                    "type": "function",
                    "function": {"name": "find_printer", "arguments": '{"floor": 3}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_7", "content": "P3-EAST, model LX-200"},
        {"role": "user", "content": last},
    ]


def event(
    i: int, messages: list[dict[str, Any]], answer: str, tools: list[dict[str, Any]] | None = None
) -> RequestEvent:
    """The request event of a gateway that served ``messages`` (validated as the drift
    service validates a batch)."""
    payload: dict[str, Any] = {
        "model": "support--v1",
        "messages": messages,
        "temperature": 0,
        "max_tokens": 8,
    }
    if tools:
        payload["tools"] = tools
    body = {
        "request_id": f"chatcmpl-{i}",
        "tenant": "acme",
        "adapter": "support",
        "version": 1,
        "prompt_text": messages[-1]["content"],
        "completion_text": answer,
        "finish_reason": "stop",
        "served": served_record(payload),
    }
    return RequestEvent.model_validate_json(orjson.dumps(body))


def vllm_prompt_ids(engine: EngineProcess, messages: list[dict[str, Any]]) -> list[int]:
    r = httpx.post(
        f"{engine.base_url}/tokenize",
        json={
            "model": engine.settings.served_model_name,
            "messages": messages,
            "tools": TOOLS,
            "add_generation_prompt": True,
        },
        headers=engine.headers,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return [int(t) for t in r.json()["tokens"]]


@pytest.mark.e2e
def test_trained_prompt_tokens_are_the_tokens_vllm_serves(engine: EngineProcess) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(engine.settings.model_dir), local_files_only=True)
    approved = conversation("Still jammed today. Where should this go?")
    corrected = conversation("It now prints blank pages too. Which queue?")
    fillers = [
        event(
            10 + i,
            [{"role": "user", "content": f"Filler ticket {i} about topic {i * 7919}"}],
            "Q-X",
        )
        for i in range(4)
    ]
    requests = [event(1, approved, "Q-HW", TOOLS), event(2, corrected, "Q-NET", TOOLS), *fillers]
    feedback = {
        "chatcmpl-2": FeedbackEvent(
            request_id="chatcmpl-2", tenant="acme", score=0.0, correction="Q-PRINT"
        )
    }
    records = [
        TrafficRecord.from_events(
            r,
            [
                feedback.get(r.request_id)
                or FeedbackEvent(request_id=r.request_id, tenant="acme", score=1.0)
            ],
        )
        for r in requests
    ]
    ds = curate(records, CurationConfig(min_train=1, min_validation=1))
    examples: dict[str | None, ChatExample] = {e.request_id: e for e in (*ds.train, *ds.validation)}
    for rid, served, target in (
        ("chatcmpl-1", approved, "Q-HW"),
        ("chatcmpl-2", corrected, "Q-PRINT"),
    ):
        example = examples[rid]
        assert example.completion == target
        assert example.tools() == TOOLS
        served_ids = vllm_prompt_ids(engine, served)
        assert prompt_ids(tokenizer, example) == served_ids
        encoded = encode(tokenizer, example, 2048)
        assert encoded is not None
        # what carries the loss starts right after what vLLM was given
        assert list(encoded.input_ids[: encoded.n_prompt]) == served_ids
        assert tokenizer.decode(list(encoded.input_ids[encoded.n_prompt :])).startswith(target)
    # the correction replaced the answer, not the conversation: the served prompt is intact
    assert examples["chatcmpl-2"].messages(with_completion=False)[0] == {
        "role": "system",
        "content": SYSTEM,
    }
    assert len(examples["chatcmpl-2"].history) == 5
