"""Where the embedded default keeps its files (one root, overridable)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_BASE_MODEL_NAME = "SmolLM2-135M-Instruct"


def home() -> Path:
    """``$DRIFTGATE_HOME`` or ``~/.cache/driftgate``."""
    env = os.environ.get("DRIFTGATE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "driftgate"


def models_dir() -> Path:
    return home() / "models"


def default_model_dir() -> Path:
    return models_dir() / DEFAULT_BASE_MODEL_NAME


def registry_dir() -> Path:
    """Adapter registry: ``<registry>/<adapter>/<version>/`` in the PEFT layout."""
    return home() / "registry"


def default_state_url(under: Path | None = None) -> str:
    """The SQLite state store shared by the embedded services (WAL mode), in ``under``
    (default: :func:`home`)."""
    return f"sqlite:///{(under or home()) / 'state.db'}"
