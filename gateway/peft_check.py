"""Checks of a PEFT LoRA directory before any replica is asked to load it (no network)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftgate.errors import InvalidRequest

_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


@dataclass(frozen=True, slots=True)
class PeftInfo:
    path: str
    rank: int
    target_modules: tuple[str, ...]
    base_model: str | None


def _refuse(message: str) -> InvalidRequest:
    return InvalidRequest(message, param="path", code="invalid_adapter")


def check_peft_dir(path: str, *, max_rank: int, base_names: list[str]) -> PeftInfo:
    """Validate ``path`` as a LoRA directory vLLM can serve with this base model.

    Refuses: a missing directory or ``adapter_config.json``, no weights, a non-LoRA
    type, ``r`` above ``max_rank``, ``modules_to_save``, DoRA, and a
    ``base_model_name_or_path`` whose last component is none of ``base_names``.
    """
    p = Path(path)
    if not p.is_absolute():
        raise _refuse(f"adapter path must be absolute: {path!r}")
    if not p.is_dir():
        raise _refuse(f"adapter directory {path!r} does not exist")
    cfg_file = p / "adapter_config.json"
    try:
        cfg: Any = json.loads(cfg_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _refuse(f"{path!r} has no adapter_config.json") from None
    except (OSError, ValueError) as e:
        raise _refuse(f"adapter_config.json in {path!r} is unreadable: {e}") from None
    if not isinstance(cfg, dict):
        raise _refuse("adapter_config.json must hold a JSON object")
    if not any((p / w).is_file() for w in _WEIGHTS):
        raise _refuse(f"{path!r} has no adapter_model.safetensors")
    peft_type = str(cfg.get("peft_type", "LORA")).upper()
    if peft_type != "LORA":
        raise _refuse(f"peft_type {peft_type} is not supported (only LORA)")
    rank = cfg.get("r")
    if not isinstance(rank, int) or rank < 1:
        raise _refuse("adapter_config.json has no valid rank 'r'")
    if rank > max_rank:
        raise _refuse(f"rank r={rank} exceeds the engine's max LoRA rank {max_rank}")
    if cfg.get("modules_to_save"):
        raise _refuse("adapters with modules_to_save are not supported by vLLM")
    if cfg.get("use_dora"):
        raise _refuse("DoRA adapters are not supported by vLLM")
    base = cfg.get("base_model_name_or_path")
    if base:
        last = Path(str(base).rstrip("/")).name.lower()
        if last not in {n.lower() for n in base_names}:
            raise _refuse(
                f"adapter was trained on {base!r}, not on the served base model "
                f"({', '.join(base_names)})"
            )
    targets = cfg.get("target_modules") or ()
    if isinstance(targets, str):
        targets = (targets,)
    return PeftInfo(
        path=str(p),
        rank=rank,
        target_modules=tuple(str(t) for t in targets),
        base_model=str(base) if base else None,
    )
