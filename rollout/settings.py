"""Settings of the rollout controller and API, part of the drift service deployable.

Environment prefix ``DRIFTGATE_ROLLOUT_``; the shared facts (state URL, admin key, the
gateway's URL: none turns the controller off) come from
:mod:`driftgate.core.settings`. Read only when instantiated.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from driftgate.core.settings import (
    AdapterRootsSetting,
    AdminKeySetting,
    GatewayUrlSetting,
    StateUrlSetting,
)
from rollout.judge import MIN_Z_SAMPLE, JudgePolicy
from rollout.machine import Policy


class RolloutSettings(StateUrlSetting, AdminKeySetting, GatewayUrlSetting, AdapterRootsSetting):
    model_config = SettingsConfigDict(
        env_prefix="DRIFTGATE_ROLLOUT_", extra="ignore", populate_by_name=True
    )

    admin_timeout_s: float = Field(default=120.0, gt=0)
    #: Body limit of ``POST /v1/rollouts*``, checked before the admin key.
    max_body_bytes: int = Field(default=65_536, ge=1024)

    enabled: bool = True
    interval_s: float = Field(default=1.0, gt=0)
    #: A rollout started through the API without ``approved``: ``auto`` starts it at once,
    #: ``manual`` waits for ``driftgate rollout start --id N``.
    approval: Literal["auto", "manual"] = "auto"
    canary_weight: float = Field(default=0.1, gt=0, lt=1)
    #: Most adapter versions loaded at once in an engine (vLLM ``--max-cpu-loras``); a
    #: rollout waits in ``candidate`` while loading one more would exceed it. 0: no limit.
    max_loaded: int = Field(default=4, ge=0)

    # judgement
    alpha: float = Field(default=0.05, gt=0, lt=1)
    min_feedback: int = Field(default=30, ge=1)
    min_requests: int = Field(default=30, ge=1)
    max_degradation: float = Field(default=0.05, ge=0, le=1)
    latency_ratio: float = Field(default=1.5, ge=1)
    latency_slack_ms: float = Field(default=50.0, ge=0)
    canary_timeout_s: float = Field(default=1800.0, gt=0)
    on_timeout: Literal["rollback", "promote"] = "rollback"
    #: Most of a version's counted canary votes one tenant may supply (its excess is left
    #: out). Below 1, a single tenant's votes alone count for nothing: set 1.0 only where
    #: one tenant is all the traffic (the demo).
    max_tenant_vote_share: float = Field(default=0.5, gt=0, le=1)
    #: Answer confidence (mean token logprob, no label needed) in the judgement: roll back
    #: a candidate significantly less confident by more than ``confidence_max_drop``, and
    #: where feedback is below ``min_feedback`` promote on confidence once both versions
    #: have this many successful answers with one (and the feedback there is does not say
    #: worse). 0, the default, judges on feedback alone: confidence is a proxy that an
    #: adapter can game by being confidently wrong, so trusting it is an operator's choice.
    confidence_min_requests: int = Field(default=0, ge=0)
    #: Nats of mean token logprob the candidate may lose against the serving version.
    confidence_max_drop: float = Field(default=0.1, ge=0, le=10)

    # loading and draining
    loading_timeout_s: float = Field(default=300.0, gt=0)
    drain_timeout_s: float = Field(default=60.0, gt=0)
    drain_grace_s: float = Field(default=3.0, ge=0)
    require_heartbeats: bool = False
    #: Heartbeats older than this are ignored (a gateway that went away).
    heartbeat_fresh_s: float = Field(default=5.0, gt=0)

    @field_validator("confidence_min_requests")
    @classmethod
    def _off_or_enough(cls, v: int) -> int:
        if 0 < v < MIN_Z_SAMPLE:
            raise ValueError(f"confidence_min_requests must be 0 (off) or >= {MIN_Z_SAMPLE}")
        return v

    def policy(self) -> Policy:
        return Policy(
            judge=JudgePolicy(
                alpha=self.alpha,
                min_feedback=self.min_feedback,
                min_requests=self.min_requests,
                max_degradation=self.max_degradation,
                latency_ratio=self.latency_ratio,
                latency_slack_ms=self.latency_slack_ms,
                timeout_s=self.canary_timeout_s,
                on_timeout=self.on_timeout,
                max_tenant_vote_share=self.max_tenant_vote_share,
                confidence_min_requests=self.confidence_min_requests,
                confidence_max_drop=self.confidence_max_drop,
            ),
            loading_timeout_s=self.loading_timeout_s,
            drain_timeout_s=self.drain_timeout_s,
            drain_grace_s=self.drain_grace_s,
            require_heartbeats=self.require_heartbeats,
        )
