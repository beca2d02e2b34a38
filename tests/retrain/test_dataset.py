"""Curation rules over plain records (no store, no model)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest

from driftgate.core.events import FeedbackEvent, RecordedMessage, RequestEvent, ServedRequest
from retrain.dataset import (
    CurationConfig,
    TrafficRecord,
    curate,
    dataset_hash,
)
from retrain.errors import InsufficientData
from retrain.examples import ChatExample

TOPICS = [
    "printer",
    "invoice",
    "password",
    "vpn",
    "laptop battery",
    "email quota",
    "calendar",
    "monitor flicker",
    "keyboard",
    "refund",
    "shipping delay",
    "account lock",
    "license key",
    "wifi drop",
    "disk full",
    "slow boot",
    "phone sync",
    "badge access",
    "desk booking",
    "expense report",
    "payroll",
    "holiday request",
    "parking",
    "coffee machine",
    "mouse",
    "headset",
    "webcam",
    "scanner",
    "projector",
    "docking station",
]


def rec(
    i: int,
    prompt: str | None = None,
    completion: str = "ok",
    *,
    ts: float | None = None,
    fb: list[dict[str, object]] | None = None,
    tenant: str = "t",
    **kw: object,
) -> TrafficRecord:
    rid = f"r{i}"
    feedback = tuple(
        FeedbackEvent(request_id=rid, tenant=tenant, ts=1000.0 + i + j, **f)  # type: ignore[arg-type]
        for j, f in enumerate(fb if fb is not None else [{"score": 1.0}])
    )
    return TrafficRecord(
        request_id=rid,
        ts=ts if ts is not None else 1000.0 + i,
        prompt_text=prompt if prompt is not None else f"Help me with my {TOPICS[i % 30]} #{i}",
        completion_text=completion,
        tenant=tenant,
        feedback=feedback,
        **kw,  # type: ignore[arg-type]
    )


def distinct(n: int, **kw: Any) -> list[TrafficRecord]:
    """n records with clearly different prompts (no near duplicates among them)."""
    return [
        rec(i, prompt=f"Question {i}: {TOPICS[i % 30]} issue number {i * 7919}", **kw)
        for i in range(n)
    ]


SMALL = CurationConfig(min_train=2, min_validation=1)


def all_examples(ds: object) -> list[ChatExample]:
    return [*ds.train, *ds.validation]  # type: ignore[attr-defined]


def test_feedback_rules_and_counts() -> None:
    records = [
        rec(0, "Where is my invoice for March?", "Check billing.", fb=[{"score": 1.0}]),
        rec(1, "Reset my VPN token please", "No.", fb=[{"score": 0.0, "correction": "Q-VPN"}]),
        rec(2, "The printer on floor 3 jams", "Bad", fb=[{"score": 0.1}]),  # negative, no fix
        rec(3, "Laptop battery swells", "x", fb=[]),  # unrated
        rec(4, "Projector has no signal", "Q-AV", fb=[{"label": "Q-AV"}]),
        rec(5, "My badge stopped working", "Q-SEC", fb=[{"score": 0.9}], status_code=500),
        rec(
            6,
            "Calendar invites vanish",
            "Q-CAL and more",
            fb=[{"score": 0.8}],
            finish_reason="length",
        ),
        rec(
            7, "Mouse double clicks on its own", "Q-HW", fb=[{"score": 0.8}], endpoint="completions"
        ),
    ]
    ds = curate(records, SMALL)
    targets = {e.prompt: e.completion for e in all_examples(ds)}
    assert targets == {
        "Where is my invoice for March?": "Check billing.",
        "Reset my VPN token please": "Q-VPN",
        "Projector has no signal": "Q-AV",
    }
    s = ds.stats
    assert s["total"] == 8
    assert s["kept_positive"] == 1 and s["kept_correction"] == 1 and s["kept_label"] == 1
    assert s["excluded_negative_no_correction"] == 1
    assert s["excluded_unrated"] == 1
    assert s["excluded_failed"] == 1
    assert s["excluded_truncated"] == 1
    assert s["excluded_not_chat"] == 1


def test_latest_feedback_wins() -> None:
    r = rec(
        0,
        "Where is my parcel?",
        "Q-SHIP",
        fb=[{"score": 1.0}, {"score": 0.0, "correction": "Q-LOG"}],
    )
    ds = curate([r, *distinct(6)], SMALL)
    assert {e.completion for e in all_examples(ds) if e.prompt == "Where is my parcel?"} == {
        "Q-LOG"
    }


def test_label_only_excluded_when_label_is_not_the_target() -> None:
    cfg = CurationConfig(min_train=2, min_validation=1, label_is_target=False)
    ds = curate([rec(0, "Projector broken", "Q-AV", fb=[{"label": "Q-AV"}]), *distinct(5)], cfg)
    assert ds.stats["excluded_label_only"] == 1
    assert all(e.prompt != "Projector broken" for e in all_examples(ds))


def test_unrated_included_when_configured() -> None:
    cfg = CurationConfig(min_train=2, min_validation=1, include_unrated=True)
    ds = curate(distinct(6, fb=[]), cfg)
    assert ds.stats["kept_unrated"] == 6


def test_exact_and_near_duplicates_removed_newest_kept() -> None:
    records = [
        rec(0, "My printer will not connect to the office wifi network", "old", ts=10.0),
        rec(1, "The printer will NOT connect to the office wi-fi network!", "near", ts=30.0),
        rec(2, "My printer will not connect to the office wifi network", "newest", ts=50.0),
        rec(3, "How do I reset my password for the payroll portal?", "pw", ts=20.0),
        *distinct(6),
    ]
    ds = curate(records, SMALL)
    printer = [e for e in all_examples(ds) if "office wi" in e.prompt.lower()]
    assert [e.completion for e in printer] == ["newest"]
    assert ds.stats["duplicates_exact"] == 1
    assert ds.stats["duplicates_near"] == 1
    assert any(e.completion == "pw" for e in all_examples(ds))


def test_different_system_prompts_are_not_duplicates() -> None:
    def chat(system: str, user: str) -> str:
        return json.dumps(
            [{"role": "system", "content": system}, {"role": "user", "content": user}]
        )

    records = [
        rec(0, chat("You route tickets.", "Printer jammed"), "Q-HW"),
        rec(1, chat("You summarise tickets.", "Printer jammed"), "A printer jam."),
        *distinct(5),
    ]
    ds = curate(records, SMALL)
    systems = {e.system for e in all_examples(ds) if e.prompt == "Printer jammed"}
    assert systems == {"You route tickets.", "You summarise tickets."}


def test_logged_multi_turn_prompt_becomes_an_example_with_its_history() -> None:
    multi = json.dumps(
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "route this"},
        ]
    )
    ds = curate([rec(0, multi, "Q-X"), *distinct(5)], SMALL)
    (ex,) = [e for e in all_examples(ds) if e.prompt == "route this"]
    assert ex.messages(with_completion=True) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "route this"},
        {"role": "assistant", "content": "Q-X"},
    ]


def test_length_and_format_filters() -> None:
    cfg = CurationConfig(
        min_train=2,
        min_validation=1,
        max_prompt_chars=60,
        max_target_chars=12,
        target_pattern=r"Q-[A-Z]+",
    )
    records = [
        rec(0, "x" * 61, "Q-A"),
        rec(1, "Short enough prompt", "Q-TOOLONGTARGET"),
        rec(2, "Another fine prompt", "not a queue"),
        rec(3, "Broken \ufffd text", "Q-A"),
        *[rec(10 + i, f"Fine prompt {TOPICS[i]} {i * 104729}", "Q-OK") for i in range(5)],
    ]
    ds = curate(records, cfg)
    assert ds.stats["excluded_too_long"] == 2  # long prompt, long target
    assert ds.stats["excluded_format"] == 2  # pattern mismatch, replacement char
    assert ds.size == 5


def test_golden_prompts_never_trained_on() -> None:
    golden = [
        ChatExample(prompt="My printer will not connect to the office wifi", completion="Q-HW")
    ]
    records = [
        rec(0, "my printer will not connect to the office wifi!!", "Q-HW"),
        rec(1, "My printer will not connect to the office wifi", "Q-HW"),
        *distinct(6),
    ]
    ds = curate(records, SMALL, golden=golden)
    assert ds.stats["excluded_golden_overlap"] == 2
    assert all("printer will not connect" not in e.prompt.lower() for e in all_examples(ds))


def test_recency_weights_favour_drift_window() -> None:
    day = 86400.0
    cfg = CurationConfig(
        min_train=2, min_validation=1, window_weight=2.0, half_life_s=day, min_weight=0.1
    )
    drift_start = 100 * day
    records = [
        rec(0, "Inside the drifted window question", ts=drift_start + 5),
        rec(1, "One day before the window question", ts=drift_start - day),
        rec(2, "Ten days before the window question", ts=drift_start - 10 * day),
        *distinct(4, ts=drift_start + 10),
    ]
    ds = curate(records, cfg, drift_start=drift_start)
    w = {e.prompt: e.weight for e in all_examples(ds)}
    assert w["Inside the drifted window question"] == 2.0
    assert w["One day before the window question"] == pytest.approx(0.5)
    assert w["Ten days before the window question"] == 0.1  # floored


def test_split_is_deterministic_and_order_independent() -> None:
    records = distinct(60)
    a = curate(records, CurationConfig())
    b = curate(list(reversed(records)), CurationConfig())
    assert [e.prompt for e in a.validation] == [e.prompt for e in b.validation]
    assert a.dataset_hash == b.dataset_hash
    assert 4 <= len(a.validation) <= 25
    assert not {e.prompt for e in a.train} & {e.prompt for e in a.validation}
    c = curate(records, CurationConfig(split_salt="other"))
    assert {e.prompt for e in c.validation} != {e.prompt for e in a.validation}


def test_min_validation_enforced() -> None:
    ds = curate(
        distinct(21), CurationConfig(validation_fraction=0.01, min_validation=4, min_train=16)
    )
    assert len(ds.validation) == 4 and len(ds.train) == 17


def test_too_little_data_is_a_clear_error() -> None:
    records = [*distinct(5), rec(99, "Printer on fire", "x", fb=[{"score": 0.0}])]
    with pytest.raises(InsufficientData) as err:
        curate(records, CurationConfig())
    msg = str(err.value)
    assert "too little usable data" in msg
    assert "excluded_negative_no_correction=1" in msg
    assert err.value.outcome == "insufficient_data"


def test_empty_store_is_insufficient_data() -> None:
    with pytest.raises(InsufficientData):
        curate([], CurationConfig())


def test_from_events_keeps_only_own_feedback() -> None:
    req = RequestEvent(
        request_id="a1",
        tenant="t",
        adapter="support",
        version=1,
        prompt_text="p",
        completion_text="c",
    )
    mine = FeedbackEvent(request_id="a1", tenant="t", score=1.0)
    other = FeedbackEvent(request_id="b2", tenant="t", score=0.0)
    # Another tenant's feedback under the same request id is not feedback on this request.
    foreign = FeedbackEvent(request_id="a1", tenant="mallory", score=0.0, correction="x")
    r = TrafficRecord.from_events(req, [mine, other, foreign])
    assert r.feedback == (mine,)
    assert r.prompt_text == "p" and r.endpoint == "chat" and r.tenant == "t"


def test_dataset_hash_changes_with_content() -> None:
    a = [ChatExample(prompt="p", completion="c")]
    b = [ChatExample(prompt="p", completion="d")]
    assert dataset_hash(a, []) != dataset_hash(b, [])
    assert dataset_hash(a, []) != dataset_hash([], a)
    assert dataset_hash(a, []) == dataset_hash(list(a), [])


def test_default_system_fills_prompts_logged_without_one() -> None:
    cfg = CurationConfig(min_train=2, min_validation=1, default_system="Route the ticket.")
    chat = json.dumps([{"role": "system", "content": "Own."}, {"role": "user", "content": "Mine"}])
    ds = curate([rec(0, chat, "Q-A"), *distinct(5)], cfg)
    systems = {e.prompt: e.system for e in all_examples(ds)}
    assert systems["Mine"] == "Own."
    assert {s for p, s in systems.items() if p != "Mine"} == {"Route the ticket."}


def test_scarce_corrections_reach_the_validation_split() -> None:
    """The gate must see corrected examples: with 40 approved answers and 3 corrections,
    the serving version would otherwise look perfect on a validation split of its own
    approved answers."""
    approved = distinct(40)
    corrected = [
        rec(
            100 + i,
            prompt=f"Nova hub {TOPICS[i]} fault {i * 104729}",
            completion="Q-BIL",
            fb=[{"score": 0.0, "correction": "Q-NOVA"}],
            ts=5000.0 + i,
        )
        for i in range(3)
    ]
    ds = curate([*approved, *corrected], CurationConfig(), drift_start=4000.0)
    assert any(ex.completion == "Q-NOVA" for ex in ds.validation)
    assert any(ex.completion == "Q-NOVA" for ex in ds.train)
    again = curate([*reversed(corrected), *approved], CurationConfig(), drift_start=4000.0)
    assert [e.prompt for e in again.validation] == [e.prompt for e in ds.validation]


def _tenant_records(tenant: str, n: int, start: int, ts0: float) -> list[TrafficRecord]:
    return [
        rec(
            start + i,
            prompt=f"{tenant} question {i}: {TOPICS[i % 30]} issue {(start + i) * 7919}",
            ts=ts0 + i,
            tenant=tenant,
        )
        for i in range(n)
    ]


def test_only_opted_in_tenants_are_curated() -> None:
    records = [*_tenant_records("acme", 6, 0, 1000.0), *_tenant_records("globex", 9, 100, 2000.0)]
    ds = curate(records, SMALL, tenants=["acme"])
    assert ds.tenants == {"acme": 6}
    assert ds.stats["excluded_tenant_not_opted_in"] == 9 and ds.stats["total"] == 15
    with pytest.raises(InsufficientData, match="excluded_tenant_not_opted_in=15"):
        curate(records, SMALL, tenants=[])


def test_every_example_keeps_its_tenant_and_request_id() -> None:
    records = [*_tenant_records("acme", 4, 0, 1000.0), *_tenant_records("globex", 4, 100, 2000.0)]
    ds = curate(records, SMALL, tenants=["acme", "globex"])
    by_id = {r.request_id: r.tenant for r in records}
    examples = all_examples(ds)
    assert len(examples) == 8
    assert all(e.request_id is not None and by_id[e.request_id] == e.tenant for e in examples)


def test_share_cap_drops_the_oldest_of_a_tenant_over_its_share() -> None:
    records = [*_tenant_records("acme", 12, 0, 1000.0), *_tenant_records("globex", 4, 100, 500.0)]
    ds = curate(records, SMALL, tenants=["acme", "globex"])
    assert ds.tenants == {"acme": 4, "globex": 4}
    assert ds.stats["excluded_tenant_share"] == 8
    kept = sorted(e.request_id or "" for e in all_examples(ds) if e.tenant == "acme")
    assert kept == ["r10", "r11", "r8", "r9"]  # acme's newest four
    cfg = CurationConfig(min_train=2, min_validation=1, max_tenant_share=0.75)
    assert curate(records, cfg, tenants=["acme", "globex"]).tenants == {"acme": 12, "globex": 4}


def test_share_cap_needs_two_opted_in_tenants() -> None:
    """One opted-in tenant has nobody to share with: the owner chose it alone."""
    records = _tenant_records("acme", 12, 0, 1000.0)
    ds = curate(records, SMALL, tenants=["acme"])
    assert ds.tenants == {"acme": 12} and "excluded_tenant_share" not in ds.stats
    assert ds.metadata()["tenant_share"] == {"max": 1.0, "capped": False}
    # Two opted in, one silent: the one that spoke may not supply more than half.
    with pytest.raises(InsufficientData, match="no tenant may supply more than 50%"):
        curate(records, SMALL, tenants=["acme", "globex"])


def test_share_cap_with_every_tenant_when_none_are_named() -> None:
    records = [*_tenant_records("acme", 12, 0, 1000.0), *_tenant_records("globex", 4, 100, 500.0)]
    assert curate(records, SMALL).tenants == {"acme": 4, "globex": 4}


def test_metadata_counts_examples_per_tenant() -> None:
    records = [*_tenant_records("acme", 5, 0, 1000.0), *_tenant_records("globex", 4, 100, 900.0)]
    meta = curate(records, SMALL, tenants=["acme", "globex"]).metadata()
    assert meta["tenants"] == {"acme": 4, "globex": 4}
    assert meta["tenant_share"] == {"max": 0.5, "capped": True}
    assert meta["train"] + meta["validation"] == 8


def test_max_tenant_share_is_validated() -> None:
    with pytest.raises(ValueError):
        CurationConfig(max_tenant_share=0.0)
    with pytest.raises(ValueError):
        CurationConfig(max_tenant_share=1.5)


def served(*messages: tuple[str, str], **fields: Any) -> ServedRequest:
    return ServedRequest.model_validate(
        {"messages": [{"role": r, "content": c} for r, c in messages], **fields}
    )


def served_rec(i: int, record: ServedRequest, completion: str = "Q-A", **kw: Any) -> TrafficRecord:
    last_user = record.messages[-1].content
    return rec(100 + i, last_user, completion, served=record, **kw)  # ids apart from distinct()


def test_recorded_multi_turn_requests_are_examples_as_served() -> None:
    cfg = CurationConfig(min_train=2, min_validation=1, default_system="Task default.")
    conversation = served(
        ("system", "You route tickets. Today is Monday."),
        ("user", "My printer jams"),
        ("assistant", "Q-HW"),
        ("user", "Following up: it still jams"),
    )
    ds = curate([served_rec(0, conversation, "Q-HW"), *distinct(5)], cfg)
    (ex,) = [e for e in all_examples(ds) if e.request_id == "r100"]
    assert ex.messages(with_completion=True) == [
        {"role": "system", "content": "You route tickets. Today is Monday."},
        {"role": "user", "content": "My printer jams"},
        {"role": "assistant", "content": "Q-HW"},
        {"role": "user", "content": "Following up: it still jams"},
        {"role": "assistant", "content": "Q-HW"},
    ]
    # the events of older gateways still get the task's system prompt
    assert {e.system for e in all_examples(ds) if e.request_id != "r100"} == {"Task default."}


def test_each_request_keeps_its_own_system_prompt_and_none_gets_the_default() -> None:
    cfg = CurationConfig(min_train=2, min_validation=1, default_system="Task default.")
    records = [
        served_rec(
            i,
            served(
                ("system", f"Customer {i}: plan {TOPICS[i]}"), ("user", f"Ticket {TOPICS[i]} #{i}")
            ),
        )
        for i in range(4)
    ]
    no_system = served_rec(4, served(("user", "A ticket with no system prompt")))
    ds = curate([*records, no_system, *distinct(3)], cfg)
    systems = {e.request_id: e.system for e in all_examples(ds)}
    assert [systems[f"r10{i}"] for i in range(4)] == [
        f"Customer {i}: plan {TOPICS[i]}" for i in range(4)
    ]
    # served without a system prompt: trained without one, as the template rendered it
    assert systems["r104"] is None


def test_a_correction_replaces_only_the_last_assistant_turn() -> None:
    conversation = served(
        ("system", "S"),
        ("user", "First ticket about the vpn"),
        ("assistant", "Q-NET"),
        ("user", "And the vpn token expired"),
    )
    fix = [{"score": 0.0, "correction": "Q-SEC"}]
    ds = curate([served_rec(0, conversation, "Q-NET", fb=fix), *distinct(5)], SMALL)
    (ex,) = [e for e in all_examples(ds) if e.request_id == "r100"]
    served_msgs = [m.openai() for m in conversation.messages]
    assert ex.messages(with_completion=False) == served_msgs
    assert ex.messages(with_completion=True) == [
        *served_msgs,
        {"role": "assistant", "content": "Q-SEC"},
    ]
    assert ds.stats["kept_correction"] == 1


def test_same_last_prompt_in_different_conversations_is_not_a_duplicate() -> None:
    a = served(("user", "Printer jams"), ("assistant", "Q-HW"), ("user", "Thanks, what now?"))
    b = served(("user", "Password expired"), ("assistant", "Q-SEC"), ("user", "Thanks, what now?"))
    ds = curate([served_rec(0, a, "Q-HW"), served_rec(1, b, "Q-SEC"), *distinct(5)], SMALL)
    assert {e.request_id for e in all_examples(ds)} >= {"r100", "r101"}
    assert ds.stats.get("duplicates_exact", 0) == 0
    again = curate([served_rec(0, a, "Q-HW"), served_rec(1, a, "Q-HW"), *distinct(5)], SMALL)
    assert again.stats["duplicates_exact"] == 1


def test_records_that_cannot_be_rendered_as_served_are_left_out_and_counted() -> None:
    ok = served(("user", "Printer jams on floor 2"))
    records = [
        served_rec(0, served(("user", "Cut short"), complete=False)),
        served_rec(
            1, served(("user", "Weather?"), tools_sha256="c" * 64, tool_names=["w"])
        ),  # too long to record
        served_rec(2, served(("user", "Hi"), ("assistant", "Hello"))),
        served_rec(3, ok, '{"tool_calls": [{"name": "f", "arguments": "{}"}]}'),
        served_rec(4, ok, 'Let me check.\n{"tool_calls": [{"name": "f", "arguments": "{}"}]}'),
        *distinct(5),
    ]
    ds = curate(records, SMALL)
    assert ds.stats["excluded_record_incomplete"] == 1
    assert ds.stats["excluded_tools_not_recorded"] == 1
    assert ds.stats["excluded_last_not_user"] == 1
    assert ds.stats["excluded_tool_call_target_template_cannot_render"] == 2
    assert ds.size == 5  # the five plain records


def test_history_enters_the_hash_only_when_there_is_some() -> None:
    single = ChatExample(prompt="p", completion="c", system="s")
    multi = ChatExample(
        prompt="p",
        completion="c",
        system="s",
        history=(
            RecordedMessage(role="user", content="u"),
            RecordedMessage(role="assistant", content="a"),
        ),
    )
    blob = json.dumps({"train": [["s", "p", "c", 1.0]], "validation": []}, sort_keys=True)
    assert dataset_hash([single], []) == "sha256:" + hashlib.sha256(blob.encode()).hexdigest()
    assert dataset_hash([multi], []) != dataset_hash([single], [])


def test_from_events_carries_the_record() -> None:
    record = served(("system", "S"), ("user", "U"))
    event = RequestEvent(
        request_id="r", tenant="t", prompt_text="U", completion_text="c", served=record
    )
    assert TrafficRecord.from_events(event).served == record


def test_a_golden_prompt_is_not_trained_on_under_another_system_prompt_or_history() -> None:
    golden = [
        ChatExample(
            prompt="The printer on floor 3 jams every morning", completion="Q-HW", system="S"
        )
    ]
    records = [
        served_rec(
            0,
            served(
                ("system", "S. Today is Monday."),
                ("user", "The printer on floor 3 jams every morning"),
            ),
        ),
        served_rec(
            1,
            served(
                ("user", "Hello"),
                ("assistant", "Hi"),
                ("user", "The printer on floor 3 jams every morning!"),
            ),
        ),
        *distinct(5),
    ]
    ds = curate(records, SMALL, golden=golden)
    assert ds.stats["excluded_golden_overlap"] == 2
    assert not {"r100", "r101"} & {e.request_id for e in all_examples(ds)}


def test_a_request_with_recorded_tools_trains_with_them() -> None:
    tools = '[{"function":{"name":"w","parameters":{}},"type":"function"}]'
    with_tools = served(("user", "Printer jams on floor 2"), tools_json=tools, tool_names=["w"])
    ds = curate([served_rec(0, with_tools, "Q-HW"), *distinct(5)], SMALL)
    example = next(e for e in all_examples(ds) if e.request_id == "r100")
    assert example.tools_json == tools
    assert example.tools() == [{"function": {"name": "w", "parameters": {}}, "type": "function"}]
    # The same prompt without tools is another request, not a duplicate of it.
    plain = served(("user", "Printer jams on floor 2"))
    both = curate(
        [served_rec(0, with_tools, "Q-HW"), served_rec(1, plain, "Q-HW"), *distinct(5)], SMALL
    )
    assert both.stats.get("duplicates_exact", 0) == 0


def test_participant_names_train_as_served_and_only_they_change_the_hash() -> None:
    named = ServedRequest.model_validate(
        {
            "messages": [
                {"role": "system", "content": "You route tickets.", "name": "router"},
                {"role": "user", "content": "Printer jams", "name": "alice"},
                {"role": "assistant", "content": "Q-HW"},
                {"role": "user", "content": "Still jams on floor 2", "name": "alice"},
            ]
        }
    )
    ds = curate([served_rec(0, named, "Q-HW"), *distinct(5)], SMALL)
    example = next(e for e in all_examples(ds) if e.request_id == "r100")
    assert example.messages(with_completion=False) == [m.openai() for m in named.messages]
    assert example.extras() == {"system_name": "router", "prompt_name": "alice"}
    unnamed = replace(example, system_name=None, prompt_name=None)
    assert unnamed.extras() == {}
    assert dataset_hash([example], []) != dataset_hash([unnamed], [])
    single = ChatExample(prompt="p", completion="c", system="s")
    assert dataset_hash([single], []) == dataset_hash([replace(single, prompt_name=None)], [])


def test_response_format_and_stop_travel_with_the_example_and_only_they_change_the_hash() -> None:
    fmt = '{"json_schema":{"name":"q","schema":{"type":"object"}},"type":"json_schema"}'
    constrained = served(
        ("user", "Printer jams on floor 2"),
        response_format="json_schema",
        response_format_json=fmt,
        sampling={"temperature": 0.7, "stop": ["\n\n"]},
    )
    ds = curate([served_rec(0, constrained, "Q-HW"), *distinct(5)], SMALL)
    example = next(e for e in all_examples(ds) if e.request_id == "r100")
    assert example.response_format() == json.loads(fmt) and example.stop == ("\n\n",)
    assert example.extras() == {"response_format_json": fmt, "stop": ["\n\n"]}
    plain = replace(example, response_format_json=None, stop=())
    assert plain.extras() == {} and dataset_hash([plain], []) != dataset_hash([example], [])


def test_tool_choice_travels_with_the_example() -> None:
    chosen = served(("user", "Printer jams on floor 2"), tool_choice_json='"none"')
    ds = curate([served_rec(0, chosen, "Q-HW"), *distinct(5)], SMALL)
    example = next(e for e in all_examples(ds) if e.request_id == "r100")
    assert example.tool_choice() == "none"
    assert example.extras() == {"tool_choice_json": '"none"'}
    assert dataset_hash([replace(example, tool_choice_json=None)], []) != dataset_hash(
        [example], []
    )


def test_kept_examples_are_counted_by_who_labelled_them() -> None:
    """Review queue labels stay training data of their own provenance."""
    records = [
        *distinct(4),
        *[
            rec(10 + i, prompt=f"Reviewed {TOPICS[i]} case {i * 104729}", feedback_source="review")
            for i in range(3)
        ],
        rec(20, "Unrated ticket about parking", fb=[], feedback_source="review"),
    ]
    ds = curate(records, SMALL)
    assert ds.stats["feedback_client"] == 4
    assert ds.stats["feedback_review"] == 3
    assert ds.metadata()["stats"]["feedback_review"] == 3


def anchor(i: int, answer: str, mean_logprob: float | None, ts: float, **kw: Any) -> TrafficRecord:
    """An unrated request answered with ``answer`` at confidence ``mean_logprob``."""
    return rec(
        1000 + i,
        prompt=f"Anchor {i}: {TOPICS[i % 30]} problem code {i * 104729}",
        completion=answer,
        ts=ts,
        fb=[],
        mean_logprob=mean_logprob,
        **kw,
    )


ANCHORED = CurationConfig(min_train=2, min_validation=1, anchor_ratio=1.0)


def test_anchors_are_confident_pre_drift_answers_kept_for_training_only() -> None:
    """Unrated answers from before the drift, confident enough, train with the serving
    version's answer as the target; the held-out split stays what people said."""
    drift_start = 5000.0
    real = distinct(10, ts=6000.0)
    pre = [anchor(i, f"Q-{i % 2}", -0.01, 4000.0 + i) for i in range(6)]
    not_anchors = [
        anchor(10, "Q-X", -0.5, 4000.0),  # unsure
        anchor(11, "Q-X", None, 4000.0),  # not measured
        anchor(12, "Q-X", -0.01, 5500.0),  # in the drifted window
        anchor(13, "Q-X", -0.01, 4000.0, finish_reason="length"),
        anchor(14, "Q-X", -0.01, 4000.0, status_code=500),
    ]
    ds = curate([*real, *pre, *not_anchors], ANCHORED, drift_start=drift_start)
    assert ds.stats["kept_anchor"] == 6
    anchors = {e.request_id: e for e in ds.train if e.request_id in {r.request_id for r in pre}}
    assert len(anchors) == 6
    assert {e.completion for e in anchors.values()} == {"Q-0", "Q-1"}
    assert all(e.tenant == "t" for e in anchors.values())
    assert not {e.request_id for e in ds.validation} & set(anchors)
    assert "Q-X" not in {e.completion for e in all_examples(ds)}
    # Without a drifted window there is no "before": no anchors; nor with the ratio at 0.
    assert "kept_anchor" not in curate([*real, *pre], ANCHORED).stats
    assert "kept_anchor" not in curate([*real, *pre], SMALL, drift_start=drift_start).stats


def test_anchors_are_capped_per_real_example_and_spread_over_answers() -> None:
    """At most ``anchor_ratio`` per real example, one per distinct answer in turn, the most
    confident of each first: a rare answer is rehearsed as much as a common one."""
    real = distinct(8, ts=6000.0)
    common = [anchor(i, "Q-COMMON", -0.001 * i, 4000.0 + i) for i in range(20)]
    rare = [anchor(100 + i, "Q-RARE", -0.04 + 0.001 * i, 4000.0) for i in range(3)]
    cfg = replace(ANCHORED, anchor_ratio=0.5)
    ds = curate([*real, *common, *rare], cfg, drift_start=5000.0)
    kept = [e for e in ds.train if e.completion.startswith("Q-")]
    assert len(kept) == 4 and ds.stats["excluded_anchor_over_ratio"] == 19
    assert sorted(e.completion for e in kept) == ["Q-COMMON", "Q-COMMON", "Q-RARE", "Q-RARE"]
    by_answer = {
        a: {e.request_id for e in kept if e.completion == a} for a in ("Q-COMMON", "Q-RARE")
    }
    assert common[0].request_id in by_answer["Q-COMMON"]
    assert rare[2].request_id in by_answer["Q-RARE"]


def test_anchors_of_one_answer_span_its_prompts_not_its_easiest() -> None:
    """After an answer's most confident prompt, the next anchors are the prompts least like
    those already picked: a topic the serving version answers a little less surely is
    rehearsed too, not crowded out by rewordings of the easiest one."""
    real = distinct(6, ts=6000.0)
    easy = [
        rec(2000 + i, prompt=f"Where is my parcel? Order {1000 + i}.", completion="Q-SHP",
            ts=4000.0 + i, fb=[], mean_logprob=-0.001 * (i + 1))
        for i in range(8)
    ]  # fmt: skip
    other = rec(2100, prompt="Problem with the tracking number.", completion="Q-SHP",
                ts=4000.0, fb=[], mean_logprob=-0.03)  # fmt: skip
    cfg = replace(ANCHORED, anchor_ratio=0.5, near_dup_threshold=0.99)
    ds = curate([*real, *easy, other], cfg, drift_start=5000.0)
    picked = {e.request_id for e in ds.train if e.completion == "Q-SHP"}
    assert len(picked) == 3, ds.stats
    assert {easy[0].request_id, other.request_id} <= picked


def test_real_examples_win_deduplication_over_anchors_and_alone_count_for_min_train() -> None:
    """An anchor never displaces a person's answer on the same prompt, and anchors cannot
    make a dataset big enough to train on their own."""
    prompt = "My printer on floor 3 jams every morning"
    voted = rec(101, prompt, "Q-HW", ts=3000.0, fb=[{"label": "Q-HW"}])
    confident = rec(102, prompt, "Q-ACC", ts=4000.0, fb=[], mean_logprob=0.0)
    ds = curate([*distinct(6, ts=6000.0), voted, confident], ANCHORED, drift_start=5000.0)
    targets = {e.request_id: e.completion for e in all_examples(ds)}
    assert targets["r101"] == "Q-HW" and "r102" not in targets
    many = [anchor(i, "Q-A", -0.01, 4000.0 + i) for i in range(30)]
    with pytest.raises(InsufficientData, match="anchors aside"):
        curate([*distinct(2, ts=6000.0), *many], replace(ANCHORED, min_train=4), drift_start=5000.0)
