"""The gateway's settings (environment prefix ``DRIFTGATE_GATEWAY_``).

The shared facts (state URL, admin key, drift service URL, the ingest key it presents
to the drift service, vLLM's API key) come from :mod:`driftgate.core.settings`:
``drift_url`` unset turns request events off (feedback answers 503); ``admin_key``
unset makes ``/admin`` answer 401.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from driftgate.core.paths import DEFAULT_BASE_MODEL_NAME
from driftgate.core.settings import (
    AdapterRootsSetting,
    AdminKeySetting,
    DriftUrlSetting,
    EngineApiKeySetting,
    IngestKeySetting,
    StateUrlSetting,
)


class GatewaySettings(
    StateUrlSetting,
    AdminKeySetting,
    DriftUrlSetting,
    AdapterRootsSetting,
    IngestKeySetting,
    EngineApiKeySetting,
):
    model_config = SettingsConfigDict(
        env_prefix="DRIFTGATE_GATEWAY_", extra="ignore", populate_by_name=True
    )

    #: vLLM base URLs (JSON list in the environment).
    upstreams: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8000"])
    #: Served name of the base model in vLLM (``--served-model-name``).
    base_model: str = DEFAULT_BASE_MODEL_NAME

    # timeouts (seconds)
    connect_timeout_s: float = Field(default=2.0, gt=0)
    #: Longest wait for the next byte from vLLM (first byte included).
    read_timeout_s: float = Field(default=120.0, gt=0)
    #: Longest non-streaming request end to end.
    request_timeout_s: float = Field(default=300.0, gt=0)
    health_timeout_s: float = Field(default=2.0, gt=0)
    admin_timeout_s: float = Field(default=60.0, gt=0)
    feedback_timeout_s: float = Field(default=5.0, gt=0)
    event_timeout_s: float = Field(default=5.0, gt=0)

    # replicas and retries
    health_interval_s: float = Field(default=2.0, gt=0)
    #: Attempts per request over distinct replicas (connect errors, 5xx before the first byte).
    max_attempts: int = Field(default=3, ge=1)
    #: Inference requests this gateway holds at the engines at once (one connection each;
    #: a stream holds its own until it ends). Health polls and LoRA loads do not count.
    upstream_connections: int = Field(default=512, ge=1)
    #: How long a request over ``upstream_connections`` waits for a free one before it is
    #: refused with 503 ``gateway_saturated`` and ``Retry-After`` (``gateway/admission.py``).
    upstream_queue_timeout_s: float = Field(default=5.0, gt=0)

    # control plane
    state_refresh_s: float = Field(default=1.0, gt=0)
    #: How often this gateway writes its heartbeat row (``gateway/heartbeat.py``); 0 = off.
    heartbeat_interval_s: float = Field(default=1.0, ge=0)
    max_lora_rank: int = Field(default=16, ge=1)
    #: Other names the base model may carry in ``base_model_name_or_path``.
    base_model_aliases: list[str] = Field(default_factory=list)
    #: A version still ``loading`` after this long (its gateway died mid-load) is marked
    #: ``failed`` and unloaded by any gateway; above ``admin_timeout_s``, the longest load.
    loading_timeout_s: float = Field(default=600.0, gt=0)
    #: How long unloading a version waits for this gateway's in-flight requests on it.
    drain_timeout_s: float = Field(default=30.0, ge=0)

    # per-tenant limits (gateway/limits.py, gateway/redis_limits.py)
    #: Redis holding the tenants' limits for every replica (``redis://host:6379/0``); unset:
    #: each replica limits on its own (in memory), so N replicas admit N times the limits.
    limits_redis_url: SecretStr | None = None
    #: Key prefix in that Redis (several deployments may share one).
    limits_redis_prefix: str = Field(default="driftgate:limits", min_length=1)
    #: Connect and read timeout of a limits call: a slow Redis must not hold a request.
    limits_redis_timeout_s: float = Field(default=0.1, gt=0)
    #: After a failed limits call, decide on this replica's limits alone this long before
    #: trying Redis again (fail open; ``driftgate_gateway_limiter_errors_total``).
    limits_redis_retry_s: float = Field(default=1.0, gt=0)

    # events
    event_queue_size: int = Field(default=10_000, ge=1)
    event_batch_size: int = Field(default=256, ge=1, le=1000)
    event_flush_interval_s: float = Field(default=0.5, gt=0)
    #: Put prompt and completion text into request events.
    event_include_text: bool = True
    #: Ask vLLM for the logprobs of chat answers (hidden from clients that did not ask) and
    #: put the answer's confidence into request events (``gateway/answer_confidence.py``).
    answer_confidence: bool = True

    # requests (checked before auth; docs/SECURITY.md)
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    #: Signs request ids to the tenant they were issued to (``gateway/request_ids.py``), so
    #: feedback is taken only on the caller's own requests. Every replica needs the same
    #: one (at least 16 bytes); unset: a random one per process (logged as a warning).
    request_id_secret: SecretStr | None = None
    #: Body limit of ``/admin/*`` (its bodies are small JSON).
    admin_max_body_bytes: int = Field(default=65_536, ge=1024)
    #: Most choices per prompt a request may ask for (``n``).
    max_n: int = Field(default=8, ge=1)
    #: Most candidates per prompt a request may ask for (``best_of``).
    max_best_of: int = Field(default=8, ge=1)
    #: Most prompts in one ``/v1/completions`` request (``prompt`` as a list).
    max_prompts: int = Field(default=16, ge=1)
    #: Most tokens one request may generate in all: max_tokens x max(n, best_of) x prompts.
    max_request_tokens: int = Field(default=16_384, ge=1)

    @field_validator("upstreams")
    @classmethod
    def _strip(cls, v: list[str]) -> list[str]:
        urls = [u.rstrip("/") for u in v]
        if len(set(urls)) != len(urls):
            raise ValueError("duplicate upstream URL")
        return urls

    @field_validator("request_id_secret")
    @classmethod
    def _long_enough(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value().encode()) < 16:
            raise ValueError("request_id_secret must be at least 16 bytes")
        return v

    @field_validator("drift_url")
    @classmethod
    def _strip_drift(cls, v: str | None) -> str | None:
        return v.rstrip("/") if v else None
