"""Completion-only loss over batches of encoded examples (training and validation).

Runs the decoder, then the LM head only on positions that predict completion tokens: the
49k-wide head on prompt positions would be wasted work.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retrain.base_model import LoadedBase
from retrain.encoding import EncodedExample
from retrain.shared_prefix import shared_prefix_hidden, shared_prefix_len

if TYPE_CHECKING:
    import torch


def batches(
    data: list[EncodedExample], batch_size: int, rng: random.Random
) -> list[list[EncodedExample]]:
    """Shuffle, sort by length within chunks (less padding), shuffle the batches."""
    order = list(range(len(data)))
    rng.shuffle(order)
    chunk = batch_size * 16
    out: list[list[EncodedExample]] = []
    for i in range(0, len(order), chunk):
        part = sorted(order[i : i + chunk], key=lambda j: len(data[j].input_ids))
        out.extend(
            [data[j] for j in part[k : k + batch_size]] for k in range(0, len(part), batch_size)
        )
    rng.shuffle(out)
    return out


def _completion_logits(
    model: Any, batch: list[EncodedExample], loaded: LoadedBase, share_prefix: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits, target ids, example row, completion-token mask) of a batch, only at the
    positions that predict completion tokens. With ``share_prefix`` the batch's common
    prefix runs once (:mod:`retrain.shared_prefix`); positions then count from its end."""
    import torch

    dev = loaded.device
    causal_lm = model.get_base_model()
    prefix = shared_prefix_len(batch) if share_prefix and len(batch) > 1 else 0
    if prefix:
        hidden, ids = shared_prefix_hidden(causal_lm, batch, prefix, loaded.pad_token_id, dev)
    else:
        width = max(len(e.input_ids) for e in batch)
        ids = torch.full((len(batch), width), loaded.pad_token_id, dtype=torch.long)
        attn = torch.zeros((len(batch), width), dtype=torch.long)
        for i, e in enumerate(batch):
            ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids, dtype=torch.long)
            attn[i, : len(e.input_ids)] = 1
        ids, attn = ids.to(dev), attn.to(dev)
        hidden = causal_lm.get_decoder()(input_ids=ids, attention_mask=attn, use_cache=False)[0]
    target = torch.zeros(ids.shape, dtype=torch.bool)
    for i, e in enumerate(batch):
        target[i, e.n_prompt - prefix : len(e.input_ids) - prefix] = True
    target = target.to(dev)
    sel = target[:, 1:]  # position t predicts token t+1
    logits = causal_lm.get_output_embeddings()(hidden[:, :-1][sel])
    rows = torch.arange(len(batch), device=dev).unsqueeze(1).expand_as(sel)[sel]
    return logits, ids[:, 1:][sel], rows, sel


def batch_loss(
    model: Any,
    batch: list[EncodedExample],
    loaded: LoadedBase,
    *,
    weighted: bool,
    share_prefix: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(weighted mean of per-example completion losses, summed token loss, token count)."""
    import torch
    import torch.nn.functional as F

    logits, targets, rows, sel = _completion_logits(model, batch, loaded, share_prefix)
    dev = logits.device
    tok_loss = F.cross_entropy(logits.float(), targets, reduction="none")
    per_ex = torch.zeros(len(batch), device=dev).index_add_(0, rows, tok_loss)
    per_ex = per_ex / sel.sum(dim=1).clamp(min=1)
    if weighted:
        w = torch.tensor([e.weight for e in batch], device=dev)
        loss = (per_ex * w).sum() / w.sum()
    else:
        loss = per_ex.mean()
    return loss, tok_loss.sum().detach(), int(sel.sum())


@dataclass(frozen=True, slots=True)
class ValidationScore:
    """How a model does on the validation split.

    ``exact`` is the task-level number: the share of examples whose every completion token
    (end-of-turn included) is the model's top choice given the target tokens before it, that
    is, whose greedy answer is the target. ``loss`` is the mean loss per completion token;
    it ranks models with equal ``exact``.
    """

    loss: float
    exact: float


def validation_score(
    model: Any,
    data: list[EncodedExample],
    loaded: LoadedBase,
    bs: int,
    *,
    share_prefix: bool = False,
) -> ValidationScore:
    """Loss and teacher-forced exact match over ``data`` (unweighted), in one pass."""
    import torch
    import torch.nn.functional as F

    model.eval()
    total, count, exact = 0.0, 0, 0
    ordered = sorted(data, key=lambda e: len(e.input_ids))
    with torch.no_grad():
        for i in range(0, len(ordered), bs):
            batch = ordered[i : i + bs]
            logits, targets, rows, sel = _completion_logits(model, batch, loaded, share_prefix)
            total += float(F.cross_entropy(logits.float(), targets, reduction="sum"))
            count += int(sel.sum())
            missed = (logits.argmax(dim=-1) != targets).float()
            misses = torch.zeros(len(batch), device=logits.device).index_add_(0, rows, missed)
            exact += int((misses == 0).sum())
    return ValidationScore(loss=total / max(1, count), exact=exact / max(1, len(data)))


def mean_loss(model: Any, data: list[EncodedExample], loaded: LoadedBase, bs: int) -> float:
    """Mean loss per completion token over the validation split (unweighted)."""
    return validation_score(model, data, loaded, bs).loss


class PlainView:
    """Lets :func:`batch_loss` run on an unwrapped model (``get_base_model``)."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def get_base_model(self) -> Any:
        return self._model

    def eval(self) -> None:
        self._model.eval()
