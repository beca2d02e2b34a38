"""Settings of the demo scenario (``DRIFTGATE_DEMO_``); ``quick`` shrinks it for CI."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DemoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRIFTGATE_DEMO_", extra="ignore")

    seed: int = 7
    #: The logical adapter the demo's ticket router is served as.
    adapter: str = "support"
    #: Tickets adapter v1 is trained on (original distribution), a sixth held for validation.
    v1_examples: int = 160
    #: Held-out tickets to score the base model and v1 before traffic starts.
    eval_tickets: int = 40
    stable_requests: int = 160
    #: Requests per round of shifted traffic while waiting for drift, retrain and rollout.
    shift_round: int = 40
    #: Longest wait for the loop (drift confirmed -> retrain -> gate -> promotion).
    loop_timeout_s: float = 1200.0
    recovered_requests: int = 120
    concurrency: int = 8
    shift_share: float = Field(default=0.4, gt=0, lt=1)
    feedback_share: float = Field(default=0.8, ge=0, le=1)
    feedback_noise: float = Field(default=0.03, ge=0, lt=0.5)
    correction_share: float = Field(default=0.8, ge=0, le=1)
    results_dir: Path = Path("results")
    engine_port: int = 8000
    gateway_port: int = 8080
    drift_port: int = 8090

    def quick(self) -> DemoSettings:
        """A shortened scenario (fewer requests) for the end-to-end test in CI."""
        return self.model_copy(
            update={
                "eval_tickets": 16,
                "stable_requests": 80,
                "shift_round": 32,
                "recovered_requests": 48,
            }
        )
