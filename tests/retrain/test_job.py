"""A whole retrain run on the tiny real model, with transformers generation standing in
for vLLM (the gate through real vLLM is in the e2e tests)."""

from __future__ import annotations

import socket
from collections.abc import Collection
from pathlib import Path

import pytest

from driftgate.core.events import FeedbackEvent
from retrain.adapter_task import register_golden
from retrain.base_model import LoadedBase, load_base
from retrain.dataset import TrafficRecord
from retrain.errors import UnknownAdapter
from retrain.evaluate import VllmEngine
from retrain.examples import ChatExample
from retrain.job import Candidate, JobContext, run_retrain
from retrain.local_generate import LocalGenerator
from retrain.registry import Registry
from retrain.runs import RunStore
from retrain.settings import RetrainSettings


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> LoadedBase:
    return load_base(tiny_model_dir, device="cpu")


def traffic(n: int) -> list[TrafficRecord]:
    return [
        TrafficRecord(
            request_id=f"r{i}",
            ts=1000.0 + i,
            prompt_text=f"ticket {i}: my device number {i * 7919} is broken",
            completion_text="Q-HW",
            tenant="t",
            feedback=(FeedbackEvent(request_id=f"r{i}", tenant="t", score=1.0),),
        )
        for i in range(n)
    ]


#: A frozen golden set (not traffic): the gate promotes nothing without one.
GOLDEN = [
    ChatExample(prompt="golden ticket: the office printer is on fire", completion="Q-HW"),
    ChatExample(prompt="golden ticket: my laptop screen stays black", completion="Q-HW"),
]


def context(
    tmp_path: Path,
    tiny: LoadedBase,
    records: list[TrafficRecord],
    registry_root: Path | None = None,
    *,
    golden: bool = True,
    tenants: tuple[str, ...] = ("t",),
    **settings: object,
) -> tuple[JobContext, dict[str, list[Candidate]]]:
    opts: dict[str, object] = {
        "state_url": f"sqlite:///{tmp_path / 'state.db'}",
        "registry_dir": registry_root or tmp_path,
        "base_model_dir": tiny.model_dir,
        "max_epochs": 1,
        "batch_size": 8,
        "min_train": 8,
        "min_validation": 2,
        "device": "cpu",
        **settings,
    }
    s = RetrainSettings(**opts)  # type: ignore[arg-type]
    runs = RunStore(s.state_url)
    runs.create_all()
    seen: dict[str, list[Candidate]] = {"hand_off": [], "reject": []}
    registry = Registry(s.registry_dir)
    if golden:
        register_golden(registry, "support", GOLDEN)
    ctx = JobContext(
        settings=s,
        registry=registry,
        runs=runs,
        source=lambda a, opted: [r for r in records if r.tenant in opted],
        serving=lambda a: (None, []),
        known=lambda a: a == "support",
        generator=LocalGenerator(tiny, base_name=s.served_model_name, max_new_tokens=4),
        hand_off=seen["hand_off"].append,
        reject=seen["reject"].append,
        tenants=lambda a: tenants,
        base=tiny,
    )
    return ctx, seen


def test_run_registers_evaluates_and_rejects_what_does_not_win(
    tmp_path: Path, tiny: LoadedBase
) -> None:
    ctx, seen = context(tmp_path, tiny, traffic(14))
    rec = run_retrain(ctx, "support", "drift: test")
    # A random 2-layer model answers nothing right, before or after: no margin, rejected.
    assert rec.outcome == "rejected", rec.message
    assert rec.candidate_version == 1 and rec.serving_version is None
    assert rec.candidate_score == 0.0 and rec.serving_score == 0.0
    assert rec.dataset_size == 14 and rec.dataset_hash and rec.duration_s
    # The tiny model's ChatML template drops tool calls: the job's probe says so.
    assert rec.details is not None and rec.details["tool_call_targets"] is False
    assert len(seen["reject"]) == 1 and seen["hand_off"] == []
    m = ctx.registry.read("support", 1)
    assert m.status == "rejected" and m.reason == "drift: test" and m.run_id == rec.id
    assert m.training["curve"] and m.dataset["train"] + m.dataset["validation"] == 14
    assert m.evaluation is not None and m.evaluation["promote"] is False
    # A curated example as trained: the messages and what the chat template rendered.
    sample = m.dataset["as_trained"][0]
    assert sample["messages"][-1]["role"] == "user" and sample["request_id"]
    assert sample["messages"][-1]["content"] in sample["rendered_prompt"]
    assert sample["rendered_target"].startswith(sample["target"])
    assert (tmp_path / "support" / "1" / "adapter_model.safetensors").is_file()


def test_too_little_data_ends_with_reason_and_no_version(tmp_path: Path, tiny: LoadedBase) -> None:
    ctx, _ = context(tmp_path, tiny, traffic(3))
    rec = run_retrain(ctx, "support", "drift")
    assert rec.outcome == "insufficient_data"
    assert "too little usable data" in (rec.message or "")
    assert ctx.registry.versions("support") == []


def test_empty_store(tmp_path: Path, tiny: LoadedBase) -> None:
    ctx, _ = context(tmp_path, tiny, [])
    assert run_retrain(ctx, "support", "drift").outcome == "insufficient_data"


def test_unknown_adapter_records_nothing(tmp_path: Path, tiny: LoadedBase) -> None:
    ctx, _ = context(tmp_path, tiny, traffic(14))
    with pytest.raises(UnknownAdapter):
        run_retrain(ctx, "billing", "drift")
    with pytest.raises(UnknownAdapter):
        run_retrain(ctx, "Not A Name", "drift")
    assert ctx.runs.recent() == []


def test_corrupt_base_model_fails_cleanly(tmp_path: Path, tiny: LoadedBase) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    ctx, _ = context(tmp_path, tiny, traffic(14), base_model_dir=broken)
    ctx.base = None
    rec = run_retrain(ctx, "support", "drift")
    assert rec.outcome == "failed" and "base model" in (rec.message or "")
    assert ctx.registry.versions("support") == []


def test_out_of_disk_during_save(tmp_path: Path, tiny: LoadedBase, tiny_disk: Path) -> None:
    """The registry on a real 64 KiB filesystem: saving the adapter runs out of space."""
    ctx, _ = context(
        tmp_path,
        tiny,
        traffic(14),
        registry_root=tiny_disk,
        golden=False,  # the filesystem holds only what the run writes
        allow_no_golden=True,
        target_modules=(
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ),
    )
    rec = run_retrain(ctx, "support", "drift")
    assert rec.outcome == "failed" and "out of disk" in (rec.message or ""), rec.message
    assert ctx.registry.versions("support") == []
    assert list((tiny_disk / "support").iterdir()) == []


def test_engine_down_fails_run_and_rejects_candidate(tmp_path: Path, tiny: LoadedBase) -> None:
    """A real refused connection: the port was free a moment ago and nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx, seen = context(tmp_path, tiny, traffic(14))
    ctx.generator = VllmEngine(f"http://127.0.0.1:{port}", timeout_s=5)
    rec = run_retrain(ctx, "support", "drift")
    assert rec.outcome == "failed" and "unreachable" in (rec.message or ""), rec.message
    meta = ctx.registry.read("support", 1)
    assert meta.status == "rejected" and "evaluation failed" in meta.decision[0]
    assert seen["hand_off"] == []


def test_no_opted_in_tenant_refuses_before_reading_traffic(
    tmp_path: Path, tiny: LoadedBase
) -> None:
    ctx, seen = context(tmp_path, tiny, traffic(14), tenants=())
    read: list[str] = []

    def source(adapter: str, opted: object) -> list[TrafficRecord]:
        read.append(adapter)
        return []

    ctx.source = source
    rec = run_retrain(ctx, "support", "drift")
    assert rec.outcome == "insufficient_data"
    assert "no tenant is opted in to train 'support'" in (rec.message or "")
    assert read == [] and ctx.registry.versions("support") == [] and seen["hand_off"] == []


def test_only_opted_in_tenants_train_and_the_version_says_who(
    tmp_path: Path, tiny: LoadedBase
) -> None:
    others = [
        TrafficRecord(
            request_id=f"o{i}",
            ts=2000.0 + i,
            prompt_text=f"other tenant {i}: my screen number {i * 104729} flickers",
            completion_text="Q-X",
            tenant="other",
            feedback=(FeedbackEvent(request_id=f"o{i}", tenant="other", score=1.0),),
        )
        for i in range(10)
    ]
    ctx, _ = context(tmp_path, tiny, [*traffic(14), *others])
    rec = run_retrain(ctx, "support", "drift")
    assert rec.outcome == "rejected", rec.message
    m = ctx.registry.read("support", 1)
    assert m.training_tenants == ["t"]
    assert m.dataset["tenants"] == {"t": 14}
    assert m.golden["examples"] == len(GOLDEN) and m.golden["hash"].startswith("sha256:")
    assert rec.details is not None and rec.details["tenants"] == {"t": 14}


def test_anchors_are_read_for_the_serving_version_before_the_drift_and_train(
    tmp_path: Path, tiny: LoadedBase
) -> None:
    """The job asks its anchors edge for the serving version's confident answers before
    the drift's start less ``anchor_margin_s``, of the opted-in tenants only, and trains
    on them (never holds them out); with ``anchor_ratio`` 0 it does not ask."""
    asked: list[tuple[str, int | None, float, tuple[str, ...]]] = []
    confident = [
        TrafficRecord(
            request_id=f"a{i}",
            ts=500.0 + i,
            prompt_text=f"older ticket {i}: the scanner number {i * 15485863} is jammed",
            completion_text="Q-ACC",
            tenant="t",
            mean_logprob=-0.01,
        )
        for i in range(5)
    ]

    def anchors(
        adapter: str, version: int | None, before: float, opted: Collection[str]
    ) -> list[TrafficRecord]:
        asked.append((adapter, version, before, tuple(opted)))
        return confident

    ctx, _ = context(tmp_path, tiny, traffic(14))
    ctx.anchors, ctx.drift_start = anchors, lambda a: 900.0
    rec = run_retrain(ctx, "support", "drift")
    assert rec.outcome == "rejected", rec.message
    # The drift's start less the margin (300 s by default): detection lags the drift.
    assert asked == [("support", None, 600.0, ("t",))]
    m = ctx.registry.read("support", 1)
    assert m.dataset["stats"]["kept_anchor"] == 5
    assert m.dataset["train"] + m.dataset["validation"] == 19
    asked.clear()
    (tmp_path / "off").mkdir()
    ctx, _ = context(tmp_path / "off", tiny, traffic(14), anchor_ratio=0.0)
    ctx.anchors, ctx.drift_start = anchors, lambda a: 900.0
    assert run_retrain(ctx, "support", "drift").outcome == "rejected"
    assert asked == []


def test_no_golden_set_refuses_before_training(tmp_path: Path, tiny: LoadedBase) -> None:
    ctx, seen = context(tmp_path, tiny, traffic(14), golden=False)
    rec = run_retrain(ctx, "support", "drift")
    assert rec.outcome == "failed" and "no golden set" in (rec.message or "")
    assert ctx.registry.versions("support") == [] and seen["hand_off"] == seen["reject"] == []
