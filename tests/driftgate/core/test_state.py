"""The control-plane state store on SQLite (and PostgreSQL when one is reachable)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftgate.core.errors import Conflict, InvalidRequest, NotFound
from driftgate.core.state import StateStore, VersionState, hash_key
from tests.database import wipe
from tests.real_parts import skip_or_fail

PG_URL = os.environ.get("DRIFTGATE_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "postgres":
        s = StateStore(
            PG_URL or skip_or_fail("no PostgreSQL: set DRIFTGATE_TEST_POSTGRES_URL to run these")
        )
        wipe(s.engine)
    else:
        s = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    s.create_all()
    yield s
    s.dispose()


def test_tenant_keys_are_hashed_and_found(store: StateStore) -> None:
    tenant, issued = store.create_tenant(
        "acme", adapters=["support", "support"], rate_limit_rps=5, burst=10, max_tokens=256
    )
    key = issued.secret
    assert tenant.adapters == ("support",)
    assert key.startswith("dg-") and len(key) > 40
    snap = store.snapshot()
    assert key not in snap.tenants_by_key_hash
    assert snap.tenants_by_key_hash[hash_key(key)].name == "acme"
    assert store.tenant_for_key(key) == tenant
    assert store.tenant_for_key(key + "x") is None
    second = store.add_api_key("acme").secret
    assert store.tenant_for_key(second) == tenant
    with pytest.raises(Conflict):
        store.create_tenant("acme", adapters=[], rate_limit_rps=1, burst=1, max_tokens=1)
    with pytest.raises(InvalidRequest):
        store.create_tenant("bad", adapters=["Not Valid"], rate_limit_rps=1, burst=1, max_tokens=1)


def test_delete_tenant_removes_keys(store: StateStore) -> None:
    _, issued = store.create_tenant("a", adapters=["*"], rate_limit_rps=0, burst=0, max_tokens=8)
    key = issued.secret
    store.delete_tenant("a")
    assert store.tenant_for_key(key) is None
    assert store.snapshot().tenants_by_key_hash == {}
    with pytest.raises(NotFound):
        store.delete_tenant("a")


def test_one_key_is_listed_and_revoked_alone(store: StateStore) -> None:
    _, first = store.create_tenant(
        "acme", adapters=["*"], rate_limit_rps=1, burst=1, max_tokens=8, key_expires_at=2e9
    )
    second = store.add_api_key("acme")
    store.create_tenant("globex", adapters=["*"], rate_limit_rps=1, burst=1, max_tokens=8)
    listed = store.list_api_keys("acme")
    assert [k.key_id for k in listed] == [first.info.key_id, second.info.key_id]
    assert [k.expires_at for k in listed] == [2e9, None]
    assert listed[0].prefix == first.secret[:8] and listed[0].key_id.startswith("key_")
    assert first.secret not in repr(first)  # an issued key's repr never shows the secret
    assert store.snapshot().key_expiry == {hash_key(first.secret): 2e9}
    with pytest.raises(NotFound) as unknown:
        store.revoke_api_key("globex", first.info.key_id)  # not globex's key
    assert unknown.value.code == "key_not_found"
    with pytest.raises(NotFound):
        store.revoke_api_key("nobody", first.info.key_id)
    store.revoke_api_key("acme", first.info.key_id)
    assert store.tenant_for_key(first.secret) is None
    assert store.tenant_for_key(second.secret) is not None
    assert [k.key_id for k in store.list_api_keys("acme")] == [second.info.key_id]
    with pytest.raises(InvalidRequest):
        store.add_api_key("acme", expires_at=float("inf"))


def test_versions_are_numbered_and_never_reused(store: StateStore) -> None:
    v1 = store.create_version("support", "/r/support/1", meta={"dataset": "abc"})
    v2 = store.create_version("support", "/r/support/2")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.state is VersionState.LOADING and v1.meta == {"dataset": "abc"}
    store.set_version_state("support", 2, VersionState.FAILED, error="bad rank")
    v3 = store.create_version("support", "/r/support/3")
    assert v3.version == 3  # the failed 2 is not reused
    with pytest.raises(Conflict):
        store.create_version("support", "/again", version=3)
    assert store.get_version("support", 2).error == "bad rank"
    assert [v.version for v in store.list_versions("support")] == [1, 2, 3]
    with pytest.raises(InvalidRequest):
        store.create_version("base", "/x")  # reserved name


def test_routes_need_ready_versions_and_block_retirement(store: StateStore) -> None:
    store.create_version("support", "/1")
    store.create_version("support", "/2")
    with pytest.raises(Conflict):
        store.set_route("support", {1: 1.0})  # still loading
    store.set_version_state("support", 1, VersionState.READY)
    store.set_version_state("support", 2, VersionState.READY)
    assert store.set_route("support", {1: 0.9, 2: 0.1}) == {1: 0.9, 2: 0.1}
    assert store.get_routes() == {"support": {1: 0.9, 2: 0.1}}
    with pytest.raises(Conflict):
        store.set_version_state("support", 1, VersionState.RETIRED)
    store.set_route("support", {1: 0.0, 2: 1.0})
    assert store.get_routes() == {"support": {2: 1.0}}
    retired = store.set_version_state("support", 1, VersionState.RETIRED)
    assert retired.state is VersionState.RETIRED
    with pytest.raises(InvalidRequest):
        store.set_route("support", {2: 0.0})
    with pytest.raises(InvalidRequest):
        store.set_route("support", {2: -1.0})
    with pytest.raises(NotFound):
        store.set_route("support", {7: 1.0})
    snap = store.snapshot()
    assert snap.routes == {"support": {2: 1.0}}
    assert snap.versions["support"][1].state is VersionState.RETIRED
    store.delete_route("support")
    assert store.get_routes() == {}


def test_two_stores_on_one_database_agree(tmp_path: Path) -> None:
    """Two gateway replicas share the state through the database, not memory."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    a, b = StateStore(url), StateStore(url)
    a.create_all()
    b.create_all()
    _, issued = a.create_tenant("t", adapters=["*"], rate_limit_rps=1, burst=1, max_tokens=8)
    a.create_version("support", "/1")
    a.set_version_state("support", 1, VersionState.READY)
    a.set_route("support", {1: 1.0})
    snap = b.snapshot()
    assert hash_key(issued.secret) in snap.tenants_by_key_hash
    assert snap.routes == {"support": {1: 1.0}}
    a.dispose()
    b.dispose()


def test_a_state_move_can_require_the_state_it_moves_from(store: StateStore) -> None:
    """The stale-loading reconciler and a late "ready" cannot undo each other."""
    store.create_version("support", "/a/1")
    failed = store.set_version_state(
        "support", 1, VersionState.FAILED, error="stale", expect=VersionState.LOADING
    )
    assert failed.state is VersionState.FAILED
    with pytest.raises(Conflict) as e:
        store.set_version_state("support", 1, VersionState.READY, expect=VersionState.LOADING)
    assert e.value.code == "version_state_changed"
    assert store.get_version("support", 1).state is VersionState.FAILED
