"""The adapter directory vLLM loads: write it, and check a config is one it can serve."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path
from typing import Any

from retrain.errors import AdapterConfigError, OutOfDisk


def save_adapter(model: Any, out_dir: Path) -> dict[str, Any]:
    from safetensors import SafetensorError

    created = not out_dir.exists()
    try:
        model.save_pretrained(str(out_dir), safe_serialization=True)
    except (OSError, SafetensorError) as exc:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        # safetensors reports ENOSPC as its own error type, with the OS message inside.
        full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (
            "no space left" in str(exc).lower() or "os error 28" in str(exc)
        )
        if full:
            raise OutOfDisk(f"out of disk space writing adapter to {out_dir}") from exc
        raise
    readme = out_dir / "README.md"  # PEFT's model card template: noise in the registry
    if readme.is_file():
        readme.unlink()
    return check_servable(out_dir / "adapter_config.json")


def check_servable(config_path: Path, max_rank: int | None = None) -> dict[str, Any]:
    """Check an ``adapter_config.json`` is one vLLM can load; return its LoRA shape."""
    try:
        conf = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise AdapterConfigError(f"unreadable adapter config {config_path}: {exc}") from exc
    if conf.get("peft_type") != "LORA":
        raise AdapterConfigError(f"{config_path}: not a LoRA adapter ({conf.get('peft_type')})")
    if conf.get("use_dora"):
        raise AdapterConfigError(f"{config_path}: DoRA adapters cannot be served")
    if conf.get("modules_to_save"):
        raise AdapterConfigError(f"{config_path}: modules_to_save cannot be served")
    rank = int(conf.get("r", 0))
    if max_rank is not None and rank > max_rank:
        raise AdapterConfigError(f"{config_path}: rank {rank} above the engine's {max_rank}")
    targets = conf.get("target_modules") or []
    return {
        "rank": rank,
        "alpha": conf.get("lora_alpha"),
        "target_modules": sorted(targets) if isinstance(targets, list) else targets,
    }
