"""Answer confidence (mean token logprob, first-token margin) as drift signals: stored,
watched per adapter version, exported, a retrain trigger only where configured."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from drift.app import create_app
from drift.settings import DriftSettings
from driftgate.core.events import RequestEvent
from tests.drift.conftest import AUTH
from tests.drift.test_drift_app import metric, post_batch

SIGNALS = ["first_token_margin", "mean_logprob"]


def traffic(
    factory: Callable[..., RequestEvent], n: int, mean_logprob: float, margin: float, seed: int
) -> list[RequestEvent]:
    rng = random.Random(seed)
    return [
        factory(
            mean_logprob=min(0.0, rng.gauss(mean_logprob, 0.05)),
            first_token_margin=rng.gauss(margin, 0.5),
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("configured", [False, True])
def test_a_confidence_drop_is_confirmed_and_retrains_only_where_configured(
    settings: DriftSettings, request_factory: Callable[..., RequestEvent], configured: bool
) -> None:
    """Reference 100 values, then 300 alike and 300 shifted by 6 standard deviations (mean
    logprob -0.3 -> -0.6, margin 3 -> 0). Seeded; over seeds, the chance that the stable
    stretch confirms drift or the shift goes unconfirmed is far below 1e-3 (the detectors'
    false-alarm rate is of the order of 1e-5 per value, the KS p-value at the shift
    about 1e-40)."""
    triggers = [*settings.trigger_signals, "mean_logprob"] if configured else None
    if triggers is not None:
        settings = settings.model_copy(update={"trigger_signals": triggers})
    assert "mean_logprob" not in DriftSettings(state_url="sqlite://").trigger_signals
    with TestClient(create_app(settings), headers=AUTH) as c:
        post_batch(c, traffic(request_factory, 400, -0.3, 3.0, 1))
        status = c.get("/v1/drift/status").json()
        version = status["versions"][0]
        assert version["drifted"] == []
        assert all(version["signals"][s]["phase"] == "monitoring" for s in SIGNALS)
        post_batch(c, traffic(request_factory, 300, -0.6, 0.0, 2))
        status = c.get("/v1/drift/status").json()
        assert status["versions"][0]["drifted"] == SIGNALS
        labels = {"adapter": "support", "version": "1", "signal": "mean_logprob"}
        current = metric(c, "driftgate_drift_feature_mean", window="current", **labels)
        reference = metric(c, "driftgate_drift_feature_mean", window="reference", **labels)
        assert current < -0.55 and -0.35 < reference < -0.25
        assert metric(c, "driftgate_drift_score", **labels) >= 1.0
        reasons = [t["reason"] for t in status["recent_triggers"]]
        if configured:  # trigger mode off here: the decision is recorded, nothing starts
            assert len(reasons) == 1 and "confirmed mean_logprob drift" in reasons[0]
        else:
            assert reasons == []
    # a restart rebuilds both signals from the stored references, alarms and rows
    with TestClient(create_app(settings), headers=AUTH) as c:
        version = c.get("/v1/drift/status").json()["versions"][0]
        assert version["drifted"] == SIGNALS
        assert version["signals"]["mean_logprob"]["reference_size"] == 100
        assert version["signals"]["mean_logprob"]["current_mean"] < -0.55  # replayed rows
        assert version["signals"]["first_token_margin"]["current_mean"] < 0.5


def test_requests_without_confidence_add_no_confidence_values(
    settings: DriftSettings, request_factory: Callable[..., RequestEvent]
) -> None:
    with TestClient(create_app(settings), headers=AUTH) as c:
        post_batch(c, [request_factory() for _ in range(30)])
        post_batch(c, [request_factory(mean_logprob=-0.5) for _ in range(30)])
        signals = c.get("/v1/drift/status").json()["versions"][0]["signals"]
        assert "first_token_margin" not in signals
        assert signals["mean_logprob"]["current_mean"] == pytest.approx(-0.5)
        assert signals["prompt_tokens"]["current_mean"] == pytest.approx(12.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("mean_logprob", 0.5), ("mean_logprob", "NaN"), ("first_token_margin", 1e5)],
)
def test_confidence_out_of_bounds_is_422_naming_the_field(
    settings: DriftSettings,
    request_factory: Callable[..., RequestEvent],
    field: str,
    value: float | str,
) -> None:
    event = json.loads(request_factory().model_dump_json())
    event[field] = value
    with TestClient(create_app(settings), headers=AUTH) as c:
        r = c.post("/v1/events", json={"events": [event]})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["param"] == f"events.0.{field}" and error["type"] == "invalid_request_error"
        assert c.get("/v1/drift/status").json()["versions"] == []
