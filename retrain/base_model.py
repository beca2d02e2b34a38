"""Load the base model and tokenizer once; reuse them for many trainings and generations.

Only this module, :mod:`retrain.training` and :mod:`retrain.local_generate` import torch and
transformers, and only when called.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain.errors import BaseModelError

if TYPE_CHECKING:
    import torch


_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


@dataclass(slots=True)
class LoadedBase:
    """A base causal LM and its tokenizer, loaded from a local directory."""

    model_dir: Path
    model: Any  # transformers.PreTrainedModel
    tokenizer: Any  # transformers.PreTrainedTokenizerBase
    device: torch.device

    @property
    def pad_token_id(self) -> int:
        tok = self.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        if pad is None:
            raise BaseModelError(f"tokenizer in {self.model_dir} has neither pad nor eos token")
        return int(pad)


def pick_device(requested: str | None = None) -> torch.device:
    """``requested`` if given, else CUDA when present, else CPU."""
    import torch

    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_model_dir(model_dir: Path) -> None:
    """Fail fast, with a clear reason, on a directory that cannot hold a usable model."""
    if not model_dir.is_dir():
        raise BaseModelError(f"base model directory {model_dir} does not exist")
    if not (model_dir / "config.json").is_file():
        raise BaseModelError(f"base model directory {model_dir} has no config.json")
    if not any((model_dir / name).is_file() for name in _WEIGHT_FILES):
        raise BaseModelError(f"base model directory {model_dir} has no weights file")
    if not (model_dir / "tokenizer_config.json").is_file():
        raise BaseModelError(f"base model directory {model_dir} has no tokenizer_config.json")


def load_base(model_dir: Path, *, device: str | None = None) -> LoadedBase:
    """Load model (float32 on CPU, bfloat16 on a GPU that supports it) and tokenizer.

    Raises :class:`~retrain.errors.BaseModelError` for a missing or corrupt directory.
    """
    check_model_dir(model_dir)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = pick_device(device)
    dtype = torch.float32
    if dev.type == "cuda" and torch.cuda.is_bf16_supported():
        dtype = torch.bfloat16
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        model: Any = AutoModelForCausalLM.from_pretrained(
            str(model_dir), dtype=dtype, local_files_only=True
        )
    except Exception as exc:  # re-raised with the reason; corrupt files raise many types
        raise BaseModelError(
            f"cannot load base model from {model_dir}: {type(exc).__name__}: {exc}"
        ) from exc
    if getattr(tokenizer, "chat_template", None) is None:
        raise BaseModelError(f"tokenizer in {model_dir} has no chat template")
    model.to(dev)
    model.eval()
    return LoadedBase(model_dir=model_dir, model=model, tokenizer=tokenizer, device=dev)
