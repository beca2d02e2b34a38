"""Task metrics: exact match, label accuracy, JSON schema, callable; ROUGE-L."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from retrain.metrics_task import (
    MetricSpec,
    build_metric,
    exact_match,
    extract_label,
    json_schema_valid,
    label_accuracy,
    load_callable,
    mean_score,
    rouge_l,
)


def starts_with_q(prediction: str, reference: str) -> bool:
    """A callable metric used by the tests (by dotted path)."""
    return prediction.startswith("Q-")


def out_of_range(prediction: str, reference: str) -> float:
    return 2.0


def test_exact_match_normalises_space_and_case() -> None:
    assert exact_match("  Q-VPN \n", "q-vpn") == 1.0
    assert exact_match("Q-VPN", "q-vpn", ignore_case=False) == 0.0
    assert exact_match("Q-VPN.", "Q-VPN") == 0.0


def test_label_accuracy_finds_first_known_label() -> None:
    labels = ["billing", "tech", "tech-urgent"]
    assert label_accuracy("Queue: Billing.", "billing", labels=labels) == 1.0
    assert label_accuracy("It is tech-urgent, not billing", "tech-urgent", labels=labels) == 1.0
    assert extract_label("tech or billing", labels) == "tech"
    assert label_accuracy("technician", "tech", labels=labels) == 0.0  # whole words only
    assert label_accuracy('"billing"', "billing") == 1.0  # no label list: normalised text


def test_json_schema_validity() -> None:
    schema = {"type": "object", "required": ["queue"], "properties": {"queue": {"type": "string"}}}
    assert json_schema_valid('{"queue": "Q-A"}', "", schema=schema) == 1.0
    assert json_schema_valid('```json\n{"queue": "Q-A"}\n```', "", schema=schema) == 1.0
    assert json_schema_valid('{"queue": 3}', "", schema=schema) == 0.0
    assert json_schema_valid("not json", "", schema=schema) == 0.0
    assert (
        json_schema_valid(
            '{"queue": "Q-A"}', '{"queue": "Q-B"}', schema=schema, match_reference=True
        )
        == 0.0
    )


def test_build_metric_each_kind() -> None:
    assert build_metric(MetricSpec(kind="exact_match"))("A", "a") == 1.0
    lab = build_metric(MetricSpec(kind="label_accuracy", labels=("x", "y")))
    assert lab("answer: y", "y") == 1.0
    js = build_metric(
        MetricSpec.model_validate({"kind": "json_schema", "schema": {"type": "array"}})
    )
    assert js("[1]", "") == 1.0 and js("{}", "") == 0.0
    fn = build_metric(MetricSpec(kind="callable", path=f"{__name__}:starts_with_q"))
    assert fn("Q-A", "") == 1.0 and fn("A", "") == 0.0


def test_bad_specs_are_clear_errors() -> None:
    with pytest.raises(ValidationError, match="needs a schema"):
        MetricSpec(kind="json_schema")
    with pytest.raises(ValidationError, match="dotted path"):
        MetricSpec(kind="callable")
    with pytest.raises(ValueError, match="invalid JSON schema"):
        build_metric(MetricSpec.model_validate({"kind": "json_schema", "schema": {"type": "nope"}}))
    with pytest.raises(ValueError, match="cannot import"):
        load_callable("no_such_module_xyz:f")
    with pytest.raises(ValueError, match="not 'module:function'"):
        load_callable("justaname")
    with pytest.raises(ValueError, match="outside"):
        load_callable(f"{__name__}.out_of_range")("a", "b")


def test_rouge_l_reported_values() -> None:
    assert rouge_l("a b c", "a b c") == 1.0
    assert rouge_l("x y", "a b") == 0.0
    assert rouge_l("", "") == 1.0
    assert 0 < rouge_l("the queue is billing", "billing") < 1


def test_mean_score() -> None:
    assert mean_score(lambda p, r: float(p == r), ["a", "b"], ["a", "c"]) == 0.5
    assert mean_score(lambda p, r: 1.0, [], []) == 0.0
    with pytest.raises(ValueError):
        mean_score(lambda p, r: 1.0, ["a"], [])
