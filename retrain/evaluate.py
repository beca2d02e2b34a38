"""Evaluation through the real serving path: vLLM's OpenAI API, greedy decoding.

The candidate is loaded into the engine under its own LoRA name
(``driftgate.core.adapters.lora_name``) with ``/v1/load_lora_adapter`` and unloaded after the
evaluation: it is never registered with the gateway or routed, so a rejected candidate
never receives traffic. The serving version (or the base model) is already loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import httpx

from driftgate.core.recorded_answer import answer_text
from retrain.errors import EvaluationError
from retrain.examples import ChatExample
from retrain.gate import EvalReport, SplitScores
from retrain.metrics_task import MetricFn, mean_score, rouge_l
from retrain.tool_answer import judging_tool_calls


class Generator(Protocol):
    """Something that answers chat examples with a named model (vLLM in production).

    A candidate is made servable under its LoRA name with :meth:`load_lora` before it is
    evaluated and removed with :meth:`unload_lora` after, so a generator that cannot load
    adapters cannot silently evaluate the wrong model.

    ``beside_training``: whether it generates outside the training process (a serving
    engine), so the job may score the serving version while it trains the candidate; a
    generator over the very model being trained must not.
    """

    beside_training: bool

    def generate(self, model: str, examples: Sequence[ChatExample]) -> list[str]: ...

    def load_lora(self, name: str, path: Path) -> None: ...

    def unload_lora(self, name: str) -> None: ...


class VllmEngine:
    """A small synchronous client of one vLLM replica's OpenAI-compatible API."""

    beside_training = True

    def __init__(
        self,
        base_url: str,
        *,
        max_tokens: int = 64,
        concurrency: int = 8,
        timeout_s: float = 120.0,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout_s,
            headers=headers,
            limits=httpx.Limits(max_connections=concurrency),
            transport=transport,
        )
        self.max_tokens = max_tokens
        self.concurrency = concurrency

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> VllmEngine:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            return self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise EvaluationError(f"engine unreachable at {self._client.base_url}: {exc}") from exc

    def models(self) -> list[str]:
        try:
            r = self._client.get("/v1/models")
        except httpx.HTTPError as exc:
            raise EvaluationError(f"engine unreachable at {self._client.base_url}: {exc}") from exc
        r.raise_for_status()
        return [str(m["id"]) for m in r.json().get("data", [])]

    def load_lora(self, name: str, path: Path) -> None:
        r = self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(path)})
        if r.status_code < 400:
            return
        if "already" not in r.text.lower():
            raise EvaluationError(f"engine refused adapter {name} from {path}: {r.text[:500]}")
        # Scored only if vLLM holds this name from this very path: the gate must judge the
        # candidate's weights, not whatever someone loaded under its name before.
        held = self.loaded_path(name)
        if held != str(path):
            raise EvaluationError(f"engine already holds {name} from {held!r}, not {str(path)!r}")

    def loaded_path(self, name: str) -> str | None:
        """The path the engine loaded LoRA ``name`` from (``root`` in ``/v1/models``)."""
        try:
            r = self._client.get("/v1/models")
        except httpx.HTTPError as exc:
            raise EvaluationError(f"engine unreachable at {self._client.base_url}: {exc}") from exc
        r.raise_for_status()
        for m in r.json().get("data", []):
            if m.get("id") == name:
                root = m.get("root")
                return str(root) if root is not None else None
        return None

    def unload_lora(self, name: str) -> None:
        r = self._post("/v1/unload_lora_adapter", {"lora_name": name})
        if r.status_code >= 400 and "not found" not in r.text.lower():
            raise EvaluationError(f"engine could not unload {name}: {r.text[:500]}")

    def chat(self, model: str, example: ChatExample) -> str:
        request: dict[str, Any] = {
            "model": model,
            "messages": example.messages(with_completion=False),
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
        }
        tools = example.tools()
        if tools is not None:
            request["tools"] = tools
            tool_choice = example.tool_choice()
            if tool_choice is not None:
                request["tool_choice"] = tool_choice
        # What the served request constrained the answer with, sent again; the sampling
        # stays greedy (not the served temperature) so both versions are compared on one
        # reproducible answer each.
        response_format = example.response_format()
        if response_format is not None:
            request["response_format"] = response_format
        if example.stop:
            request["stop"] = list(example.stop)
        r = self._post("/v1/chat/completions", request)
        if r.status_code != 200:
            raise EvaluationError(f"generation with {model} failed: {r.status_code} {r.text[:300]}")
        message = r.json()["choices"][0]["message"]
        calls = [
            (str(c["function"].get("name") or ""), str(c["function"].get("arguments") or ""))
            for c in message.get("tool_calls") or ()
            if isinstance(c, dict) and isinstance(c.get("function"), dict)
        ]
        # Recorded as the gateway records answers, so a tool call compares with a recorded one.
        return answer_text(str(message.get("content") or "").strip(), calls)

    def generate(self, model: str, examples: Sequence[ChatExample]) -> list[str]:
        if not examples:
            return []
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda ex: self.chat(model, ex), examples))


def score_split(
    generator: Generator, model: str, examples: Sequence[ChatExample], metric: MetricFn
) -> tuple[SplitScores, list[str]]:
    """Task score per example: the metric for text targets; the calls (names and
    JSON-equal arguments) for tool-call targets, whatever text comes with them."""
    answers = generator.generate(model, examples)
    refs = [e.completion for e in examples]
    return (
        SplitScores(
            task=mean_score(judging_tool_calls(metric), answers, refs),
            rouge_l=mean_score(rouge_l, answers, refs),
            n=len(examples),
        ),
        answers,
    )


def evaluate_model(
    generator: Generator,
    model: str,
    heldout: Sequence[ChatExample],
    golden: Sequence[ChatExample],
    metric: MetricFn,
) -> tuple[EvalReport, dict[str, list[str]]]:
    """Scores of one served model on the held-out split and the golden set (if any)."""
    held, held_answers = score_split(generator, model, heldout, metric)
    answers = {"heldout": held_answers}
    gold: SplitScores | None = None
    if golden:
        gold, answers["golden"] = score_split(generator, model, golden, metric)
    return EvalReport(heldout=held, golden=gold), answers


def evaluate_ahead(
    generator: Generator,
    model: str,
    heldout: Sequence[ChatExample],
    golden: Sequence[ChatExample],
    metric: MetricFn,
) -> Callable[[], tuple[EvalReport, dict[str, list[str]]]]:
    """:func:`evaluate_model`, started now in a thread when ``generator`` may run beside
    training (the job scores the serving version while it trains the candidate); the
    returned call waits for the scores, or raises what scoring raised. Otherwise the call
    scores then."""

    def score() -> tuple[EvalReport, dict[str, list[str]]]:
        return evaluate_model(generator, model, heldout, golden, metric)

    if not generator.beside_training:
        return score
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="serving-eval")
    future = pool.submit(score)
    pool.shutdown(wait=False)  # the thread ends with its one task, collected or not
    return future.result
