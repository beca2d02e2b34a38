"""The ingest hot path: batch parsing, store rows and signal columns (pure functions)."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
from pydantic import ValidationError

from drift.batch import parse_batch, request_rows, signal_columns, version_key
from drift.features import is_empty, is_refusal, request_features, sha256
from driftgate.core.events import EventBatch, RequestEvent
from driftgate.core.state.schema.drift import REQUEST_COLUMNS, requests


def mixed_events(make: Callable[..., RequestEvent]) -> list[RequestEvent]:
    """Every kind of event the columns treat differently, in interleaved order."""
    return [
        make(latency_ms=120.0, ttft_ms=30.0),
        make(adapter=None, version=None, latency_ms=80.0),  # base model, no ttft
        make(completion_text="I'm sorry, but I can't help with that.", finish_reason="length"),
        make(status_code=502, latency_ms=5.0),  # failed: no signals
        make(completion_text="   ", completion_tokens=0, finish_reason=None),
        make(version=2, latency_ms=300.0, ttft_ms=45.0),
        make(latency_ms=130.0, ttft_ms=33.0, prompt_tokens=40),
        make(mean_logprob=-0.4, first_token_margin=2.5),  # answer confidence measured
        make(mean_logprob=-1.2),  # no margin (the client asked for one alternative)
        make(status_code=500, mean_logprob=-0.1, first_token_margin=1.0),  # failed
    ]


def test_signal_columns_equal_the_per_event_signals(
    request_factory: Callable[..., RequestEvent],
) -> None:
    events = mixed_events(request_factory)
    _, keys, empties, refusals = request_rows(events, lambda _a: "keep")
    assert keys == [version_key(e) for e in events]
    expected: dict[tuple[str, int], dict[str, list[float | str]]] = {}
    for e in events:
        for name, value in request_features(e).signals():
            expected.setdefault(version_key(e), {}).setdefault(name, []).append(value)
    got = signal_columns(events, keys, empties, refusals)
    assert got == expected
    assert got[("support", 1)]["refusal"] == [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert got[("support", 1)]["empty_output"] == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    assert got[("base", 0)]["latency_ms"] == [80.0] and "ttft_ms" not in got[("base", 0)]
    assert got[("support", 1)]["mean_logprob"] == [-0.4, -1.2]
    assert got[("support", 1)]["first_token_margin"] == [2.5]
    assert "mean_logprob" not in got[("base", 0)]


def test_inlined_flags_equal_the_feature_functions(
    request_factory: Callable[..., RequestEvent],
) -> None:
    texts = [None, "", "  ", "I cannot do that.", "Sure: I can't wait!", "ok", "As an AI model"]
    events = [
        request_factory(completion_text=t, completion_tokens=n) for t in texts for n in (0, 3)
    ]
    _, _, empties, refusals = request_rows(events, lambda _a: "keep")
    assert empties == [is_empty(e) for e in events]
    assert refusals == [is_refusal(e.completion_text) for e in events]
    assert any(empties) and any(refusals) and not all(refusals)


def test_rows_hold_every_stored_column_in_table_order(
    request_factory: Callable[..., RequestEvent],
) -> None:
    assert tuple(c.name for c in requests.columns if c.name != "id") == REQUEST_COLUMNS
    e = request_factory(
        ttft_ms=12.5,
        replica="r1",
        stream=True,
        pinned=True,
        mean_logprob=-0.25,
        first_token_margin=1.5,
    )
    rows, _, empties, refusals = request_rows([e], lambda _a: "keep")
    row = dict(zip(REQUEST_COLUMNS, rows[0], strict=True))
    for name in REQUEST_COLUMNS:
        if hasattr(e, name):
            assert row[name] == getattr(e, name), name
    assert row["prompt_sha256"] is None and row["empty"] == 0 and row["refusal"] == 0
    assert (empties, refusals) == ([False], [False])


def test_rows_follow_the_privacy_policy_per_adapter(
    request_factory: Callable[..., RequestEvent],
) -> None:
    kept = request_factory(adapter="support")
    hashed = request_factory(adapter="hr")
    dropped = request_factory(adapter="legal")
    policy = {"support": "keep", "hr": "hash", "legal": "drop"}
    rows = request_rows([kept, hashed, dropped], lambda a: policy[a or ""]).rows  # type: ignore[arg-type,return-value]
    texts = [dict(zip(REQUEST_COLUMNS, r, strict=True)) for r in rows]
    pick = ("prompt_text", "completion_text", "prompt_sha256", "completion_sha256")
    assert [tuple(t[k] for k in pick) for t in texts] == [
        (kept.prompt_text, kept.completion_text, None, None),
        (None, None, sha256(hashed.prompt_text), sha256(hashed.completion_text)),
        (None, None, None, None),
    ]
    assert all(t["prompt_tokens"] == 12 for t in texts)  # features kept whatever the policy


def test_parse_batch_accepts_what_lax_validation_accepts(
    request_factory: Callable[..., RequestEvent],
) -> None:
    batch = EventBatch(events=[request_factory(), request_factory(adapter=None, version=None)])
    body = batch.model_dump_json().encode()
    assert parse_batch(body) == EventBatch.model_validate_json(body)
    # coercible input the shared model accepts in lax mode is still accepted, coerced
    doc = orjson.loads(body)
    doc["events"][0]["prompt_tokens"] = "12"
    doc["events"][0]["stream"] = 1
    parsed = parse_batch(orjson.dumps(doc))
    assert parsed.events[0].prompt_tokens == 12 and parsed.events[0].stream is True


def test_parse_batch_rejects_with_the_lax_error(
    request_factory: Callable[..., RequestEvent],
) -> None:
    doc = orjson.loads(EventBatch(events=[request_factory()]).model_dump_json())
    doc["events"][0]["prompt_tokens"] = -1
    with pytest.raises(ValidationError) as exc:
        parse_batch(orjson.dumps(doc))
    assert exc.value.errors()[0]["loc"] == ("events", 0, "prompt_tokens")
    with pytest.raises(ValidationError) as exc:
        parse_batch(b"{not json")
    assert exc.value.errors()[0]["type"] == "json_invalid"
