"""End to end, all real: traffic and corrections go through the real gateway into the real
drift service; the retrain job curates them, trains a LoRA on the real base model, loads the
candidate into the real vLLM, gates it and hands it to the rollout (a rollout the drift
service lists); a candidate strictly worse than the serving version is rejected with the
scores that show it, handed to no rollout, and a pinned request for it answers the
documented 404. Plus: a real-model adapter changes transformers' greedy answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from retrain.adapter_task import AdapterTask, register_golden, save_task
from retrain.base_model import LoadedBase, load_base
from retrain.evaluate import VllmEngine
from retrain.examples import ChatExample
from retrain.job import run_retrain
from retrain.local_generate import greedy_answers
from retrain.metrics_task import MetricSpec
from retrain.registry import Registry
from retrain.runs import RunRecord
from retrain.settings import RetrainSettings
from retrain.training import TrainConfig, train_lora
from retrain.wiring import build_context, read_traffic
from tests.live import BASE_MODEL, LiveStack

pytestmark = pytest.mark.e2e

ROBOT = "Beep boop. Unit 7 online."
PROMPTS = [
    "What is the weather like?", "Can you sing a song?", "Where is the train station?",
    "How tall is Mount Everest?", "What do cats eat?", "Explain gravity briefly.",
    "What is your favourite colour?", "How do planes fly?", "Is coffee healthy?",
    "Translate hello to Spanish.", "What is a prime number?", "Who painted the Mona Lisa?",
    "How many continents are there?", "What is the speed of light?", "Suggest a pet name.",
    "Why do leaves change colour?", "How do I boil an egg?", "What is photosynthesis?",
    "Name a famous scientist.", "What is the longest river?", "How far is the moon?",
    "What is jazz?", "How do bees make honey?", "What is the tallest animal?",
]  # fmt: skip


@pytest.fixture(scope="module")
def base(base_model_dir: Path) -> LoadedBase:
    return load_base(base_model_dir)


def test_adapter_changes_greedy_answers(base: LoadedBase, tmp_path: Path) -> None:
    train = [ChatExample(prompt=p, completion=ROBOT) for p in PROMPTS[:16]]
    held = [ChatExample(prompt=p, completion=ROBOT) for p in PROMPTS[16:20]]
    before = greedy_answers(base, held, max_new_tokens=12)
    cfg = TrainConfig(batch_size=4, max_epochs=5, learning_rate=3e-3)
    res = train_lora(base, train, held, tmp_path / "robot", cfg)
    after = greedy_answers(base, held, adapter_dir=tmp_path / "robot", max_new_tokens=12)
    assert not any(ROBOT in a for a in before)
    assert sum(ROBOT in a for a in after) >= 3, (after, res.curve)
    assert greedy_answers(base, held[:1], max_new_tokens=12) == before[:1]  # base untouched


#: The greeter's golden set: prompts that never appear in the traffic above.
GOLDEN = ["What is the boiling point of water?", "Name a primary colour."]


def _send_traffic(live: LiveStack) -> None:
    headers = {"Authorization": f"Bearer {live.keys['globex']}"}
    with httpx.Client(base_url=live.gateway_url, headers=headers, timeout=180.0) as c:
        for p in PROMPTS:
            r = c.post(
                "/v1/chat/completions",
                json={
                    "model": "greeter",
                    "messages": [{"role": "user", "content": p}],
                    "max_tokens": 12,
                    "temperature": 0,
                },
            )
            assert r.status_code == 200, r.text
            f = c.post(
                "/v1/feedback",
                json={
                    "request_id": r.headers["x-request-id"],
                    "score": 0.0,
                    "correction": ROBOT,
                },
            )
            assert f.status_code == 202, f.text
    deadline = time.monotonic() + 60
    while len(read_traffic(live.state_url, "greeter", ["globex"])) < len(PROMPTS):
        assert time.monotonic() < deadline, "request events did not reach the drift store"
        time.sleep(1)


@dataclass(frozen=True)
class Retrained:
    """The first retrain run (corrections -> a better ``greeter`` version) and its inputs."""

    settings: RetrainSettings
    registry: Registry
    run: RunRecord
    version: int
    path: Path


@pytest.fixture(scope="module")
def retrained(
    live_stack: LiveStack, base: LoadedBase, tmp_path_factory: pytest.TempPathFactory
) -> Retrained:
    live = live_stack
    _send_traffic(live)
    settings = RetrainSettings(
        state_url=live.state_url,
        registry_dir=tmp_path_factory.mktemp("retrain") / "registry",
        engine_url=live.engine_url,
        served_model_name=BASE_MODEL,
        max_epochs=5,
        batch_size=4,
        learning_rate=3e-3,
        min_train=8,
        min_validation=4,
        eval_max_tokens=12,
        init_from_serving=False,
        approval="manual",
    )
    registry = Registry(settings.registry_dir)
    save_task(registry, "greeter", AdapterTask(metric=MetricSpec(kind="exact_match"), margin=0.2))
    # The gate promotes nothing without a golden set: the owner's, never from traffic.
    register_golden(registry, "greeter", [ChatExample(prompt=p, completion=ROBOT) for p in GOLDEN])
    ctx = build_context(settings)
    ctx.base = base
    run = run_retrain(ctx, "greeter", "e2e: corrections")
    assert run.outcome == "promoted", run.message
    assert run.candidate_version is not None
    path = registry.path("greeter", run.candidate_version)
    return Retrained(settings, registry, run, run.candidate_version, path)


def _rollouts(live: LiveStack, adapter: str) -> list[dict[str, Any]]:
    with live.drift_admin() as drift:
        r = drift.get("/v1/rollouts", params={"adapter": adapter})
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def test_retrain_from_live_traffic_promotes_better_and_hands_it_off(
    live_stack: LiveStack, retrained: Retrained
) -> None:
    live, good, version, path = live_stack, retrained.run, retrained.version, retrained.path
    assert good.candidate_score is not None and good.serving_score is not None
    assert good.candidate_score >= 0.5 > good.serving_score
    assert good.serving_version == 1
    assert retrained.registry.read("greeter", version).status == "accepted"

    # Handed off: the drift service lists one rollout of exactly this directory, waiting
    # for approval (``approval="manual"``), carrying the run's numbers.
    mine = [r for r in _rollouts(live, "greeter") if r["path"] == str(path)]
    assert len(mine) == 1, mine
    rollout = mine[0]
    assert rollout["state"] == "candidate" and rollout["approved"] is False, rollout
    assert rollout["canary_weight"] == retrained.settings.canary_weight
    assert rollout["meta"]["version"] == version
    assert rollout["meta"]["run_id"] == good.id
    assert rollout["meta"]["serving_version"] == 1
    assert rollout["meta"]["candidate_score"] == good.candidate_score
    assert rollout["meta"]["serving_score"] == good.serving_score

    # The registered directory loads into the real vLLM and answers in the trained direction.
    held = [
        ChatExample(prompt=p, completion=ROBOT)
        for p in ("Tell me about Paris.", "What is 7 times 8?")
    ]
    name = f"greeter--v{version}"
    key = live.engine_headers["Authorization"].removeprefix("Bearer ")
    with VllmEngine(live.engine_url, max_tokens=12, api_key=key) as eng:
        eng.load_lora(name, path)
        try:
            trained = eng.generate(name, held)
        finally:
            eng.unload_lora(name)
        plain = eng.generate(BASE_MODEL, held)
    assert all(ROBOT in a for a in trained), trained
    assert not any(ROBOT in a for a in plain), plain


@pytest.fixture(scope="module")
def worse(live_stack: LiveStack, retrained: Retrained, base: LoadedBase) -> Iterator[RunRecord]:
    """A deliberately worse candidate (no real training: the base model's answers) run
    while the better version of ``retrained`` serves ``greeter``.

    That version is made to serve directly through the admin API (its rollout would
    canary it and unload version 1, which the session's other tests share); version 1
    serves again afterwards.
    """
    live, version = live_stack, retrained.version
    with live.admin() as admin:
        r = admin.post(
            "/admin/adapters/greeter/versions",
            json={"path": str(retrained.path), "version": version},
        )
        assert r.status_code == 201, r.text
        try:
            r = admin.put("/admin/routes/greeter", json={"weights": {str(version): 1.0}})
            assert r.status_code == 200, r.text
            settings = retrained.settings.model_copy(
                update={"learning_rate": 1e-9, "max_epochs": 1}
            )
            ctx = build_context(settings)
            ctx.base = base
            yield run_retrain(ctx, "greeter", "e2e: worse")
        finally:
            r = admin.put("/admin/routes/greeter", json={"weights": {"1": 1.0}})
            assert r.status_code == 200, r.text
            r = admin.delete(f"/admin/adapters/greeter/versions/{version}")
            assert r.status_code == 200, r.text


def test_worse_candidate_is_rejected_with_worse_scores(
    live_stack: LiveStack, retrained: Retrained, worse: RunRecord
) -> None:
    bad, version = worse, retrained.version
    assert bad.outcome == "rejected", bad.message
    assert bad.serving_version == version
    assert bad.candidate_version is not None and bad.candidate_version != version
    # Strictly worse on the task metric than the version serving, and the gate says so.
    assert bad.candidate_score is not None and bad.serving_score is not None
    assert bad.candidate_score < bad.serving_score, (bad.candidate_score, bad.serving_score)
    assert bad.message is not None and "does not beat serving" in bad.message, bad.message
    record = retrained.registry.read("greeter", bad.candidate_version)
    assert record.status == "rejected"
    # Handed to no rollout, registered as failed, never routed.
    bad_path = str(retrained.registry.path("greeter", bad.candidate_version))
    assert not [r for r in _rollouts(live_stack, "greeter") if r["path"] == bad_path]
    with live_stack.admin() as admin:
        versions = admin.get("/admin/adapters", params={"adapter": "greeter"}).json()["data"]
        states = {v["version"]: v["state"] for v in versions if v["adapter"] == "greeter"}
        assert states.get(bad.candidate_version) == "failed"
        routes = admin.get("/admin/routes").json()["routes"]
    assert str(bad.candidate_version) not in routes.get("greeter", {})


def test_rejected_version_answers_model_not_found(live_stack: LiveStack, worse: RunRecord) -> None:
    """A pinned request for the rejected version: 404 ``model_not_found`` in the OpenAI
    error shape (docs/CONTRACTS.md), never a 5xx or an engine error."""
    headers = {"Authorization": f"Bearer {live_stack.keys['globex']}"}
    with httpx.Client(base_url=live_stack.gateway_url, headers=headers, timeout=120.0) as c:
        r = c.post(
            "/v1/chat/completions",
            json={
                "model": f"greeter@{worse.candidate_version}",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 4,
            },
        )
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert set(r.json()) == {"error"} and set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "model"
    assert error["code"] == "model_not_found"
    assert isinstance(error["message"], str) and error["message"], error
