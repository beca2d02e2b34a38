"""Settings of the drift service (environment prefix ``DRIFTGATE_DRIFT_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from driftgate.core.paths import home
from driftgate.core.settings import AdminKeySetting, IngestKeySetting, StateUrlSetting

TextPolicy = Literal["keep", "hash", "drop"]
TriggerMode = Literal["subprocess", "kubernetes", "off"]


def _log_dir() -> Path:
    return home() / "logs"


class DriftSettings(StateUrlSetting, AdminKeySetting, IngestKeySetting):
    """Everything the drift service reads from its environment.

    Shared: the state URL; the ingest key its write routes (request events, feedback)
    require; the admin key its operator routes (drift status, reference pins) require.
    """

    model_config = SettingsConfigDict(
        env_prefix="DRIFTGATE_DRIFT_", extra="ignore", populate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = 8090
    #: SQLite ``synchronous`` pragma (the store runs in WAL mode). FULL (the default) makes
    #: every acknowledged commit survive power loss. NORMAL survives a crash of the process
    #: but the last commits before a power loss or OS crash may roll back; it saves little
    #: CPU (see benchmarks/drift/RESULTS.md), so keep FULL unless fsync latency matters.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "FULL"
    #: CPython's young-generation GC threshold once the service is up (0: leave the default,
    #: 700). A higher one saves CPU per ingested event; see driftgate/core/gc_tuning.py.
    gc_gen0_threshold: int = Field(default=10_000, ge=0)
    #: Largest request body accepted on ``/v1/events`` (bytes).
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)

    # --- privacy and retention --------------------------------------------------------
    #: What is stored of prompt and completion text: the text, its SHA-256, or nothing.
    text_policy: TextPolicy = "keep"
    #: Per-adapter override of ``text_policy`` (JSON object in the environment).
    text_policy_by_adapter: dict[str, TextPolicy] = Field(default_factory=dict)
    #: Request events and feedback older than this are deleted (0 keeps everything).
    retention_days: float = Field(default=30.0, ge=0)
    retention_interval_s: float = Field(default=3600.0, gt=0)

    # --- detection ---------------------------------------------------------------------
    #: First N values of each signal after a version goes live form its reference window.
    reference_size: int = Field(default=1000, ge=20)
    #: Size of the current window compared with the reference.
    window_size: int = Field(default=500, ge=20)
    #: Run the periodic windowed tests (KS, chi-square, PSI) every this many values.
    test_every: int = Field(default=500, ge=1)
    #: Two-sided CUSUM on standardized numeric signals: slack ``k`` and threshold ``h``.
    cusum_k: float = Field(default=0.5, gt=0)
    cusum_h: float = Field(default=11.0, gt=0)
    #: ADWIN on standardized numeric signals (River), reported as a second streaming detector.
    adwin_delta: float = Field(default=0.002, gt=0, lt=1)
    #: Bernoulli CUSUM on rates: detects the rate growing by ``rate_ratio`` times.
    rate_ratio: float = Field(default=2.0, gt=1)
    rate_h: float = Field(default=11.5, gt=0)
    #: Confirmation of a numeric streaming alarm by a KS test at this level ...
    confirm_alpha: float = Field(default=0.01, gt=0, lt=1)
    #: ... within this many values after the alarm, else the alarm is dismissed.
    confirm_patience: int = Field(default=200, ge=1)

    # --- embeddings --------------------------------------------------------------------
    embeddings: bool = False
    embedding_batch: int = Field(default=64, ge=1)
    embedding_queue: int = Field(default=4096, ge=1)
    #: Level of the embedding two-sample test (MMD, permutation p-value) run on each block
    #: of ``window_size`` prompts against the reference; a rejection confirms
    #: ``prompt_embedding`` drift. About ``alpha / window_size`` false alarms per request.
    embedding_alpha: float = Field(default=1e-3, gt=0, lt=1)
    #: Permutations per test: the smallest p-value is ``1 / (1 + permutations)``, so it
    #: must be at most ``embedding_alpha`` (checked at start-up).
    embedding_permutations: int = Field(default=1999, ge=1)
    #: Each sample of the test is drawn down to this many prompts (the cost is quadratic).
    embedding_test_sample: int = Field(default=200, ge=10)

    # --- review queue -------------------------------------------------------------------
    #: Labels a confirmed drift may cost: when a version's drift is confirmed, its review
    #: queue is filled (in the background) up to this many items in all, picked from its
    #: recent unlabelled routed requests: spread over the new region of the prompt
    #: embeddings when ``embeddings`` is on, else newest first; near-duplicates skipped.
    #: 0 turns the queue off.
    review_budget: int = Field(default=40, ge=0)
    #: The budget is spent in rounds of at most this many items: a fill tops the version's
    #: open items up to a round on each confirmed alarm, and a new round is queued once every
    #: open item is answered, until the budget is spent. A later round picks among the newest
    #: requests and spreads away from the earlier picks, so the labels keep covering the drift.
    review_round: int = Field(default=10, ge=1)

    # --- retrain trigger ----------------------------------------------------------------
    trigger_mode: TriggerMode = "subprocess"
    trigger_cooldown_s: float = Field(default=3600.0, ge=0)
    #: Signals whose confirmed drift starts a retrain. Latency and time to first token are
    #: alerted on (metrics, status) but a new adapter cannot fix them, so they do not retrain.
    #: The answer-confidence signals (``mean_logprob``, ``first_token_margin``) are watched
    #: and may be listed here; they are not by default.
    trigger_signals: list[str] = Field(
        default_factory=lambda: [
            "feedback_score", "negative_feedback", "empty_output", "refusal",
            "finish_length", "finish_reason", "completion_tokens", "prompt_tokens",
            "prompt_embedding",
        ]
    )  # fmt: skip
    #: Command prefix of the retrain job; ``run --adapter NAME --reason R`` is appended.
    #: Empty means ``[sys.executable, "-m", "retrain"]``.
    trigger_command: list[str] = Field(default_factory=list)
    trigger_log_dir: Path = Field(default_factory=_log_dir)
    #: Subprocess mode: stop a running retrain when the service stops (the embedded
    #: stack stops every process it started). False leaves it running to finish.
    trigger_stop_on_shutdown: bool = True
    k8s_api_url: str = "https://kubernetes.default.svc"
    k8s_namespace: str = "default"
    k8s_job_template: Path | None = None
    k8s_token_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    k8s_ca_file: Path | None = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")

    @model_validator(mode="after")
    def _embedding_test_can_reject(self) -> DriftSettings:
        if (1 + self.embedding_permutations) * self.embedding_alpha < 1:
            raise ValueError(
                f"embedding_permutations={self.embedding_permutations} cannot reach a p-value "
                f"of embedding_alpha={self.embedding_alpha}: the smallest is "
                "1 / (1 + permutations)"
            )
        return self

    @model_validator(mode="after")
    def _review_round_fits_the_budget(self) -> DriftSettings:
        if self.review_budget > 0 and self.review_round > self.review_budget:
            raise ValueError(
                f"review_round={self.review_round} exceeds review_budget={self.review_budget}"
            )
        return self

    def text_policy_for(self, adapter: str | None) -> TextPolicy:
        if adapter is not None and adapter in self.text_policy_by_adapter:
            return self.text_policy_by_adapter[adapter]
        return self.text_policy
