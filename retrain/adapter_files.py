"""The adapter directory vLLM loads: write it, and check it is one vLLM can serve."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

from driftgate.core.lora_check import UnservableAdapter, check_lora_dir
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
    return check_servable(out_dir)


def check_servable(adapter_dir: Path, max_rank: int | None = None) -> dict[str, Any]:
    """Check vLLM can serve ``adapter_dir`` (:func:`driftgate.core.lora_check.check_lora_dir`);
    return its LoRA shape as the run records it."""
    try:
        info = check_lora_dir(adapter_dir.resolve(), max_rank=max_rank)
    except UnservableAdapter as exc:
        raise AdapterConfigError(f"{adapter_dir}: {exc.message}") from exc
    return {"rank": info.rank, "alpha": info.alpha, "target_modules": sorted(info.target_modules)}
