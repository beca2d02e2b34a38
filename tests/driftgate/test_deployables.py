"""The composition roots: each deployable carries what its settings and the design say."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from drift.settings import DriftSettings
from driftgate.deployables import drift_service, gateway
from gateway.settings import GatewaySettings
from retrain.runs import RunStore
from rollout.settings import RolloutSettings

KEY = "deployables-admin-key"


def test_drift_service_serves_rollouts_and_exports_the_retrain_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    app = drift_service.app(
        DriftSettings(state_url=url, trigger_mode="off"),
        RolloutSettings(state_url=url, admin_key=SecretStr(KEY), gateway_url=None),
    )
    with TestClient(app) as client:
        runs = RunStore(url)
        run_id = runs.start("support", "drift confirmed")
        runs.finish(run_id, "rejected", "candidate not better")
        runs.dispose()
        text = client.get("/metrics").text
        assert 'driftgate_retrain_runs_total{adapter="support",outcome="rejected"} 1.0' in text
        assert "# TYPE driftgate_rollout_state" in text
        listed = client.get("/v1/rollouts", headers={"Authorization": f"Bearer {KEY}"})
        assert listed.status_code == 200 and listed.json() == {"data": []}
        refused = client.post("/v1/rollouts", json={"adapter": "support", "path": "/x"})
        assert refused.status_code == 401  # starting one takes the admin key


def test_the_drift_app_alone_carries_no_other_service(tmp_path: Path) -> None:
    from drift.app import create_app

    url = f"sqlite:///{tmp_path / 'state.db'}"
    with TestClient(create_app(DriftSettings(state_url=url, trigger_mode="off"))) as client:
        assert "driftgate_retrain_runs_total" not in client.get("/metrics").text
        assert client.get("/v1/rollouts").status_code == 404
        # the drift app's own routes are there (and closed without their keys)
        assert client.get("/v1/drift/status").status_code == 401


def test_gateway_deployable_is_the_gateway_app(tmp_path: Path) -> None:
    settings = GatewaySettings(
        state_url=f"sqlite:///{tmp_path / 'state.db'}", heartbeat_interval_s=0
    )
    with TestClient(gateway.app(settings)) as client:
        assert client.get("/healthz").status_code == 200


def test_the_gateway_process_loads_no_other_service() -> None:
    """A gateway replica imports the gateway and the core only: not the drift service's
    detectors, not the retrain job, not the rollout (their memory is not its to pay)."""
    import subprocess
    import sys

    code = (
        "import sys, driftgate.deployables.gateway as g; g.app; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'drift', 'retrain', 'rollout', 'river', 'scipy', 'torch'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
