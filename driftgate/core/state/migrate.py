"""Create and upgrade every table of the shared state database: Alembic, run in-process.

Every store's ``create_all()`` calls :func:`upgrade` at start, so whichever service
starts first brings the database to the head revision and the others find nothing to
do. The revisions ship inside the package (``driftgate/core/state/migrations``); no
``alembic.ini`` is read.

Concurrent starts (gateway replicas, the drift service, the retrain job on one
database) are serialized: PostgreSQL takes a transaction-scoped advisory lock and runs
the whole upgrade in that one transaction (its DDL is transactional); SQLite takes the
write lock first (``BEGIN IMMEDIATE``; the others wait up to the busy timeout). The
second starter then reads the head revision and changes nothing.

A database of the previous release (its tables, no ``alembic_version``) is adopted in
place: the baseline revision creates only the tables it lacks, which records the
baseline; later revisions then apply as usual. The baseline touches no row; a later
revision changes rows only as its docstring says (``0002_feedback_one_vote`` removes
superseded duplicate votes, ``0004_api_key_id_expiry`` gives each API key an id).

A database already at :data:`HEAD_REVISION` is recognised with one plain query, without
importing Alembic: that import costs a process about 11 MiB, and gateway replicas
usually start against a database another process migrated.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from driftgate.core.state.schema import metadata

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

SCRIPT_LOCATION = "driftgate.core.state:migrations"

#: The revision that creates the schema of the release before migrations existed.
BASELINE = "0001_baseline"

#: The newest revision shipped (a test checks it is Alembic's head): bump it with each one.
HEAD_REVISION = "0008_review_queue"

#: Key of the PostgreSQL advisory lock held while migrating ("dgschema" in ASCII).
PG_LOCK_KEY = 0x6467736368656D61


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision shipped with this release, as Alembic reads the scripts."""
    from alembic.script import ScriptDirectory

    rev = ScriptDirectory.from_config(_config()).get_current_head()
    if rev is None:
        raise RuntimeError("no Alembic revisions in driftgate.core.state.migrations")
    return rev


def current(engine: Engine) -> str | None:
    """The revision the database is at; ``None`` when it was never migrated."""
    with engine.connect() as conn:
        return _recorded(conn)


def _recorded(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return str(rows[0]) if len(rows) == 1 else None


def is_previous_release(conn: Connection) -> bool:
    """Tables of ours but no recorded revision: created by ``create_all`` before Alembic."""
    if _recorded(conn) is not None:
        return False
    present = set(inspect(conn).get_table_names())
    return bool(present & set(metadata.tables))


def _lock(conn: Connection) -> None:
    """Serialize migrations across processes until ``conn`` commits."""
    name = conn.dialect.name
    if name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
    elif name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        raise ValueError(f"unsupported database {name!r} (SQLite or PostgreSQL)")


def upgrade(engine: Engine) -> str:
    """Bring the database to :func:`head` (idempotent, safe to run concurrently)."""
    if current(engine) == HEAD_REVISION:
        return HEAD_REVISION
    from alembic import command

    with engine.connect() as conn:
        _lock(conn)
        if is_previous_release(conn):
            log.info("adopting a database of the previous release at %s", BASELINE)
        command.upgrade(_config(conn), "head")
        rev = _recorded(conn)
        conn.commit()
    if rev is None:
        raise RuntimeError("the migration recorded no revision")
    return rev
