"""Training on a real (tiny, randomly initialised) Llama: completion-only loss, early
stopping, the written PEFT directory, reuse of the loaded base, bad inputs."""

from __future__ import annotations

import itertools
import json
import random
import shutil
import string
from pathlib import Path
from typing import Any

import pytest

from retrain.base_model import LoadedBase, load_base
from retrain.encoding import encode, render
from retrain.errors import AdapterConfigError, BaseModelError, InsufficientData
from retrain.examples import ChatExample
from retrain.loss import ValidationScore
from retrain.training import TrainConfig, evaluate_loss, improves, train_lora


def fast(**kw: Any) -> TrainConfig:
    """Small, deterministic, single-threaded settings for the tiny model."""
    opts: dict[str, Any] = {
        "num_threads": 1,
        "dropout": 0.0,
        "batch_size": 4,
        "warmup_steps": 0,
        **kw,
    }
    return TrainConfig(**opts)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> LoadedBase:
    return load_base(tiny_model_dir, device="cpu")


def examples(n: int, answer: str | None = None, seed: int = 0) -> list[ChatExample]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        target = answer or "".join(rng.choices(string.ascii_uppercase, k=6))
        out.append(ChatExample(prompt=f"ticket {i}: printer {i * 37 % 11}", completion=target))
    return out


def test_loss_only_on_completion_tokens(tiny: LoadedBase) -> None:
    ex = ChatExample(prompt="reset my vpn", completion="Q-VPN", system="Route tickets.")
    prompt, completion = render(tiny.tokenizer, ex)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert completion.startswith("Q-VPN<|im_end|>")
    enc = encode(tiny.tokenizer, ex, 512)
    assert enc is not None
    trained = tiny.tokenizer.decode(list(enc.input_ids[enc.n_prompt :]))
    assert trained.startswith("Q-VPN<|im_end|>")
    assert "reset my vpn" in tiny.tokenizer.decode(list(enc.input_ids[: enc.n_prompt]))
    assert encode(tiny.tokenizer, ex, 10) is None  # too long -> skipped, not truncated


def test_writes_servable_peft_dir_and_learns(tiny: LoadedBase, tmp_path: Path) -> None:
    train = examples(12, answer="ZEBRA")
    val = examples(4, answer="ZEBRA", seed=1)
    before = evaluate_loss(tiny, val)
    cfg = fast(learning_rate=1e-2, max_epochs=3)
    progress: list[object] = []
    res = train_lora(tiny, train, val, tmp_path / "a", cfg, progress=progress.append)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["adapter_config.json", "adapter_model.safetensors"]
    conf = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert conf["r"] == 8 and conf["peft_type"] == "LORA"
    assert not conf.get("modules_to_save") and not conf.get("use_dora")
    assert sorted(conf["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert res.lora["rank"] == 8 and res.trainable_params > 0
    assert res.steps == 9 and len(res.curve) == 3 and res.wall_s > 0
    assert len(progress) == 9 + 3
    after = evaluate_loss(tiny, val, adapter_dir=tmp_path / "a")
    assert after < before - 0.3, (before, after)  # a random 2-layer model learns slowly
    assert res.best_val_loss == pytest.approx(after, rel=1e-4)


def test_base_model_left_unchanged(tiny: LoadedBase, tmp_path: Path) -> None:
    val = examples(4, answer="ZEBRA", seed=1)
    before = evaluate_loss(tiny, val)
    cfg = fast(learning_rate=1e-2, max_epochs=1)
    train_lora(tiny, examples(8, answer="ZEBRA"), val, tmp_path / "a", cfg)
    assert evaluate_loss(tiny, val) == pytest.approx(before, rel=1e-6)
    assert not any("lora" in n for n, _ in tiny.model.named_modules())


def test_early_stopping_keeps_best_epoch(tiny: LoadedBase, tmp_path: Path) -> None:
    """Noisy labels: random targets for training, other random targets for validation.
    Fitting the noise makes validation worse: the run must stop and keep the best epoch."""
    train = examples(8, seed=1)
    val = [
        ChatExample(prompt=e.prompt, completion=c.completion)
        for e, c in zip(train[:4], examples(4, seed=2), strict=True)
    ]
    cfg = fast(learning_rate=3e-2, max_epochs=10, patience=2)
    res = train_lora(tiny, train, val, tmp_path / "a", cfg)
    vals = [r.val_loss for r in res.curve]
    assert res.stopped_early and len(res.curve) < 10
    assert all(v is not None for v in vals)
    assert {r.val_exact for r in res.curve} == {0.0}  # nothing right: the loss decides
    best = min(range(len(vals)), key=lambda i: vals[i])  # type: ignore[arg-type,return-value]
    assert res.best_epoch == best + 1
    assert len(res.curve) == res.best_epoch + 2  # patience 2
    saved = evaluate_loss(tiny, val, adapter_dir=tmp_path / "a")
    assert saved == pytest.approx(vals[best], rel=1e-4)  # best weights kept, not the last


def test_min_delta_stops_when_gains_become_small(tiny: LoadedBase, tmp_path: Path) -> None:
    """A learnable task keeps improving a little every epoch; with ``min_delta`` an epoch
    that gains less than it counts as no better, so the run stops before the cap."""
    train, val = examples(8, answer="QUEUE"), examples(4, answer="QUEUE", seed=3)
    full = train_lora(tiny, train, val, tmp_path / "full", fast(learning_rate=1e-2, max_epochs=6))
    vals = [r.val_loss or 0.0 for r in full.curve]
    assert len(full.curve) == 6 and vals == sorted(vals, reverse=True)  # always improving
    gains = [a - b for a, b in itertools.pairwise(vals)]
    delta = sorted(gains)[len(gains) // 2]  # some epochs gain more than this, some less
    res = train_lora(
        tiny, train, val, tmp_path / "d", fast(learning_rate=1e-2, max_epochs=6, min_delta=delta)
    )
    assert res.stopped_early and len(res.curve) < 6
    small = next(i for i, g in enumerate(gains) if g <= delta)  # first epoch gaining <= delta
    assert res.best_epoch == small + 1


def test_improvement_is_judged_on_the_task_first() -> None:
    best = ValidationScore(loss=0.09, exact=0.80)
    assert improves(ValidationScore(loss=0.14, exact=0.85), best, 0.0)  # more right, worse loss
    assert not improves(ValidationScore(loss=0.01, exact=0.75), best, 0.0)  # fewer right
    assert improves(ValidationScore(loss=0.08, exact=0.80), best, 0.0)
    assert not improves(ValidationScore(loss=0.08, exact=0.80), best, 0.02)  # gain < min_delta
    assert not improves(best, best, 0.0)
    assert improves(best, None, 0.0)


def test_keeps_a_higher_loss_epoch_that_answers_more_validation_examples(
    tiny: LoadedBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Epoch 2 has a higher validation loss than epoch 1 but more exact answers: it is kept,
    and epoch 3, with fewer exact answers, ends the run (patience 1). The exact-match figures
    and epoch 2's extra loss are scripted (a tiny random model cannot be made to produce
    this curve on purpose); the training and the saved weights are real."""
    import retrain.training as training

    measure = training.validation_score
    scripted_exact = iter([0.5, 0.75, 0.5])
    real_loss: list[float] = []

    def scripted(*args: Any, **kwargs: Any) -> ValidationScore:
        real_loss.append(measure(*args, **kwargs).loss)
        penalty = 1.0 if len(real_loss) == 2 else 0.0
        return ValidationScore(loss=real_loss[-1] + penalty, exact=next(scripted_exact))

    monkeypatch.setattr(training, "validation_score", scripted)
    train, val = examples(8, answer="ZEBRA"), examples(4, answer="ZEBRA", seed=1)
    res = train_lora(tiny, train, val, tmp_path / "a", fast(learning_rate=1e-2, max_epochs=6))
    losses = [r.val_loss or 0.0 for r in res.curve]
    assert [r.val_exact for r in res.curve] == [0.5, 0.75, 0.5]
    assert losses[1] > losses[0]
    assert res.best_epoch == 2 and res.stopped_early and res.best_val_exact == 0.75
    saved = evaluate_loss(tiny, val, adapter_dir=tmp_path / "a")
    assert saved == pytest.approx(real_loss[1], rel=1e-4)  # epoch 2's weights, not the last


def test_epochs_before_min_epochs_are_never_kept(
    tiny: LoadedBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Epoch 1 scores best and nothing after it beats it, as when a small validation split
    is answered exactly at once: with ``min_epochs=3`` the run goes on, keeps the best of
    epochs 3 on and stops ``patience`` epochs after that. Without it, epoch 1 is kept. The
    scores are scripted (the tiny random model cannot be made to produce this curve); the
    training and the saved weights are real."""
    import retrain.training as training

    measure = training.validation_score

    def run(min_epochs: int, out: Path) -> tuple[Any, list[float]]:
        real_loss: list[float] = []
        losses = iter([0.1, 0.5, 0.6, 0.2, 0.3, 0.3])  # epoch 1 lowest, then epoch 4

        def scripted(*args: Any, **kwargs: Any) -> ValidationScore:
            real_loss.append(measure(*args, **kwargs).loss)
            return ValidationScore(loss=next(losses), exact=1.0)

        monkeypatch.setattr(training, "validation_score", scripted)
        train, val = examples(8, answer="ZEBRA"), examples(4, answer="ZEBRA", seed=1)
        cfg = fast(learning_rate=1e-2, max_epochs=6, patience=2, min_epochs=min_epochs)
        return train_lora(tiny, train, val, out, cfg), real_loss

    plain, _ = run(1, tmp_path / "plain")
    assert plain.best_epoch == 1 and len(plain.curve) == 3 and plain.stopped_early
    warm, real_loss = run(3, tmp_path / "warm")
    assert warm.best_epoch == 4 and len(warm.curve) == 6
    val = examples(4, answer="ZEBRA", seed=1)
    saved = evaluate_loss(tiny, val, adapter_dir=tmp_path / "warm")
    assert saved == pytest.approx(real_loss[3], rel=1e-4)  # epoch 4's weights, not the last
    with pytest.raises(AdapterConfigError, match="min_epochs"):
        TrainConfig(max_epochs=2, min_epochs=3)


def test_starts_from_existing_adapter(tiny: LoadedBase, tmp_path: Path) -> None:
    train, val = examples(8, answer="ZEBRA"), examples(4, answer="ZEBRA", seed=1)
    cfg = fast(learning_rate=1e-2, max_epochs=2, rank=4)
    train_lora(tiny, train, val, tmp_path / "v1", cfg)
    v1 = evaluate_loss(tiny, val, adapter_dir=tmp_path / "v1")
    still = fast(learning_rate=1e-9, max_epochs=1)
    res = train_lora(tiny, train, val, tmp_path / "v2", still, init_adapter_dir=tmp_path / "v1")
    assert res.lora["rank"] == 4  # the parent's shape wins
    assert evaluate_loss(tiny, val, adapter_dir=tmp_path / "v2") == pytest.approx(v1, rel=1e-3)


def test_bad_inputs(tiny: LoadedBase, tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(AdapterConfigError, match="rank 64"):
        TrainConfig(rank=64)
    with pytest.raises(AdapterConfigError, match="patience"):
        TrainConfig(patience=0)
    with pytest.raises(AdapterConfigError, match="cannot apply LoRA"):
        train_lora(
            tiny,
            examples(4),
            [],
            tmp_path / "x",
            fast(target_modules=("no_such_proj",)),
        )
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("x")
    with pytest.raises(FileExistsError):
        train_lora(tiny, examples(4), [], tmp_path / "busy")
    with pytest.raises(InsufficientData, match="max_length"):
        train_lora(tiny, examples(4), [], tmp_path / "y", fast(max_length=8))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_corrupt_or_missing_base_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BaseModelError, match="does not exist"):
        load_base(tmp_path / "nope")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(BaseModelError, match="cannot load base model"):
        load_base(broken)
    (broken / "config.json").unlink()
    with pytest.raises(BaseModelError, match=r"no config\.json"):
        train_lora(broken, examples(4), [], tmp_path / "z")
