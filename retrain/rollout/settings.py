"""Settings of the rollout controller, part of the drift service deployable.

Environment prefix ``DRIFTGATE_DRIFT_`` (the controller runs inside the drift
service): ``DRIFTGATE_DRIFT_GATEWAY_URL``, ``DRIFTGATE_DRIFT_ADMIN_KEY`` and the
``DRIFTGATE_DRIFT_ROLLOUT_*`` knobs. Read only when instantiated.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from driftgate.paths import default_state_url
from retrain.rollout.judge import JudgePolicy
from retrain.rollout.machine import Policy


def _state_url() -> str:
    return os.environ.get("DRIFTGATE_STATE_URL") or default_state_url()


class RolloutSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRIFTGATE_DRIFT_", extra="ignore")

    state_url: str = Field(default_factory=_state_url)
    #: The gateway's admin API (any replica) and its key; no URL turns the controller off.
    gateway_url: str | None = None
    admin_key: SecretStr | None = None
    admin_timeout_s: float = Field(default=120.0, gt=0)

    rollout_enabled: bool = True
    rollout_interval_s: float = Field(default=1.0, gt=0)
    #: ``auto``: a passing retrain candidate starts at once; ``manual``: it waits for
    #: ``driftgate rollout start --id N``.
    rollout_approval: Literal["auto", "manual"] = "auto"
    rollout_canary_weight: float = Field(default=0.1, gt=0, lt=1)
    #: Most adapter versions loaded at once in an engine (vLLM ``--max-cpu-loras``); a
    #: rollout waits in ``candidate`` while loading one more would exceed it. 0: no limit.
    rollout_max_loaded: int = Field(default=4, ge=0)

    # judgement
    rollout_alpha: float = Field(default=0.05, gt=0, lt=1)
    rollout_min_feedback: int = Field(default=30, ge=1)
    rollout_min_requests: int = Field(default=30, ge=1)
    rollout_max_degradation: float = Field(default=0.05, ge=0, le=1)
    rollout_latency_ratio: float = Field(default=1.5, ge=1)
    rollout_latency_slack_ms: float = Field(default=50.0, ge=0)
    rollout_canary_timeout_s: float = Field(default=1800.0, gt=0)
    rollout_on_timeout: Literal["rollback", "promote"] = "rollback"

    # loading and draining
    rollout_loading_timeout_s: float = Field(default=300.0, gt=0)
    rollout_drain_timeout_s: float = Field(default=60.0, gt=0)
    rollout_drain_grace_s: float = Field(default=3.0, ge=0)
    rollout_require_heartbeats: bool = False
    #: Heartbeats older than this are ignored (a gateway that went away).
    rollout_heartbeat_fresh_s: float = Field(default=5.0, gt=0)

    def policy(self) -> Policy:
        return Policy(
            judge=JudgePolicy(
                alpha=self.rollout_alpha,
                min_feedback=self.rollout_min_feedback,
                min_requests=self.rollout_min_requests,
                max_degradation=self.rollout_max_degradation,
                latency_ratio=self.rollout_latency_ratio,
                latency_slack_ms=self.rollout_latency_slack_ms,
                timeout_s=self.rollout_canary_timeout_s,
                on_timeout=self.rollout_on_timeout,
            ),
            loading_timeout_s=self.rollout_loading_timeout_s,
            drain_timeout_s=self.rollout_drain_timeout_s,
            drain_grace_s=self.rollout_drain_grace_s,
            require_heartbeats=self.rollout_require_heartbeats,
        )
