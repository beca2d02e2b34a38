"""The one schema of the shared state database, created and upgraded by Alembic at start.

On SQLite always, on PostgreSQL when DRIFTGATE_TEST_POSTGRES_URL is set (fails under CI
without it): a fresh database gets every table at the head revision; a database of the
previous release (tables from plain ``create_all``, no ``alembic_version``) is upgraded
in place by the stores' own start; starting again, or many at once, changes nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, column, func, insert, inspect, select, table, text

from drift.store import DriftStore, FeedbackWrite
from driftgate.core.state import StateStore, hash_key, migrate
from driftgate.core.state.engine import make_engine
from driftgate.core.state.schema import control, drift, metadata, runs
from retrain.runs import RunStore
from rollout.store import RolloutStore
from tests.database import wipe
from tests.real_parts import skip_or_fail

#: Tables the previous release had created when only the gateway and the drift service
#: had started (no retrain job, no rollout yet): services created their own on start.
GATEWAY_AND_DRIFT = (
    "dg_tenants",
    "dg_api_keys",
    "dg_adapters",
    "dg_adapter_versions",
    "dg_routes",
    "drift_requests",
    "drift_feedback",
    "drift_alarms",
    "drift_triggers",
    "drift_references",
)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    pg = os.environ.get("DRIFTGATE_TEST_POSTGRES_URL") or skip_or_fail(
        "no PostgreSQL: set DRIFTGATE_TEST_POSTGRES_URL (scripts/start_test_postgres.sh)"
    )
    engine = make_engine(pg)
    wipe(engine)
    yield pg
    wipe(engine)
    engine.dispose()


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    e = make_engine(url)
    yield e
    e.dispose()


def _schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(metadata.tables[table])
        return int(conn.execute(query).scalar_one())


def _versions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]


def test_a_fresh_database_gets_every_table_at_head(engine: Engine) -> None:
    assert migrate.current(engine) is None
    assert migrate.upgrade(engine) == migrate.head()
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    assert _schema_diff(engine) == []  # exactly the schema the code declares
    assert _versions(engine) == [migrate.head()]


def test_every_store_starts_on_the_one_schema(url: str, engine: Engine) -> None:
    stores = [StateStore(url), DriftStore.from_url(url), RunStore(url), RolloutStore(url)]
    for store in stores:
        store.create_all()
    assert migrate.current(engine) == migrate.head()
    assert _schema_diff(engine) == []
    for store in stores:
        store.engine.dispose()


def _previous_release(engine: Engine, tables: tuple[str, ...]) -> None:
    """What the previous release left: plain ``create_all`` per service, rows, no revision."""
    metadata.create_all(engine, tables=[metadata.tables[t] for t in tables])
    now = time.time()
    with engine.begin() as conn:
        tenant_id = conn.execute(
            insert(control.TenantRow.__table__).values(
                name="acme",
                adapters=["*"],
                rate_limit_rps=5.0,
                burst=10,
                max_tokens=64,
                created_at=now,
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(control.ApiKeyRow.__table__).values(
                key_hash="h" * 64, tenant_id=tenant_id, prefix="dg-abc", created_at=now
            )
        )
        conn.execute(insert(control.AdapterRow.__table__).values(name="support", created_at=now))
        row = {c: None for c in drift.REQUEST_COLUMNS} | {
            "event_id": "e1",
            "request_id": "r1",
            "ts": now,
            "tenant": "acme",
            "adapter": "support",
            "version": 1,
            "endpoint": "chat",
            "stream": False,
            "status_code": 200,
            "prompt_tokens": 3,
            "completion_tokens": 4,
            "latency_ms": 5.0,
            "empty": False,
            "refusal": False,
            "pinned": False,
        }
        conn.execute(insert(drift.requests).values(row))
        if "retrain_runs" in tables:
            conn.execute(
                insert(runs.retrain_runs).values(
                    id="run1", adapter="support", reason="drift", started_at=now, outcome="running"
                )
            )


@pytest.mark.parametrize(
    "tables",
    [tuple(metadata.tables), GATEWAY_AND_DRIFT],
    ids=["every-table", "gateway-and-drift-only"],
)
def test_a_previous_release_database_is_upgraded_in_place(
    url: str, engine: Engine, tables: tuple[str, ...]
) -> None:
    _previous_release(engine, tables)
    with engine.connect() as conn:
        assert migrate.is_previous_release(conn)
    before = {t: _count(engine, t) for t in tables}
    assert before["dg_tenants"] == before["drift_requests"] == 1

    state = StateStore(url)
    state.create_all()  # the gateway's start
    assert migrate.current(engine) == migrate.head()
    assert state.tenant_for_key("never issued") is None
    assert [t.name for t in state.list_tenants()] == ["acme"]
    for other in (DriftStore.from_url(url), RunStore(url), RolloutStore(url)):
        other.create_all()  # the drift service's, the retrain job's, the rollout's start
        if isinstance(other, DriftStore):
            assert other.counts()["drift_requests"] == 1
        other.engine.dispose()
    state.dispose()

    assert {t: _count(engine, t) for t in tables} == before
    assert _schema_diff(engine) == []  # the tables the old release never made exist now
    assert _versions(engine) == [migrate.head()]
    with engine.connect() as conn:
        assert not migrate.is_previous_release(conn)


def test_a_baseline_database_gets_training_opt_ins_on_upgrade(url: str, engine: Engine) -> None:
    """A database the previous release migrated (revision 0001, with rows) gains
    ``dg_training_opt_ins`` at the next start; its rows stay; nobody is opted in."""
    from alembic import command

    with engine.connect() as conn:
        command.upgrade(migrate._config(conn), migrate.BASELINE)
        conn.commit()
    assert migrate.current(engine) == migrate.BASELINE
    assert not inspect(engine).has_table("dg_training_opt_ins")
    now = time.time()
    with engine.begin() as conn:
        conn.execute(
            insert(control.TenantRow.__table__).values(
                name="acme", adapters=["*"], rate_limit_rps=1.0, burst=1, max_tokens=8,
                created_at=now,
            )
        )  # fmt: skip
        conn.execute(insert(control.AdapterRow.__table__).values(name="support", created_at=now))

    state = StateStore(url)
    try:
        state.create_all()  # the gateway's start
        assert migrate.current(engine) == migrate.head()
        assert inspect(engine).has_table("dg_training_opt_ins")
        assert _schema_diff(engine) == []
        assert [t.name for t in state.list_tenants()] == ["acme"]
        assert state.training_tenants("support") == ()
        assert state.set_training_tenants("support", ["acme"]).training_tenants == ("acme",)
    finally:
        state.dispose()
    assert _versions(engine) == [migrate.head()]


def test_keys_of_a_0003_database_keep_working_after_0004(url: str, engine: Engine) -> None:
    """``0004_api_key_id_expiry`` on a database at 0003 with keys: each key gets an id of
    its own, none expires, every one still finds its tenant."""
    from alembic import command

    with engine.connect() as conn:
        migrate._lock(conn)
        command.upgrade(migrate._config(conn), "0003_training_opt_in")
        conn.commit()
    assert migrate.current(engine) == "0003_training_opt_in"
    now = time.time()
    # The table as 0003 has it (no key_id, no expires_at): not the current ORM table.
    keys_0003 = table(
        "dg_api_keys",
        column("key_hash"),
        column("tenant_id"),
        column("prefix"),
        column("created_at"),
    )
    old_keys = ["dg-old-key-one", "dg-old-key-two"]
    with engine.begin() as conn:
        tenant_id = conn.execute(
            insert(control.TenantRow.__table__).values(
                name="acme",
                adapters=["*"],
                rate_limit_rps=1.0,
                burst=1,
                max_tokens=8,
                created_at=now,
            )
        ).inserted_primary_key[0]
        for secret in old_keys:
            conn.execute(
                insert(keys_0003).values(
                    key_hash=hash_key(secret), tenant_id=tenant_id, prefix=secret[:8],
                    created_at=now,
                )
            )  # fmt: skip

    state = StateStore(url)
    try:
        state.create_all()  # the gateway's start
        assert migrate.current(engine) == migrate.head()
        assert _schema_diff(engine) == []
        for secret in old_keys:
            tenant = state.tenant_for_key(secret)
            assert tenant is not None and tenant.name == "acme"
        listed = state.list_api_keys("acme")
        assert [k.expires_at for k in listed] == [None, None]
        ids = {k.key_id for k in listed}
        assert len(ids) == 2 and all(i.startswith("key_") for i in ids)
        snap = state.snapshot()
        assert snap.key_expiry == {}
        assert {hash_key(s) for s in old_keys} <= set(snap.tenants_by_key_hash)
        # and the new ids work: one key revoked, the other still valid
        state.revoke_api_key("acme", listed[0].key_id)
        assert sum(state.tenant_for_key(s) is not None for s in old_keys) == 1
    finally:
        state.dispose()
    assert _versions(engine) == [migrate.head()]


def test_starting_again_is_a_no_op(url: str, engine: Engine) -> None:
    store = StateStore(url)
    store.create_all()
    store.create_tenant("acme", adapters=["*"], rate_limit_rps=1, burst=1, max_tokens=8)
    store.create_all()
    store.dispose()
    migrate.upgrade(engine)
    assert _count(engine, "dg_tenants") == 1
    assert _versions(engine) == [migrate.head()]
    assert _schema_diff(engine) == []


def test_concurrent_starts_all_succeed_and_migrate_once(url: str, engine: Engine) -> None:
    """Gateway replicas, the drift service and the retrain job starting at once."""

    def start(_: int) -> str:
        own = make_engine(url)
        try:
            return migrate.upgrade(own)
        finally:
            own.dispose()

    with ThreadPoolExecutor(6) as pool:
        revisions = list(pool.map(start, range(6)))
    assert revisions == [migrate.head()] * 6
    assert _versions(engine) == [migrate.head()]
    assert _schema_diff(engine) == []


def test_duplicate_votes_of_a_baseline_database_are_folded_into_the_latest(
    url: str, engine: Engine
) -> None:
    """``0002_feedback_one_vote`` on a database at the baseline that holds repeated votes:
    each (request, tenant) keeps its newest row, old request rows read as not pinned."""
    from alembic import command

    with engine.connect() as conn:
        migrate._lock(conn)
        command.upgrade(migrate._config(conn), migrate.BASELINE)
        conn.commit()
    assert migrate.current(engine) == migrate.BASELINE
    now = time.time()
    with engine.begin() as conn:
        conn.execute(
            insert(drift.requests).values(
                event_id="e1", request_id="r1", ts=now, tenant="acme", adapter="support",
                version=1, endpoint="chat", stream=False, status_code=200, prompt_tokens=1,
                completion_tokens=1, latency_ms=1.0, empty=False, refusal=False,
            )
        )  # fmt: skip
        votes = [
            ("r1", "acme", 1.0),
            ("r1", "acme", 0.0),  # acme changed its mind: this one stays
            ("r1", "globex", 1.0),
            ("r2", "acme", 1.0),
            ("r2", "acme", 1.0),
            ("r2", "acme", 0.5),
        ]
        conn.execute(
            insert(drift.feedback),
            [
                {"event_id": f"f{i}", "request_id": r, "ts": now + i, "tenant": t,
                 "score": score, "negative": score < 0.5}
                for i, (r, t, score) in enumerate(votes)
            ],
        )  # fmt: skip

    store = DriftStore.from_url(url)
    store.create_all()  # the drift service's start
    assert migrate.current(engine) == migrate.head()
    assert _schema_diff(engine) == []
    with engine.connect() as conn:
        kept = conn.execute(
            select(drift.feedback.c.event_id, drift.feedback.c.score).order_by(drift.feedback.c.id)
        ).all()
        pinned = conn.execute(select(drift.requests.c.pinned)).scalars().all()
    assert [tuple(r) for r in kept] == [("f1", 0.0), ("f2", 1.0), ("f5", 0.5)]
    assert pinned == [False]
    # from now on a repeated vote replaces, in place
    row = {"event_id": "f6", "request_id": "r2", "ts": now, "tenant": "acme", "score": 1.0,
           "label": None, "correction": None, "negative": False}  # fmt: skip
    assert store.write_feedback(row) is FeedbackWrite.REPLACED
    assert store.counts()["drift_feedback"] == 3
    store.close()


def test_the_recorded_head_is_alembics_head() -> None:
    """``HEAD_REVISION`` lets a start skip Alembic; a new revision must bump it."""
    assert migrate.head() == migrate.HEAD_REVISION


def test_a_start_on_a_current_database_does_not_load_alembic(tmp_path: Path) -> None:
    """Gateway replicas usually find the schema migrated by another process: they check the
    revision with one query and never import Alembic (about 11 MiB per process)."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'state.db'}"
    migrate.upgrade(make_engine(url))
    code = (
        "import sys; from driftgate.core.state import StateStore; "
        f"StateStore({url!r}).create_all(); print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tenants_of_an_earlier_revision_gain_unlimited_limits(url: str, engine: Engine) -> None:
    """A database at 0003 (tenants without ``tokens_per_minute`` / ``max_concurrent``)
    gains both columns at the next start, 0 (unlimited) for the tenants already there."""
    from alembic import command

    with engine.connect() as conn:
        command.upgrade(migrate._config(conn), "0003_training_opt_in")
        conn.commit()
    assert "max_concurrent" not in {c["name"] for c in inspect(engine).get_columns("dg_tenants")}
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO dg_tenants (name, adapters, rate_limit_rps, burst, max_tokens, "
                "created_at) VALUES ('acme', '[\"*\"]', 1.0, 1, 8, 0)"
            )
        )

    state = StateStore(url)
    try:
        state.create_all()  # the gateway's start
        assert migrate.current(engine) == migrate.head()
        assert _schema_diff(engine) == []
        (acme,) = state.list_tenants()
        assert (acme.tokens_per_minute, acme.max_concurrent) == (0, 0)
        changed = state.update_tenant("acme", tokens_per_minute=500, max_concurrent=2)
        assert (changed.tokens_per_minute, changed.max_concurrent) == (500, 2)
    finally:
        state.dispose()
    assert _versions(engine) == [migrate.head()]


def test_requests_of_an_earlier_revision_gain_empty_confidence_columns(
    url: str, engine: Engine
) -> None:
    """A database at 0006 (request rows without answer confidence) gains ``mean_logprob``
    and ``first_token_margin`` at the drift service's next start, null for the rows there."""
    from alembic import command

    with engine.connect() as conn:
        command.upgrade(migrate._config(conn), "0006_served_request")
        conn.commit()
    names = {c["name"] for c in inspect(engine).get_columns("drift_requests")}
    assert "mean_logprob" not in names and "first_token_margin" not in names
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO drift_requests (event_id, request_id, ts, tenant, adapter, version, "
                "endpoint, stream, status_code, prompt_tokens, completion_tokens, latency_ms, "
                "empty, refusal, pinned) VALUES ('e1', 'r1', 0, 'acme', 'support', 1, 'chat', "
                "false, 200, 3, 4, 5.0, false, false, false)"
            )
        )

    store = DriftStore.from_url(url)
    try:
        store.create_all()  # the drift service's start
        assert migrate.current(engine) == migrate.head()
        assert _schema_diff(engine) == []
        (row,) = store.recent_requests("support", 1, 10)
        assert (row["mean_logprob"], row["first_token_margin"]) == (None, None)
    finally:
        store.close()
    assert _versions(engine) == [migrate.head()]
