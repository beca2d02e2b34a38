"""A real drift service with the rollout API mounted, under uvicorn on a free port.

For the attacks on the drift service's and the rollout API's routes; no gateway and no
engine (the controller is off unless a test turns it on: nothing here needs generation).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from drift.app import create_app as create_drift_app
from drift.settings import DriftSettings
from rollout.mount import with_rollouts
from rollout.settings import RolloutSettings
from tests.gateway.conftest import ADMIN_KEY, serve


@dataclass
class DriftService:
    url: str
    client: httpx.AsyncClient
    registry: Path

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_KEY}"}

    async def metric(self, name: str, **labels: str) -> float:
        """One sample of the service's /metrics (0 when absent)."""
        text = (await self.client.get(self.url + "/metrics")).text
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(f"{name}{{{want}}} ") or (not want and line.startswith(name + " ")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    async def rollouts(self) -> list[dict[str, Any]]:
        r = await self.client.get(self.url + "/v1/rollouts", headers=self.admin_headers)
        assert r.status_code == 200, r.text
        data: list[dict[str, Any]] = r.json()["data"]
        return data


@asynccontextmanager
async def drift_service(
    tmp: Path, drift: dict[str, Any] | None = None, rollout: dict[str, Any] | None = None
) -> AsyncIterator[DriftService]:
    state_url = f"sqlite:///{tmp / 'state.db'}"
    registry = tmp / "registry"
    registry.mkdir(exist_ok=True)
    app = with_rollouts(
        create_drift_app(
            DriftSettings(**{"state_url": state_url, "trigger_mode": "off", **(drift or {})})
        ),
        RolloutSettings(
            **{
                "state_url": state_url,
                "admin_key": SecretStr(ADMIN_KEY),
                "gateway_url": None,
                "adapter_roots": [registry],
                **(rollout or {}),
            }
        ),
    )
    server, task, port = await serve(app)
    client = httpx.AsyncClient(timeout=30)
    try:
        yield DriftService(f"http://127.0.0.1:{port}", client, registry)
    finally:
        await client.aclose()
        server.should_exit = True
        await asyncio.wait_for(task, 30)
