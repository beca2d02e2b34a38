"""End to end, all real: traffic and corrections go through the real gateway into the real
drift service; the retrain job curates them, trains a LoRA on the real base model, loads the
candidate into the real vLLM, gates it, hands it off; a worse candidate is rejected and
never served. Plus: a real-model adapter changes transformers' greedy answers."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from retrain.adapter_task import AdapterTask, save_task
from retrain.base_model import LoadedBase, load_base
from retrain.evaluate import VllmEngine
from retrain.examples import ChatExample
from retrain.job import run_retrain
from retrain.local_generate import greedy_answers
from retrain.metrics_task import MetricSpec
from retrain.registry import Registry
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
    while len(read_traffic(live.state_url, "greeter")) < len(PROMPTS):
        assert time.monotonic() < deadline, "request events did not reach the drift store"
        time.sleep(1)


def test_retrain_from_live_traffic_promotes_better_rejects_worse(
    live_stack: LiveStack, base: LoadedBase, tmp_path: Path
) -> None:
    live = live_stack
    _send_traffic(live)
    settings = RetrainSettings(
        state_url=live.state_url,
        registry_dir=tmp_path / "registry",
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

    ctx = build_context(settings)
    ctx.base = base
    good = run_retrain(ctx, "greeter", "e2e: corrections")
    assert good.outcome == "promoted", good.message
    assert good.candidate_score is not None and good.serving_score is not None
    assert good.candidate_score >= 0.5 > good.serving_score
    assert good.serving_version == 1
    version = good.candidate_version
    assert version is not None
    path = registry.path("greeter", version)
    assert registry.read("greeter", version).status == "accepted"

    # The registered directory loads into the real vLLM and answers in the trained direction.
    held = [
        ChatExample(prompt=p, completion=ROBOT)
        for p in ("Tell me about Paris.", "What is 7 times 8?")
    ]
    name = f"greeter--v{version}"
    with VllmEngine(live.engine_url, max_tokens=12) as eng:
        eng.load_lora(name, path)
        try:
            trained = eng.generate(name, held)
        finally:
            eng.unload_lora(name)
        plain = eng.generate(BASE_MODEL, held)
    assert all(ROBOT in a for a in trained), trained
    assert not any(ROBOT in a for a in plain), plain

    # A deliberately worse candidate (no real training) is rejected and never served.
    worse_settings = settings.model_copy(update={"learning_rate": 1e-9, "max_epochs": 1})
    ctx2 = build_context(worse_settings)
    ctx2.base = base
    bad = run_retrain(ctx2, "greeter", "e2e: worse")
    assert bad.outcome == "rejected", bad.message
    assert bad.candidate_version is not None and bad.candidate_version != version
    assert registry.read("greeter", bad.candidate_version).status == "rejected"
    with live.admin() as admin:
        versions = admin.get("/admin/adapters", params={"adapter": "greeter"}).json()["data"]
        states = {v["version"]: v["state"] for v in versions if v["adapter"] == "greeter"}
        assert states.get(bad.candidate_version) == "failed"
        routes = admin.get("/admin/routes").json()["routes"]
    assert str(bad.candidate_version) not in routes.get("greeter", {})
    headers = {"Authorization": f"Bearer {live.keys['globex']}"}
    with httpx.Client(base_url=live.gateway_url, headers=headers, timeout=120.0) as c:
        r = c.post(
            "/v1/chat/completions",
            json={
                "model": f"greeter@{bad.candidate_version}",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 4,
            },
        )
        assert r.status_code >= 400 and "error" in r.json()
