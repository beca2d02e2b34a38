"""Training opt-in in the state store (``driftgate.core.state.training_opt_in``), on SQLite
(and PostgreSQL when DRIFTGATE_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftgate.core.errors import InvalidRequest, NotFound
from driftgate.core.state import StateStore
from tests.database import wipe
from tests.real_parts import skip_or_fail


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "postgres":
        url = os.environ.get("DRIFTGATE_TEST_POSTGRES_URL") or skip_or_fail(
            "no PostgreSQL: set DRIFTGATE_TEST_POSTGRES_URL to run these"
        )
        s = StateStore(url)
        wipe(s.engine)
    else:
        s = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    s.create_all()
    for name, adapters in (("acme", ["support"]), ("globex", ["*"]), ("initech", ["billing"])):
        s.create_tenant(name, adapters=adapters, rate_limit_rps=1, burst=1, max_tokens=8)
    s.create_version("support", "/r/support/1")
    s.create_version("billing", "/r/billing/1")
    yield s
    s.dispose()


def test_nobody_is_opted_in_by_default(store: StateStore) -> None:
    assert store.training_tenants("support") == ()
    assert store.get_adapter("support").training_tenants == ()
    assert store.training_tenants("never-registered") == ()


def test_the_list_is_set_replaced_and_cleared(store: StateStore) -> None:
    info = store.set_training_tenants("support", ["globex", "acme", "acme"])
    assert info.name == "support" and info.training_tenants == ("acme", "globex")
    assert store.get_adapter("support").as_dict()["training_tenants"] == ["acme", "globex"]
    assert store.set_training_tenants("support", ["globex"]).training_tenants == ("globex",)
    assert store.training_tenants("billing") == ()  # per adapter
    assert store.set_training_tenants("support", []).training_tenants == ()
    assert store.training_tenants("support") == ()


def test_refusals_change_nothing(store: StateStore) -> None:
    store.set_training_tenants("support", ["acme"])
    with pytest.raises(NotFound) as unknown:
        store.set_training_tenants("support", ["acme", "nobody"])
    assert unknown.value.code == "tenant_not_found"
    with pytest.raises(InvalidRequest) as not_allowed:
        store.set_training_tenants("support", ["initech"])  # may use billing only
    assert not_allowed.value.code == "tenant_not_allowed"
    with pytest.raises(NotFound) as no_adapter:
        store.set_training_tenants("unregistered", ["globex"])
    assert no_adapter.value.code == "adapter_not_found"
    with pytest.raises(InvalidRequest):
        store.set_training_tenants("Not A Name", ["globex"])
    assert store.training_tenants("support") == ("acme",)


def test_deleting_a_tenant_withdraws_its_opt_in(store: StateStore) -> None:
    """A new tenant under a deleted one's name is a different tenant: not opted in."""
    store.set_training_tenants("support", ["acme", "globex"])
    store.delete_tenant("acme")
    assert store.training_tenants("support") == ("globex",)
    store.create_tenant("acme", adapters=["support"], rate_limit_rps=1, burst=1, max_tokens=8)
    assert store.training_tenants("support") == ("globex",)
