"""Which tenants' traffic may train an adapter: an explicit opt-in, set by the admin only.

The opt-in goes through the real gateway's admin API (uvicorn on a free port; a fake vLLM
behind it, since opting in generates nothing); the traffic is in the real SQLite store that
gateway uses, read by the retrain job's own edges (``retrain.wiring``) and curation.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from drift.store import DriftStore
from driftgate.core.state import StateStore
from retrain.dataset import CurationConfig, TrafficRecord, curate
from retrain.job import JobContext, run_retrain
from retrain.registry import Registry
from retrain.runs import RunStore
from retrain.settings import RetrainSettings
from retrain.wiring import read_traffic, training_tenants
from tests.security.governance import (
    ScriptedEngine,
    admin_gateway,
    assert_openai_error,
    corrected,
    log_traffic,
    prompts,
)

SMALL = CurationConfig(min_train=2, min_validation=1)


async def test_opting_in_to_training_needs_the_admin_key(tmp_path: Path) -> None:
    """A tenant cannot opt itself (or anyone) in to train a shared adapter: its own API
    key, no key or a wrong key -> 401, and nobody is opted in."""
    async with admin_gateway(tmp_path) as gw:
        key = await gw.tenant("mallory", ["support"])
        await gw.version("support")
        body = {"tenants": ["mallory"]}
        path = "/admin/adapters/support/training-tenants"
        for credential in (key, None, "not-the-admin-key"):
            r = await gw.admin("PUT", path, body, key=credential)
            assert_openai_error(r, 401)
        store = StateStore(gw.state_url)
        try:
            assert store.training_tenants("support") == ()
        finally:
            store.dispose()
        r = await gw.admin("GET", "/admin/adapters/support")
        assert r.status_code == 200 and r.json()["training_tenants"] == []


async def test_a_tenant_not_opted_in_contributes_no_examples(tmp_path: Path) -> None:
    """Both tenants may call ``support`` and both corrected its answers; only ``acme`` is
    opted in to train it, so ``globex``'s traffic and corrections train nothing."""
    async with admin_gateway(tmp_path) as gw:
        await gw.tenant("acme", ["support"])
        await gw.tenant("globex", ["*"])
        await gw.version("support")
        r = await gw.admin("PUT", "/admin/adapters/support/training-tenants", {"tenants": ["acme"]})
        assert r.status_code == 200 and r.json()["training_tenants"] == ["acme"], r.text
        r = await gw.admin("GET", "/admin/adapters/support")
        assert r.json()["training_tenants"] == ["acme"]
        url = gw.state_url

    drift = DriftStore.from_url(url)
    try:
        drift.create_all()
        log_traffic(drift, "acme", corrected("acme", prompts(12, seed=1), "Q-ACME"))
        log_traffic(drift, "globex", corrected("globex", prompts(30, seed=2), "Q-EVIL"))
    finally:
        drift.close()

    opted = training_tenants(url, "support")
    assert opted == ("acme",)
    # The job's source reads only the opted-in tenants' traffic ...
    records = read_traffic(url, "support", opted)
    assert {r.tenant for r in records} == {"acme"} and len(records) == 12
    # ... and curation drops any other tenant's records it is given.
    everything = read_traffic(url, "support")
    assert len(everything) == 42
    data = curate(everything, SMALL, tenants=opted)
    assert data.tenants == {"acme": 12}
    assert data.stats["excluded_tenant_not_opted_in"] == 30
    trained = [*data.train, *data.validation]
    assert all(e.tenant == "acme" and e.request_id for e in trained)
    assert not [e for e in trained if e.completion == "Q-EVIL"]


async def test_an_adapter_nobody_opted_in_trains_on_nothing(tmp_path: Path) -> None:
    """The default: no tenant opted in. The retrain run refuses before it reads any traffic
    or trains, with the reason recorded; nothing is registered or handed off."""
    async with admin_gateway(tmp_path) as gw:
        await gw.tenant("acme", ["support"])
        await gw.version("support")
        url = gw.state_url
    drift = DriftStore.from_url(url)
    try:
        drift.create_all()
        log_traffic(drift, "acme", corrected("acme", prompts(20, seed=3)))
    finally:
        drift.close()

    settings = RetrainSettings(state_url=url, registry_dir=tmp_path / "registry")
    runs = RunStore(url)
    runs.create_all()
    reads: list[str] = []
    handed: list[object] = []

    def source(adapter: str, tenants: Collection[str]) -> list[TrafficRecord]:
        reads.append(adapter)
        return read_traffic(url, adapter, tenants)

    ctx = JobContext(
        settings=settings,
        registry=Registry(settings.registry_dir),
        runs=runs,
        source=source,
        serving=lambda a: (1, [1]),
        known=lambda a: True,
        generator=ScriptedEngine(),
        hand_off=handed.append,
        tenants=lambda a: training_tenants(url, a),
    )
    try:
        record = run_retrain(ctx, "support", "drift")
    finally:
        runs.dispose()
    assert record.outcome == "insufficient_data"
    assert "no tenant is opted in" in (record.message or "")
    assert "training-tenants" in (record.message or "")
    assert reads == [] and handed == []
    assert not (tmp_path / "registry" / "support").exists()
