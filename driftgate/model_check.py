"""The check of a prepared base model: its shape and a greedy chat answer (loads torch)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Expected shape of SmolLM2-135M-Instruct (checked after conversion).
EXPECTED_SHAPE = {"num_hidden_layers": 30, "hidden_size": 576, "vocab_size": 49152}
CHECK_PROMPT = "What is the capital of France?"
CHECK_EXPECT = "paris"


def _print(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ModelCheck:
    """What the check of a prepared directory found (stored in the marker file)."""

    layers: int
    hidden_size: int
    vocab_size: int
    parameters: int
    answer: str
    shape_ok: bool
    answer_ok: bool
    has_chat_template: bool

    @property
    def ok(self) -> bool:
        return self.shape_ok and self.answer_ok and self.has_chat_template


def check_model(model_dir: Path, progress: Callable[[str], None] = _print) -> ModelCheck:
    """Load ``model_dir`` with transformers and check shape and a greedy chat answer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    progress(f"checking {model_dir}: shape and a greedy answer to {CHECK_PROMPT!r}")
    tokenizer: Any = AutoTokenizer.from_pretrained(str(model_dir))
    model: Any = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.eval()
    cfg = model.config
    has_template = bool(getattr(tokenizer, "chat_template", None))
    messages = [{"role": "user", "content": CHECK_PROMPT}]
    ids: Any
    if has_template:
        ids = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
    else:
        ids = tokenizer(CHECK_PROMPT, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(
            **ids, max_new_tokens=24, do_sample=False, pad_token_id=tokenizer.eos_token_id
        )
    prompt_len = ids["input_ids"].shape[1]
    answer = tokenizer.decode(out[0][prompt_len:], skip_special_tokens=True).strip()
    shape = {
        "num_hidden_layers": int(cfg.num_hidden_layers),
        "hidden_size": int(cfg.hidden_size),
        "vocab_size": int(cfg.vocab_size),
    }
    return ModelCheck(
        layers=shape["num_hidden_layers"],
        hidden_size=shape["hidden_size"],
        vocab_size=shape["vocab_size"],
        parameters=int(sum(p.numel() for p in model.parameters())),
        answer=answer,
        shape_ok=shape == EXPECTED_SHAPE,
        answer_ok=CHECK_EXPECT in answer.lower(),
        has_chat_template=has_template,
    )
