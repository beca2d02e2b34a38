"""The drift service deployable: the drift app, its rollout controller and API
(:func:`rollout.mount.with_rollouts`), and the retrain job's recorded runs exported from
their table at scrape time (the job itself exits after each run)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from drift.app import create_app as create_drift_app
from drift.settings import DriftSettings
from retrain.run_metrics import RetrainRunsCollector
from retrain.runs import RunStore
from rollout.mount import with_rollouts
from rollout.settings import RolloutSettings


def app(drift: DriftSettings | None = None, rollout: RolloutSettings | None = None) -> FastAPI:
    """``DRIFTGATE_DRIFT_*``, ``DRIFTGATE_ROLLOUT_*`` and the shared facts."""
    drift = drift or DriftSettings()
    built = with_rollouts(create_drift_app(drift), rollout or RolloutSettings())
    return _with_retrain_runs(built, drift.state_url)


def _with_retrain_runs(app: FastAPI, state_url: str) -> FastAPI:
    """Register the retrain runs' collector on the drift service's registry while it runs."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            registry = a.state.drift.service.metrics.registry
            runs = RunStore(state_url)
            collector = RetrainRunsCollector(runs)
            registry.register(collector)
            try:
                yield state
            finally:
                registry.unregister(collector)
                runs.dispose()

    app.router.lifespan_context = lifespan
    return app
