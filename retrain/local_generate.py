"""Greedy chat generation with transformers, for tests and quick checks (not the gate).

The evaluation gate generates through the real serving path (vLLM); this module lets a
unit test show, without an engine, that an adapter changes the model's greedy answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from retrain.base_model import LoadedBase
from retrain.encoding import prompt_ids
from retrain.examples import ChatExample


def greedy_answers(
    loaded: LoadedBase,
    prompts: Sequence[ChatExample],
    *,
    adapter_dir: Path | None = None,
    max_new_tokens: int = 32,
) -> list[str]:
    """Greedy completions of each example's (system, prompt) by the base model, or by the
    base model with ``adapter_dir`` applied (removed again before returning)."""
    import torch

    model: Any = loaded.model
    peft_model: Any = None
    if adapter_dir is not None:
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(loaded.model, str(adapter_dir))
        model = peft_model
    model.eval()
    out: list[str] = []
    try:
        with torch.no_grad():
            for ex in prompts:
                ids = torch.tensor([prompt_ids(loaded.tokenizer, ex)], device=loaded.device)
                gen = model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=loaded.pad_token_id,
                )
                text = loaded.tokenizer.decode(gen[0, ids.shape[1] :], skip_special_tokens=True)
                out.append(str(text).strip())
    finally:
        if peft_model is not None:
            loaded.model = peft_model.unload()
            loaded.model.eval()
    return out


class LocalGenerator:
    """The :class:`retrain.evaluate.Generator` protocol over transformers (no engine):
    ``base_name`` is the base model; names given to :meth:`load_lora` are adapters. It
    generates with the loaded base, which training wraps: never beside training."""

    beside_training = False

    def __init__(self, loaded: LoadedBase, base_name: str, max_new_tokens: int = 32) -> None:
        self.loaded = loaded
        self.base_name = base_name
        self.max_new_tokens = max_new_tokens
        self.adapters: dict[str, Path] = {}

    def load_lora(self, name: str, path: Path) -> None:
        self.adapters[name] = path

    def unload_lora(self, name: str) -> None:
        self.adapters.pop(name, None)

    def generate(self, model: str, examples: Sequence[ChatExample]) -> list[str]:
        if model != self.base_name and model not in self.adapters:
            raise KeyError(f"model {model!r} is not loaded")
        return greedy_answers(
            self.loaded,
            examples,
            adapter_dir=self.adapters.get(model),
            max_new_tokens=self.max_new_tokens,
        )
