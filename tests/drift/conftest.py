"""Fixtures of the drift service tests: settings on a temp SQLite store, event factories."""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drift.settings import DriftSettings
from drift.store import DriftStore
from driftgate.core.events import RequestEvent
from tests.database import wipe
from tests.real_parts import require

_ids = itertools.count()

#: One key as both the ingest and the admin key of the drift services these tests start
#: (a deployment may do the same); tests/security checks each route against the other.
DRIFT_KEY = "drift-test-key"
#: What the tests' clients send.
AUTH = {"Authorization": f"Bearer {DRIFT_KEY}"}


def make_request(**overrides: Any) -> RequestEvent:
    """A plausible request event; every field can be overridden."""
    n = next(_ids)
    fields: dict[str, Any] = {
        "request_id": f"req-{n}-{random.random():.12f}",
        "tenant": "acme",
        "adapter": "support",
        "version": 1,
        "prompt_text": f"where is my order {n}?",
        "completion_text": "It ships tomorrow.",
        "prompt_tokens": 12,
        "completion_tokens": 6,
        "latency_ms": 100.0,
        "finish_reason": "stop",
    }
    fields.update(overrides)
    return RequestEvent(**fields)


@pytest.fixture
def request_factory() -> Callable[..., RequestEvent]:
    return make_request


@pytest.fixture
def settings(tmp_path: Path) -> DriftSettings:
    """Small windows so drift shows after a few hundred events; triggers off."""
    return DriftSettings(
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        trigger_mode="off",
        ingest_key=DRIFT_KEY,
        admin_key=DRIFT_KEY,
        reference_size=100,
        window_size=100,
        test_every=50,
        trigger_log_dir=tmp_path / "logs",
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DriftStore]:
    """The store on SQLite, and on PostgreSQL when DRIFTGATE_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = os.environ.get("DRIFTGATE_TEST_POSTGRES_URL", "")
        require(
            url,
            "DRIFTGATE_TEST_POSTGRES_URL is not set (scripts/start_test_postgres.sh prints one)",
        )
    s = DriftStore.from_url(url)
    if request.param == "postgresql":
        wipe(s.engine)
    s.create_all()
    yield s
    s.close()
