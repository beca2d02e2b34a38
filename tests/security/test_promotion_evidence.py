"""Promotion needs evidence that feedback cannot write: a golden set, or a logged opt-out.

Whole retrain runs (``retrain.job.run_retrain``) on a tiny real model that really trains
and registers, with the run table on a real SQLite file. At the gate the engine is
:class:`~tests.security.governance.ScriptedEngine`, not vLLM: these attacks need no
generation, only a candidate that wins on the held-out split that feedback wrote (as a
poisoner's candidate would).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from drift.store import DriftStore
from driftgate.core.errors import InvalidRequest
from driftgate.core.events import FeedbackEvent
from retrain.adapter_task import golden_digest, load_golden, register_golden
from retrain.base_model import LoadedBase, load_base
from retrain.dataset import CurationConfig, TrafficRecord, curate
from retrain.examples import ChatExample
from retrain.gate import EvalReport, GatePolicy, SplitScores, decide
from retrain.job import Candidate, JobContext, run_retrain
from retrain.registry import Registry
from retrain.runs import RunStore
from retrain.settings import RetrainSettings
from retrain.wiring import read_traffic
from tests.retrain.conftest import build_tiny_model
from tests.security.governance import ScriptedEngine, corrected, log_traffic, prompts


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> LoadedBase:
    return load_base(build_tiny_model(tmp_path_factory.mktemp("tiny-llama")), device="cpu")


@dataclass
class Job:
    ctx: JobContext
    registry: Registry
    engine: ScriptedEngine
    handed: list[Candidate]


@pytest.fixture
def make_job(tmp_path: Path, tiny: LoadedBase) -> Iterator[Callable[..., Job]]:
    stores: list[RunStore] = []

    def make(records: list[TrafficRecord], **settings: object) -> Job:
        opts: dict[str, object] = {
            "state_url": f"sqlite:///{tmp_path / 'state.db'}",
            "registry_dir": tmp_path / "registry",
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
        stores.append(runs)
        engine = ScriptedEngine()
        handed: list[Candidate] = []
        registry = Registry(s.registry_dir)
        ctx = JobContext(
            settings=s,
            registry=registry,
            runs=runs,
            source=lambda a, tenants: [r for r in records if r.tenant in tenants],
            serving=lambda a: (None, []),
            known=lambda a: a == "support",
            generator=engine,
            hand_off=handed.append,
            tenants=lambda a: ("acme",),
            base=tiny,
        )
        return Job(ctx, registry, engine, handed)

    yield make
    for runs in stores:
        runs.dispose()


def _poisoned(n: int = 20) -> list[TrafficRecord]:
    """Corrections from the one opted-in tenant: the held-out split is theirs too."""
    return [
        TrafficRecord(
            request_id=f"r{i}",
            ts=1000.0 + i,
            prompt_text=p,
            completion_text="Q-OLD",
            tenant="acme",
            feedback=(
                FeedbackEvent(request_id=f"r{i}", tenant="acme", score=0.0, correction="Q-EVIL"),
            ),
        )
        for i, p in enumerate(prompts(n, seed=41))
    ]


def test_no_golden_set_no_promotion(make_job: Callable[..., Job]) -> None:
    """No golden set and no opt-out: the run refuses before training, with the reason
    recorded; nothing is trained, registered, evaluated or handed to the rollout. And the
    gate alone refuses a candidate that wins everything feedback wrote."""
    job: Job = make_job(_poisoned())
    record = run_retrain(job.ctx, "support", "drift")
    assert record.outcome == "failed", record
    assert "no golden set" in (record.message or "")
    assert "DRIFTGATE_RETRAIN_ALLOW_NO_GOLDEN" in (record.message or "")
    assert job.handed == [] and job.engine.asked == []
    assert job.registry.versions("support") == []
    assert record.candidate_version is None

    winner = EvalReport(heldout=SplitScores(task=1.0, rouge_l=1.0, n=50))
    serving = EvalReport(heldout=SplitScores(task=0.0, rouge_l=0.0, n=50))
    decision = decide(winner, serving, GatePolicy())
    assert not decision.promote
    assert any("no golden set" in r for r in decision.reasons)


def test_the_opt_out_allows_promotion_logged_and_recorded(
    make_job: Callable[..., Job], caplog: pytest.LogCaptureFixture
) -> None:
    """``DRIFTGATE_RETRAIN_ALLOW_NO_GOLDEN=true``: the same run promotes, with a WARNING in
    the job's log and the opt-out in the version's metadata and the gate's reasons."""
    job: Job = make_job(_poisoned(), allow_no_golden=True)
    with caplog.at_level(logging.WARNING, logger="retrain.job"):
        record = run_retrain(job.ctx, "support", "drift")
    assert record.outcome == "promoted", record.message
    assert len(job.handed) == 1 and job.handed[0].version == record.candidate_version
    warned = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "ALLOW_NO_GOLDEN" in r.getMessage()
    ]
    assert len(warned) == 1, caplog.text
    assert record.candidate_version is not None
    meta = job.registry.read("support", record.candidate_version)
    assert meta.golden == {"examples": 0, "allow_no_golden": True}
    assert any("opted out" in r for r in meta.decision), meta.decision
    assert meta.training_tenants == ["acme"] and meta.dataset["tenants"] == {"acme": 20}
    assert record.details is not None and record.details["golden"] == meta.golden


def test_the_golden_set_never_comes_from_feedback(
    make_job: Callable[..., Job], tmp_path: Path
) -> None:
    """The golden set is the owner's registered file. Examples curated from traffic (they
    carry a tenant and request id) cannot be registered as one; corrections that aim at
    the golden prompts are never trained on and never change it; the gate is asked exactly
    the registered examples, and the version records that file's hash."""
    registry = Registry(tmp_path / "registry")
    golden = [ChatExample(prompt=p, completion="Q-GOLD") for p in prompts(4, seed=51)]
    digest = register_golden(registry, "support", golden)

    # Traffic in the real store: ordinary corrections, and corrections of the golden prompts.
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = DriftStore.from_url(url)
    try:
        store.create_all()
        log_traffic(store, "acme", corrected("acme", prompts(20, seed=52), "Q-EVIL"))
        aimed = [(f"aim-{i}", g.prompt, {"correction": "Q-EVIL"}) for i, g in enumerate(golden)]
        log_traffic(store, "acme", aimed, ts0=2000.0)
    finally:
        store.close()
    records = read_traffic(url, "support", ["acme"])

    curated = curate(records, CurationConfig(min_train=2, min_validation=1), tenants=["acme"])
    with pytest.raises(InvalidRequest) as refused:
        register_golden(registry, "support", curated.train, replace=True)
    assert refused.value.code == "golden_from_traffic"
    assert golden_digest(registry, "support") == digest

    job: Job = make_job(records)
    record = run_retrain(job.ctx, "support", "drift")
    assert record.outcome == "promoted", record.message
    assert record.details is not None
    assert record.details["stats"]["excluded_golden_overlap"] == len(golden)
    assert golden_digest(registry, "support") == digest
    assert load_golden(registry, "support") == golden
    asked = [examples for _, examples in job.engine.asked if examples == golden]
    assert len(asked) == 2  # the candidate and the serving model, on exactly the file
    assert record.candidate_version is not None
    meta = job.registry.read("support", record.candidate_version)
    assert meta.golden["hash"] == digest and meta.golden["examples"] == len(golden)
    assert meta.golden["source"].endswith("support/golden.jsonl")
