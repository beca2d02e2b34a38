"""Whether a chat template renders an assistant turn's tool calls (pure; run once per job).

Templates differ: one written for tool use renders the calls in its own format (Hermes:
``<tool_call>{"name": ..., "arguments": ...}</tool_call>``), another drops them and renders
the turn's text only (SmolLM2's). A tool-call answer can be a training target only in the
first case; in the second the target would be an empty turn, teaching the model to say
nothing. The probe renders a made-up call and looks for its name, argument and value in
the rendered target turn (not in the prompt, where a template may list the tools).
"""

from __future__ import annotations

import json

from jinja2 import TemplateError as JinjaTemplateError

from retrain.encoding import ChatTokenizer, TemplateError, render
from retrain.examples import ChatExample

_NAME = "driftgate_probe_lookup"
_ARGUMENT = "driftgate_probe_ticket"
_VALUE = "driftgate-probe-4711"

_PROBE = ChatExample(
    prompt="Which queue handles ticket 4711?",
    completion=json.dumps(
        {"tool_calls": [{"name": _NAME, "arguments": json.dumps({_ARGUMENT: _VALUE})}]}
    ),
    tools_json=json.dumps(
        [
            {
                "type": "function",
                "function": {
                    "name": _NAME,
                    "description": "Look a ticket up.",
                    "parameters": {
                        "type": "object",
                        "properties": {_ARGUMENT: {"type": "string"}},
                        "required": [_ARGUMENT],
                    },
                },
            }
        ],
        sort_keys=True,
    ),
)


def renders_tool_calls(tokenizer: ChatTokenizer) -> bool:
    """Whether ``tokenizer``'s chat template renders an assistant turn's tool calls (the
    function's name and its arguments appear in the rendered turn)."""
    try:
        _, target = render(tokenizer, _PROBE)
    except (TemplateError, JinjaTemplateError, TypeError, KeyError):
        # A template that cannot render the turn at all cannot train on it either.
        return False
    return all(part in target for part in (_NAME, _ARGUMENT, _VALUE))
