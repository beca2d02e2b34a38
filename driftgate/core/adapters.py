"""Adapter naming: the hot-swap contract between clients, the gateway and vLLM.

Clients send a logical adapter (``support``) or a pinned version
(``support@3``). Every version is served in vLLM under its own LoRA name
(``support--v3``) that is never reused, because vLLM's same-name reload keeps
stale prefix-cache entries and its unload does not free the slot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Always used with fullmatch: ``re.match`` with ``$`` also accepts a trailing newline.
_LOGICAL = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LORA = re.compile(r"(?P<adapter>[a-z][a-z0-9_-]{0,62})--v(?P<version>[1-9][0-9]{0,8})")
_PINNED = re.compile(r"(?P<adapter>[a-z][a-z0-9_-]{0,62})@(?P<version>[1-9][0-9]{0,8})")


class AdapterNameError(ValueError):
    """A string is not a valid logical adapter, pinned version or LoRA name."""


@dataclass(frozen=True, slots=True)
class ModelRef:
    """What a client's ``model`` field asks for (base model when adapter is None)."""

    adapter: str | None
    version: int | None = None

    @property
    def is_base(self) -> bool:
        return self.adapter is None


#: Label value used in metrics (adapter and version) for requests to the base model;
#: reserved, so no adapter may take it.
BASE_LABEL = "base"


def is_valid_adapter_name(name: str) -> bool:
    return bool(_LOGICAL.fullmatch(name)) and "--" not in name and name != BASE_LABEL


def lora_name(adapter: str, version: int) -> str:
    """The vLLM LoRA name of one adapter version: ``support--v3``."""
    if not is_valid_adapter_name(adapter):
        raise AdapterNameError(f"invalid adapter name {adapter!r}")
    if version < 1:
        raise AdapterNameError(f"invalid version {version}")
    return f"{adapter}--v{version}"


def parse_lora_name(name: str) -> tuple[str, int] | None:
    """Inverse of :func:`lora_name`; ``None`` for names we did not create."""
    m = _LORA.fullmatch(name)
    if m is None:
        return None
    return m["adapter"], int(m["version"])


def parse_model(model: str, base_model: str) -> ModelRef:
    """Parse a client's ``model`` field.

    >>> parse_model("support@3", "smollm2")
    ModelRef(adapter='support', version=3)
    >>> parse_model("smollm2", "smollm2").is_base
    True
    """
    if model == base_model:
        return ModelRef(adapter=None)
    m = _PINNED.fullmatch(model)
    if m is not None and "--" not in m["adapter"]:
        return ModelRef(adapter=m["adapter"], version=int(m["version"]))
    if is_valid_adapter_name(model):
        return ModelRef(adapter=model)
    raise AdapterNameError(f"invalid model name {model!r}")
