"""Per-adapter retrain configuration and the frozen golden set, kept in the registry.

``<registry>/<adapter>/task.json``: the task metric and gate thresholds the owner chose.
``<registry>/<adapter>/golden.jsonl``: the golden set, one ``{"prompt", "completion",
"system"?, "history"?, "tools_json"?, "system_name"?, "prompt_name"?,
"response_format_json"?, "stop"?, "tool_choice_json"?}`` object per line
(``history``: earlier turns as chat messages; the optional keys only when set).
Registered once by the owner and frozen: it is never trained on (curation drops prompts
that duplicate it) and is replaced only on explicit request.
It is the gate's evidence independent of traffic: nothing here reads the drift store,
and nothing that reads traffic or feedback writes this file (``register_golden`` is called
by the owner's CLI, ``python -m retrain golden``, and the demo's set-up only).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from driftgate.core.errors import Conflict, InvalidRequest
from driftgate.core.events import RecordedMessage
from retrain.examples import ChatExample
from retrain.gate import GatePolicy
from retrain.metrics_task import MetricSpec
from retrain.registry import Registry, _write_json

TASK_FILE = "task.json"
GOLDEN_FILE = "golden.jsonl"
#: Golden-row keys written only when set, so older sets keep their bytes (and digest).
_OPTIONAL = (
    "tools_json",
    "system_name",
    "prompt_name",
    "response_format_json",
    "stop",
    "tool_choice_json",
)


class AdapterTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: MetricSpec = Field(default_factory=MetricSpec)
    margin: float = Field(default=0.02, ge=0, le=1)
    golden_floor: float = Field(default=0.0, ge=0, le=1)
    golden_max_drop: float | None = Field(default=None, ge=0, le=1)
    #: Classification adapters: a feedback label is the right answer.
    label_is_target: bool = True
    #: Every training target must match this regular expression, if set.
    target_pattern: str | None = None
    #: The system prompt the adapter's clients send (the logged prompt lacks it).
    system_prompt: str | None = None

    def policy(self, *, require_golden: bool = True) -> GatePolicy:
        return GatePolicy(
            margin=self.margin,
            golden_floor=self.golden_floor,
            golden_max_drop=self.golden_max_drop,
            require_golden=require_golden,
        )


def load_task(registry: Registry, adapter: str) -> AdapterTask:
    f = registry.adapter_dir(adapter) / TASK_FILE
    if not f.is_file():
        return AdapterTask()
    try:
        return AdapterTask.model_validate_json(f.read_text())
    except ValidationError as exc:
        raise InvalidRequest(f"invalid {f}: {exc}") from exc


def save_task(registry: Registry, adapter: str, task: AdapterTask) -> Path:
    d = registry.adapter_dir(adapter)
    d.mkdir(parents=True, exist_ok=True)
    _write_json(d / TASK_FILE, task.model_dump(mode="json", by_alias=True))
    return d / TASK_FILE


def load_golden(registry: Registry, adapter: str) -> list[ChatExample]:
    f = registry.adapter_dir(adapter) / GOLDEN_FILE
    if not f.is_file():
        return []
    out = []
    for n, line in enumerate(f.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            history = tuple(RecordedMessage.model_validate(m) for m in row.get("history", ()))
            optional: dict[str, Any] = {k: row[k] for k in _OPTIONAL if k in row}
            if "stop" in optional:
                optional["stop"] = tuple(optional["stop"])
            out.append(
                ChatExample(
                    prompt=row["prompt"],
                    completion=row["completion"],
                    system=row.get("system"),
                    history=history,
                    **optional,
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidRequest(f"{f}:{n}: invalid golden example: {exc}") from exc
    return out


def golden_digest(registry: Registry, adapter: str) -> str | None:
    """The registered golden set's content hash (as :func:`register_golden` returned it),
    or ``None`` without one: what a version's metadata records as its golden evidence."""
    f = registry.adapter_dir(adapter) / GOLDEN_FILE
    if not f.is_file():
        return None
    return "sha256:" + hashlib.sha256(f.read_bytes()).hexdigest()


def register_golden(
    registry: Registry, adapter: str, examples: Sequence[ChatExample], *, replace: bool = False
) -> str:
    """Store the golden set; refuses to change a registered one unless ``replace``, and
    refuses examples curated from traffic (they carry a tenant or request id): the golden
    set must be evidence that feedback cannot write."""
    if not examples:
        raise InvalidRequest("a golden set needs at least one example")
    if any(e.tenant is not None or e.request_id is not None for e in examples):
        raise InvalidRequest(
            "golden examples must not come from traffic or feedback (an example carries a "
            "tenant or request id)",
            code="golden_from_traffic",
        )
    d = registry.adapter_dir(adapter)
    f = d / GOLDEN_FILE
    if f.exists() and not replace:
        raise Conflict(f"{adapter} already has a golden set (frozen); pass replace to change it")
    lines = [json.dumps(_golden_row(e), sort_keys=True) for e in examples]
    text = "\n".join(lines) + "\n"
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{GOLDEN_FILE}.tmp"
    tmp.write_text(text)
    tmp.replace(f)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _golden_row(example: ChatExample) -> dict[str, Any]:
    """One golden line; ``history`` only when there are earlier turns, so single-turn sets
    keep the bytes (and digest) they had."""
    row: dict[str, Any] = {
        "prompt": example.prompt,
        "completion": example.completion,
        "system": example.system,
    }
    if example.history:
        row["history"] = [m.openai() for m in example.history]
    if example.tools_json is not None:
        row["tools_json"] = example.tools_json
    row.update(example.extras())
    return row
