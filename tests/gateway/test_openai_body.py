"""The limits on what multiplies one request's work (``gateway.openai_body``)."""

from __future__ import annotations

from typing import Any

import pytest

from driftgate.core.errors import InvalidRequest, UnprocessableBody
from gateway.openai_body import apply_max_tokens, apply_multiplier_limits, check_fields

LIMITS = {"max_n": 8, "max_best_of": 8, "max_prompts": 16, "max_total": 16_384}


def _checked(payload: dict[str, Any], cap: int = 1024) -> dict[str, Any]:
    check_fields(payload, "completions" if "prompt" in payload else "chat")
    apply_max_tokens(payload, cap)
    apply_multiplier_limits(payload, **LIMITS)
    return payload


def _chat(**kw: Any) -> dict[str, Any]:
    return {"model": "support", "messages": [{"role": "user", "content": "hi"}], **kw}


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        (_chat(n=50), "n"),
        (_chat(n=9), "n"),
        (_chat(best_of=9, n=1), "best_of"),
        ({"model": "m", "prompt": ["p"] * 17}, "prompt"),
        ({"model": "m", "prompt": [[1, 2]] * 17}, "prompt"),
        (_chat(min_tokens=65, max_tokens=64), "min_tokens"),
        (_chat(min_tokens=4097), "min_tokens"),  # above the key's cap, set as max_tokens
        (_chat(n=8, max_tokens=4096), "max_tokens"),  # 8 x 4096 > 16384 (cap 4096 below)
        ({"model": "m", "prompt": ["p"] * 16, "max_tokens": 1025, "n": 1}, "max_tokens"),
        (_chat(best_of=8, n=2), "max_tokens"),  # the key's cap (set) x 8 candidates
    ],
)
def test_refusals_name_the_field(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        _checked(payload, cap=4096)
    assert e.value.status_code == 400 and e.value.param == param
    assert e.value.code == "request_limit_exceeded"
    assert e.value.body()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("payload", "cap"),
    [
        (_chat(n=8, max_tokens=2048), 4096),  # exactly the budget
        (_chat(n=1, best_of=1), 4096),
        (_chat(min_tokens=1024), 1024),  # equal to the cap, set as max_tokens
        ({"model": "m", "prompt": ["p"] * 16}, 1024),  # 16 x 1024 = 16384
        ({"model": "m", "prompt": [1, 2, 3], "n": 8}, 2048),  # one prompt of token ids
    ],
)
def test_within_the_limits(payload: dict[str, Any], cap: int) -> None:
    _checked(payload, cap)


def test_one_completion_of_one_prompt_is_bounded_by_the_key_cap_alone() -> None:
    payload = _checked(_chat(), cap=100_000)
    assert payload["max_tokens"] == 100_000


@pytest.mark.parametrize(
    ("field", "value"), [("n", 0), ("n", "8"), ("best_of", 1.5), ("min_tokens", -1)]
)
def test_wrong_types_are_422(field: str, value: Any) -> None:
    with pytest.raises(UnprocessableBody) as e:
        check_fields(_chat(**{field: value}), "chat")
    assert e.value.param == field
