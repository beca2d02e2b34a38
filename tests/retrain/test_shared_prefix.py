"""Running a batch's common prompt prefix once gives the padded batch's loss, gradients and
validation score (a real, tiny Llama with LoRA on every attention projection)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driftgate.core.events import RecordedMessage
from retrain.base_model import LoadedBase, load_base
from retrain.encoding import EncodedExample, encode_all
from retrain.examples import ChatExample
from retrain.loss import batch_loss, validation_score
from retrain.shared_prefix import shared_prefix_len

SYSTEM = "Route the support ticket to its queue. Reply with the queue code only."


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> LoadedBase:
    return load_base(tiny_model_dir, device="cpu")


@pytest.fixture
def lora(tiny: LoadedBase) -> Iterator[Any]:
    """LoRA with random A and B (B=0 at the usual init would give A no gradient)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    cfg = LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(tiny.model, cfg)
    model.train()
    yield model
    tiny.model = model.unload()
    tiny.model.eval()


def tickets(tiny: LoadedBase) -> list[EncodedExample]:
    """Single tickets and follow-ups of different lengths, weighted unequally."""
    earlier = (
        RecordedMessage(role="user", content="Where is my parcel?"),
        RecordedMessage(role="assistant", content="Q-SHP"),
    )
    examples = [
        ChatExample(prompt="Why is my invoice so high?", completion="Q-BIL", system=SYSTEM),
        ChatExample(
            prompt="Help, my Nova smart speaker is not working. Order 12345.",
            completion="Q-NOVA",
            system=SYSTEM,
            weight=2.0,
        ),
        ChatExample(
            prompt="Following up on that: locked out.",
            completion="Q-ACC",
            system=SYSTEM,
            history=earlier,
        ),
        ChatExample(prompt="A refund?", completion="Q-RET", system=SYSTEM, weight=0.5),
    ]
    encoded, skipped = encode_all(tiny.tokenizer, examples, 512)
    assert skipped == 0
    return encoded


def loss_and_grads(model: Any, tiny: LoadedBase, share: bool) -> tuple[float, int, list[Any]]:
    model.zero_grad()
    loss, _, tokens = batch_loss(model, tickets(tiny), tiny, weighted=True, share_prefix=share)
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    return float(loss.detach()), tokens, grads


def test_the_batch_shares_the_system_prompt_and_nothing_of_the_tickets(tiny: LoadedBase) -> None:
    batch = tickets(tiny)
    prefix = shared_prefix_len(batch)
    common = tiny.tokenizer.decode(list(batch[0].input_ids[:prefix]))
    assert SYSTEM in common
    assert "invoice" not in common and "Nova" not in common
    assert prefix < min(e.n_prompt for e in batch)


def test_shared_prefix_gives_the_padded_batch_loss_and_gradients(
    lora: Any, tiny: LoadedBase
) -> None:
    import torch

    padded_loss, padded_tokens, padded_grads = loss_and_grads(lora, tiny, share=False)
    shared_loss, shared_tokens, shared_grads = loss_and_grads(lora, tiny, share=True)
    assert shared_tokens == padded_tokens == sum(e.n_completion for e in tickets(tiny))
    assert shared_loss == pytest.approx(padded_loss, rel=1e-5)
    assert len(shared_grads) == len(padded_grads) > 0
    assert any(float(g.abs().sum()) > 0 for g in padded_grads)
    for s, p in zip(shared_grads, padded_grads, strict=True):
        torch.testing.assert_close(s, p, rtol=1e-4, atol=1e-6)


def test_shared_prefix_gives_the_padded_validation_score(lora: Any, tiny: LoadedBase) -> None:
    batch = tickets(tiny)
    padded = validation_score(lora, batch, tiny, 3, share_prefix=False)
    shared = validation_score(lora, batch, tiny, 3, share_prefix=True)
    assert shared.exact == padded.exact
    assert shared.loss == pytest.approx(padded.loss, rel=1e-5)


def test_a_batch_sharing_only_the_template_start_gives_the_padded_loss(
    lora: Any, tiny: LoadedBase
) -> None:
    other = ChatExample(prompt="Why is my invoice so high?", completion="Q-BIL")  # default system
    batch = [*tickets(tiny)[:2], *encode_all(tiny.tokenizer, [other], 512)[0]]
    assert shared_prefix_len(batch) > 0  # "<|im_start|>system\n" at least
    padded = batch_loss(lora, batch, tiny, weighted=False, share_prefix=False)[0]
    shared = batch_loss(lora, batch, tiny, weighted=False, share_prefix=True)[0]
    assert float(shared) == pytest.approx(float(padded), rel=1e-5)


def test_training_with_a_shared_prefix_writes_the_padded_runs_weights(
    tiny: LoadedBase, tmp_path: Path
) -> None:
    """Two epochs of the whole loop (shuffled batches, AdamW, validation), dropout off."""
    import torch
    from safetensors.torch import load_file

    from retrain.training import TrainConfig, train_lora

    examples = [
        ChatExample(prompt=f"Ticket {i}: printer {i * 37 % 11}", completion="Q-BIL", system=SYSTEM)
        for i in range(10)
    ]
    curves, weights = [], []
    for share in (False, True):
        cfg = TrainConfig(
            num_threads=1,
            dropout=0.0,
            batch_size=4,
            warmup_steps=0,
            learning_rate=1e-2,
            max_epochs=2,
            share_prefix=share,
        )
        out = tmp_path / f"share-{share}"
        res = train_lora(tiny, examples[:8], examples[8:], out, cfg)
        curves.append([loss for r in res.curve for loss in (r.train_loss, r.val_loss)])
        weights.append(load_file(str(out / "adapter_model.safetensors")))
    assert len(curves[0]) == 4  # two epochs
    assert curves[1] == pytest.approx(curves[0], rel=1e-4)
    assert weights[0].keys() == weights[1].keys()
    for name, padded in weights[0].items():
        torch.testing.assert_close(weights[1][name], padded, rtol=1e-3, atol=1e-5)
