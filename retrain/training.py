"""Train one LoRA adapter with PEFT: completion-only loss, per-epoch validation, early stopping.

A plain torch loop (no Trainer): the base model is loaded once (:class:`LoadedBase`) and may
serve many trainings; each training wraps it with LoRA layers and removes them again at the
end, so the same object can train the next adapter or generate as the base model.

The written directory is what vLLM loads with ``--enable-lora``: ``adapter_config.json`` and
``adapter_model.safetensors``, plain LoRA (no DoRA, no ``modules_to_save``), rank within the
engine's ``--max-lora-rank``.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain.adapter_files import check_servable, save_adapter
from retrain.base_model import LoadedBase, load_base
from retrain.encoding import encode_all
from retrain.errors import AdapterConfigError, InsufficientData
from retrain.examples import ChatExample
from retrain.loss import (
    PlainView,
    ValidationScore,
    batch_loss,
    batches,
    mean_loss,
    validation_score,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: The attention projections of Llama-family models; gate/up/down may be added (see RESULTS).
DEFAULT_TARGETS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
ALL_LINEAR_TARGETS: tuple[str, ...] = (*DEFAULT_TARGETS, "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Hyperparameters of one training run (stored unchanged in the version's metadata)."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 8
    max_epochs: int = 5
    max_steps: int | None = None
    patience: int = 1
    min_delta: float = 0.0
    #: Epochs before this one are trained but never kept and never count toward
    #: ``patience`` (Keras' ``start_from_epoch``): at the start of a linear decay the
    #: learning rate is at its peak, and a small validation split that an early epoch
    #: already answers exactly cannot tell it from a later, better-fitted epoch.
    min_epochs: int = 1
    warmup_steps: int = 5
    max_grad_norm: float = 1.0
    max_length: int = 512
    seed: int = 0
    num_threads: int | None = None
    device: str | None = None
    #: Run each batch's common prompt prefix (the rendered system prompt) once instead of
    #: once per example: the same loss and gradients, fewer positions through the model.
    share_prefix: bool = True
    #: The engine's ``--max-lora-rank``; a higher rank could not be served.
    max_rank: int = 16

    def __post_init__(self) -> None:
        if not 1 <= self.rank <= self.max_rank:
            raise AdapterConfigError(
                f"LoRA rank {self.rank} outside 1..{self.max_rank} (the engine's max LoRA rank)"
            )
        if not self.target_modules:
            raise AdapterConfigError("target_modules must name at least one module")
        checks = {
            "alpha": self.alpha > 0,
            "dropout": 0.0 <= self.dropout < 1.0,
            "learning_rate": self.learning_rate > 0,
            "batch_size": self.batch_size >= 1,
            "max_epochs": self.max_epochs >= 1,
            "max_steps": self.max_steps is None or self.max_steps >= 1,
            "patience": self.patience >= 1,
            "min_epochs": 1 <= self.min_epochs <= self.max_epochs,
            "min_delta": self.min_delta >= 0,
            "warmup_steps": self.warmup_steps >= 0,
            "max_length": self.max_length >= 8,
            "num_threads": self.num_threads is None or self.num_threads >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise AdapterConfigError(f"invalid training settings: {', '.join(bad)}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d


@dataclass(frozen=True, slots=True)
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float | None
    steps: int
    seconds: float
    #: Share of validation examples answered exactly (see :class:`ValidationScore`).
    val_exact: float | None = None
    #: Of ``seconds``, the validation pass's.
    val_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Progress:
    """Reported after every optimizer step (``val_loss`` None) and after every epoch."""

    epoch: int
    step: int
    total_steps: int
    train_loss: float
    val_loss: float | None = None
    epoch_done: bool = False
    val_exact: float | None = None

    def losses(self) -> str:
        """``train_loss=0.0264 val_loss=0.1409 val_exact=0.88`` (``n/a`` without validation)."""
        val = "n/a" if self.val_loss is None else f"{self.val_loss:.4f}"
        exact = "n/a" if self.val_exact is None else f"{self.val_exact:.2f}"
        return f"train_loss={self.train_loss:.4f} val_loss={val} val_exact={exact}"


@dataclass(frozen=True, slots=True)
class TrainResult:
    adapter_dir: Path
    curve: list[EpochRecord]
    best_epoch: int
    best_val_loss: float | None
    stopped_early: bool
    steps: int
    wall_s: float
    train_examples: int
    validation_examples: int
    skipped_too_long: int
    trainable_params: int
    lora: dict[str, Any] = field(default_factory=dict)
    best_val_exact: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["adapter_dir"] = str(self.adapter_dir)
        return d


ProgressFn = Callable[[Progress], None]


def _log_progress(p: Progress) -> None:
    if p.epoch_done:
        log.info("epoch %d done: %s (step %d/%d)", p.epoch, p.losses(), p.step, p.total_steps)


def default_threads() -> int:
    """Cores not already busy (1-minute load average), at least 1.

    Measured here: on 2 shared cores under load, 2 torch threads made a training step 3-6x
    slower than 1 thread (OpenMP threads wait on each other when one is descheduled).
    """
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(cores, round(cores - busy)))


def improves(score: ValidationScore, best: ValidationScore | None, min_delta: float) -> bool:
    """Whether an epoch's validation ``score`` beats the best so far.

    The task decides first: more validation examples answered exactly wins, whatever the
    loss says. On a small split, one confidently wrong (or mislabelled) example can raise
    the mean loss of an epoch that routes more examples right; stopping on loss alone then
    keeps an under-trained epoch. At equal exact match, the loss must drop by more than
    ``min_delta``.

    >>> improves(ValidationScore(loss=0.14, exact=0.9), ValidationScore(0.09, 0.8), 0.0)
    True
    >>> improves(ValidationScore(loss=0.05, exact=0.8), ValidationScore(0.09, 0.9), 0.0)
    False
    >>> improves(ValidationScore(loss=0.08, exact=0.9), ValidationScore(0.09, 0.9), 0.02)
    False
    """
    if best is None or score.exact > best.exact:
        return True
    return score.exact == best.exact and score.loss < best.loss - min_delta


def train_lora(
    base: Path | LoadedBase,
    train: Sequence[ChatExample],
    validation: Sequence[ChatExample],
    out_dir: Path,
    config: TrainConfig | None = None,
    *,
    init_adapter_dir: Path | None = None,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train a LoRA adapter and write the best epoch's weights to ``out_dir``.

    ``base`` is a model directory (loaded here) or a :class:`LoadedBase` to reuse (left as
    it was found). ``init_adapter_dir`` starts from an existing version's weights (its LoRA
    shape then wins over ``config``'s). An empty ``validation`` disables early stopping and
    keeps the last epoch. ``out_dir`` must not exist or be empty.
    """
    cfg = config or TrainConfig()
    report = progress or _log_progress
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"output directory {out_dir} is not empty")
    loaded = base if isinstance(base, LoadedBase) else load_base(base, device=cfg.device)

    import torch

    old_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.num_threads or default_threads())
    try:
        return _train(loaded, list(train), list(validation), out_dir, cfg, init_adapter_dir, report)
    finally:
        torch.set_num_threads(old_threads)


def _train(
    loaded: LoadedBase,
    train: list[ChatExample],
    validation: list[ChatExample],
    out_dir: Path,
    cfg: TrainConfig,
    init_adapter_dir: Path | None,
    report: ProgressFn,
) -> TrainResult:
    import torch

    t0 = time.perf_counter()
    tr_enc, skip_tr = encode_all(loaded.tokenizer, train, cfg.max_length)
    va_enc, skip_va = encode_all(loaded.tokenizer, validation, cfg.max_length)
    if not tr_enc:
        raise InsufficientData(
            f"no training example fits in max_length={cfg.max_length} tokens "
            f"({len(train)} given, {skip_tr} too long)"
        )
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    model = _wrap(loaded, cfg, init_adapter_dir)
    try:
        params = [p for p in model.parameters() if p.requires_grad]
        n_trainable = sum(p.numel() for p in params)
        steps_per_epoch = math.ceil(len(tr_enc) / cfg.batch_size)
        total = steps_per_epoch * cfg.max_epochs
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)
        opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        warmup = min(cfg.warmup_steps, total // 10)  # tiny runs cannot spend steps warming up
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(warmup, total))
        curve: list[EpochRecord] = []
        best_state: dict[str, torch.Tensor] | None = None
        best_epoch, best_val, bad_epochs = 0, math.inf, 0
        best: ValidationScore | None = None
        stopped_early = False
        step = 0
        for epoch in range(1, cfg.max_epochs + 1):
            te = time.perf_counter()
            model.train()
            losses: list[float] = []
            for batch in batches(tr_enc, cfg.batch_size, rng):
                loss = batch_loss(
                    model, batch, loaded, weighted=True, share_prefix=cfg.share_prefix
                )[0]
                torch.autograd.backward(loss)
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                step += 1
                losses.append(float(loss.detach()))
                report(Progress(epoch, step, total, losses[-1]))
                if step >= total:
                    break
            train_loss = sum(losses) / len(losses)
            tv = time.perf_counter()
            val = (
                validation_score(
                    model, va_enc, loaded, cfg.batch_size, share_prefix=cfg.share_prefix
                )
                if va_enc
                else None
            )
            val_loss, val_exact = (val.loss, val.exact) if val else (None, None)
            now = time.perf_counter()
            curve.append(
                EpochRecord(epoch, train_loss, val_loss, step, now - te, val_exact, now - tv)
            )
            report(
                Progress(
                    epoch, step, total, train_loss, val_loss, epoch_done=True, val_exact=val_exact
                )
            )
            if epoch < cfg.min_epochs and step < total:
                pass  # warm-up: judged from min_epochs on
            elif val is None or improves(val, best, cfg.min_delta):
                best_epoch, best, bad_epochs = epoch, val, 0
                best_val = train_loss if val is None else val.loss
                best_state = {
                    n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad
                }
            else:
                bad_epochs += 1
                if bad_epochs >= cfg.patience:
                    stopped_early = epoch < cfg.max_epochs
                    break
            if step >= total:
                break
        if best_state is not None:
            with torch.no_grad():
                for n, p in model.named_parameters():
                    if n in best_state:
                        p.copy_(best_state[n])
        lora = save_adapter(model, out_dir)
    finally:
        _unwrap(loaded, model)
    return TrainResult(
        adapter_dir=out_dir,
        curve=curve,
        best_epoch=best_epoch,
        best_val_loss=None if not va_enc else best_val,
        best_val_exact=None if best is None else best.exact,
        stopped_early=stopped_early,
        steps=step,
        wall_s=time.perf_counter() - t0,
        train_examples=len(tr_enc),
        validation_examples=len(va_enc),
        skipped_too_long=skip_tr + skip_va,
        trainable_params=n_trainable,
        lora=lora,
    )


def evaluate_loss(
    loaded: LoadedBase,
    examples: Sequence[ChatExample],
    *,
    adapter_dir: Path | None = None,
    max_length: int = 512,
    batch_size: int = 8,
) -> float:
    """Mean completion-token loss of the base model (or base + ``adapter_dir``)."""
    from peft import PeftModel

    enc, _ = encode_all(loaded.tokenizer, list(examples), max_length)
    if not enc:
        raise InsufficientData("no example fits in max_length")
    if adapter_dir is None:  # a zero-rank view: wrap nothing, just use the plain model
        return mean_loss(PlainView(loaded.model), enc, loaded, batch_size)
    model = PeftModel.from_pretrained(loaded.model, str(adapter_dir))
    try:
        return mean_loss(model, enc, loaded, batch_size)
    finally:
        _unwrap(loaded, model)


def _lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    """Linear warm-up, then linear decay to 10% at the step cap."""

    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        span = max(1, total - warmup)
        return max(0.1, 1.0 - 0.9 * (step - warmup) / span)

    return f


def _wrap(loaded: LoadedBase, cfg: TrainConfig, init_adapter_dir: Path | None) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model

    if init_adapter_dir is not None:
        check_servable(init_adapter_dir, cfg.max_rank)
        return PeftModel.from_pretrained(loaded.model, str(init_adapter_dir), is_trainable=True)
    lcfg = LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
        use_dora=False,
    )
    try:
        return get_peft_model(loaded.model, lcfg)
    except ValueError as exc:  # e.g. a target module the model does not have
        raise AdapterConfigError(f"cannot apply LoRA to the base model: {exc}") from exc


def _unwrap(loaded: LoadedBase, model: Any) -> None:
    """Remove the LoRA layers again so ``loaded.model`` is the plain base model."""
    loaded.model = model.unload()
    loaded.model.eval()
