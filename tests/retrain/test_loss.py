"""Validation scores on the real base model: teacher-forced exact match is the greedy
answer (the number early stopping ranks epochs by)."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrain.base_model import LoadedBase, load_base
from retrain.encoding import encode_all
from retrain.examples import ChatExample
from retrain.local_generate import greedy_answers
from retrain.loss import PlainView, ValidationScore, mean_loss, validation_score

#: Questions the instruct model answers in a few words, well within ``max_new_tokens``.
QUESTIONS = (
    "Is the sky blue? Yes or no.",
    "Capital of France?",
    "2+2 in words?",
    "Is water wet? Yes or no.",
)


@pytest.fixture(scope="module")
def base(base_model_dir: Path) -> LoadedBase:
    return load_base(base_model_dir, device="cpu")


def score(base: LoadedBase, examples: list[ChatExample]) -> ValidationScore:
    encoded, skipped = encode_all(base.tokenizer, examples, 512)
    assert skipped == 0
    return validation_score(PlainView(base.model), encoded, base, 8)


def test_exact_match_counts_the_examples_whose_greedy_answer_is_the_target(
    base: LoadedBase,
) -> None:
    asked = [ChatExample(prompt=q, completion="-", system="Answer briefly.") for q in QUESTIONS]
    answers = [a.strip() for a in greedy_answers(base, asked, max_new_tokens=48)]
    assert all(answers), answers
    own = [
        ChatExample(prompt=e.prompt, completion=a, system=e.system)
        for e, a in zip(asked, answers, strict=True)
    ]
    other = [
        ChatExample(prompt=e.prompt, completion=f"{a} Maybe.", system=e.system)
        for e, a in zip(asked, answers, strict=True)
    ]
    assert score(base, own).exact == 1.0, answers
    assert score(base, other).exact == 0.0
    mixed = score(base, own[:1] + other[1:])
    assert mixed.exact == 0.25
    # The model's own answers are the likelier targets.
    assert score(base, own).loss < mixed.loss < score(base, other).loss


def test_mean_loss_is_the_validation_loss(base: LoadedBase) -> None:
    data = [ChatExample(prompt=q, completion="Yes.", system="Answer briefly.") for q in QUESTIONS]
    encoded, _ = encode_all(base.tokenizer, data, 512)
    model = PlainView(base.model)
    assert mean_loss(model, encoded, base, 3) == pytest.approx(score(base, data).loss, rel=1e-5)
