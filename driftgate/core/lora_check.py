"""Can vLLM serve this LoRA directory? The one check, used by the gateway and the retrain job.

Reads only the directory (no network, no torch). Every refusal is an
:class:`UnservableAdapter` (HTTP 400, ``param="path"``, ``code="invalid_adapter"``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftgate.core.errors import InvalidRequest

CONFIG_FILE = "adapter_config.json"
#: The weight files vLLM loads, either one.
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")


class UnservableAdapter(InvalidRequest):
    """A directory vLLM cannot load as a LoRA adapter."""

    code = "invalid_adapter"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="path")


class AdapterPathNotAllowed(InvalidRequest):
    """An adapter path outside every allowed root (``DRIFTGATE_ADAPTER_ROOTS``)."""

    code = "adapter_path_not_allowed"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="path")


def confine_path(path: str | Path, roots: Sequence[str | Path]) -> Path:
    """``path`` with symlinks and ``..`` resolved, if that lies below one of ``roots``.

    The caller keeps the resolved path, so a link changed later cannot point the
    engine elsewhere. Refuses a relative path (400 ``invalid_adapter``) and one that
    resolves outside every root (400 ``adapter_path_not_allowed``); the message does
    not say where it resolved to.
    """
    p = Path(path)
    if not p.is_absolute():
        raise UnservableAdapter(f"adapter path must be absolute: {str(path)!r}")
    resolved = p.resolve()
    for root in roots:
        if Path(root).expanduser().resolve() in resolved.parents:
            return resolved
    raise AdapterPathNotAllowed(f"adapter path {str(path)!r} is outside the adapter registry")


@dataclass(frozen=True, slots=True)
class LoraInfo:
    """The LoRA shape of a servable directory (``target_modules`` in the config's order)."""

    path: str
    rank: int
    alpha: int | float | None
    target_modules: tuple[str, ...]
    base_model: str | None


def check_lora_dir(
    path: str | Path,
    *,
    max_rank: int | None = None,
    base_names: Iterable[str] | None = None,
) -> LoraInfo:
    """Validate ``path`` as a LoRA directory vLLM can serve; return its shape.

    Refuses: a relative path, a missing directory or ``adapter_config.json``, a config
    that is not a JSON object, no weights file, a ``peft_type`` other than ``LORA``
    (missing included), a rank ``r`` that is not a positive integer or is above
    ``max_rank`` (when given), ``modules_to_save``, DoRA, and (when ``base_names``
    is given) a ``base_model_name_or_path`` whose last component is none of them.
    """
    p = Path(path)
    if not p.is_absolute():
        raise UnservableAdapter(f"adapter path must be absolute: {str(path)!r}")
    if not p.is_dir():
        raise UnservableAdapter(f"adapter directory {str(p)!r} does not exist")
    cfg = _config(p)
    if not any((p / w).is_file() for w in WEIGHT_FILES):
        raise UnservableAdapter(f"{str(p)!r} has no adapter_model.safetensors")
    peft_type = cfg.get("peft_type")
    if peft_type != "LORA":
        raise UnservableAdapter(f"peft_type {peft_type} is not supported (only LORA)")
    rank = cfg.get("r")
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise UnservableAdapter(f"{CONFIG_FILE} has no valid rank 'r'")
    if max_rank is not None and rank > max_rank:
        raise UnservableAdapter(f"rank r={rank} exceeds the engine's max LoRA rank {max_rank}")
    if cfg.get("modules_to_save"):
        raise UnservableAdapter("adapters with modules_to_save are not supported by vLLM")
    if cfg.get("use_dora"):
        raise UnservableAdapter("DoRA adapters are not supported by vLLM")
    base = cfg.get("base_model_name_or_path")
    if base and base_names is not None:
        names = list(base_names)
        last = Path(str(base).rstrip("/")).name.lower()
        if last not in {n.lower() for n in names}:
            raise UnservableAdapter(
                f"adapter was trained on {base!r}, not on the served base model "
                f"({', '.join(names)})"
            )
    targets = cfg.get("target_modules") or ()
    if isinstance(targets, str):
        targets = (targets,)
    alpha = cfg.get("lora_alpha")
    return LoraInfo(
        path=str(p),
        rank=rank,
        alpha=alpha if isinstance(alpha, int | float) and not isinstance(alpha, bool) else None,
        target_modules=tuple(str(t) for t in targets),
        base_model=str(base) if base else None,
    )


def _config(p: Path) -> dict[str, Any]:
    try:
        cfg: Any = json.loads((p / CONFIG_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnservableAdapter(f"{str(p)!r} has no {CONFIG_FILE}") from None
    except (OSError, ValueError) as e:
        raise UnservableAdapter(f"{CONFIG_FILE} in {str(p)!r} is unreadable: {e}") from None
    if not isinstance(cfg, dict):
        raise UnservableAdapter(f"{CONFIG_FILE} must hold a JSON object")
    return cfg
