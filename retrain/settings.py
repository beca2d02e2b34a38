"""Settings of the retrain job (``DRIFTGATE_RETRAIN_`` environment prefix)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from driftgate.core import paths
from driftgate.core.settings import EngineApiKeySetting, StateUrlSetting


class RetrainSettings(StateUrlSetting, EngineApiKeySetting):
    """The retrain job's settings; the state URL and vLLM's API key are shared."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTGATE_RETRAIN_", extra="ignore", populate_by_name=True
    )

    registry_dir: Path = Field(default_factory=paths.registry_dir)
    base_model_dir: Path = Field(default_factory=paths.default_model_dir)
    #: vLLM replica used for the evaluation gate, and the base model's served name there.
    engine_url: str = "http://127.0.0.1:8000"
    served_model_name: str = paths.DEFAULT_BASE_MODEL_NAME
    eval_max_tokens: int = Field(default=64, ge=1)
    eval_concurrency: int = Field(default=8, ge=1)
    eval_timeout_s: float = Field(default=120.0, gt=0)
    #: Start from the serving version's weights (True) or fresh LoRA weights.
    init_from_serving: bool = True
    device: str | None = None
    rank: int = Field(default=8, ge=1)
    max_rank: int = Field(default=16, ge=1)
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    learning_rate: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=8, ge=1)
    max_epochs: int = Field(default=5, ge=1)
    patience: int = Field(default=1, ge=1)
    #: Epochs trained before early stopping judges any (see ``TrainConfig.min_epochs``).
    min_epochs: int = Field(default=1, ge=1)
    #: A validation loss must improve by more than this to count as better (early stopping).
    min_delta: float = Field(default=0.0, ge=0)
    seed: int = 0
    #: Run each training batch's common prompt prefix once (same loss, less compute).
    share_prefix: bool = True
    #: Usable (approved or corrected) examples wanted from the drifted window before
    #: training; the job waits for them up to ``data_wait_s``. 0: train on what is there.
    min_drift_examples: int = Field(default=0, ge=0)
    data_wait_s: float = Field(default=600.0, ge=0)
    #: Runs per trigger: after the gate rejects a candidate the job trains again, once
    #: ``retry_new_examples`` more usable drifted examples arrived (``retrain.attempts``).
    max_attempts: int = Field(default=2, ge=1)
    retry_new_examples: int = Field(default=100, ge=1)
    min_train: int = Field(default=16, ge=1)
    min_validation: int = Field(default=4, ge=1)
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)
    max_examples: int | None = Field(default=1000, ge=1)
    #: Anchors against forgetting: unrated requests that the serving version answered
    #: before the drift began with a mean token logprob of at least
    #: ``anchor_min_logprob`` train with its own answer as the target, at most
    #: ``anchor_ratio`` per example from feedback or review (train split only). 0: none.
    anchor_ratio: float = Field(default=1.0, ge=0)
    anchor_min_logprob: float = Field(default=-0.05, le=0)
    #: Anchors come from before the drift's start less this margin: drift is confirmed some
    #: time after it began, and the serving version's confident answers on drifted traffic
    #: are where it is confidently wrong. Set it to at least the detection delay.
    anchor_margin_s: float = Field(default=300.0, ge=0)
    #: Most of a training set one tenant may supply, when two or more tenants are opted
    #: in to train the adapter (with one, the owner chose that tenant alone).
    max_tenant_share: float = Field(default=0.5, gt=0, le=1)
    #: Promote without a golden set (evidence independent of traffic and feedback). Off:
    #: an adapter without one is not trained. On: logged at WARNING and recorded in the
    #: version's metadata; use it only with ``approval=manual`` or a trusted feedback source.
    allow_no_golden: bool = False
    #: What a passing candidate does: start its rollout at once, or wait for approval.
    approval: Literal["auto", "manual"] = "auto"
    canary_weight: float = Field(default=0.1, gt=0, lt=1)
