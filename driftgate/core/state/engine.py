"""The one SQLAlchemy engine factory of the shared state database (SQLite or PostgreSQL).

Every store (control plane, heartbeats, rollouts, drift, retrain runs) opens its engine
here, so all of them talk to the one database with the same settings.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import StaticPool

#: How long a SQLite writer waits for another one before "database is locked". The
#: longest of the former per-store values (10 s, 10 s, 30 s): several gateway replicas,
#: the drift service and the retrain job write to one file, and a start-up migration
#: holds the write lock for a moment; waiting longer costs nothing when there is no
#: contention, failing costs a lost write.
SQLITE_BUSY_TIMEOUT_S = 30.0

#: PostgreSQL connections older than this are replaced before use: load balancers and
#: server-side idle timeouts drop idle connections silently (pool_pre_ping catches the
#: rest at the cost of one round trip per checkout).
PG_POOL_RECYCLE_S = 1800

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")


def _null(value: None) -> None:
    return value


def is_memory_sqlite(url: str) -> bool:
    return url in ("sqlite://", "sqlite:///:memory:")


#: Pause between tries to switch a new database file to WAL.
WAL_SWITCH_RETRY_S = 0.02


def _switch_to_wal(cur: Any, *, deadline: float) -> None:
    """Put the database file in WAL mode, waiting out other connections that hold it.

    The mode is stored in the file once it has a page, so after the first write this is
    one read. Until then another process may hold the write lock of the still-rollback
    file (a replica's start-up migration), and SQLite refuses the switch at once, without
    its busy handler: replicas starting together on a new file meet exactly that.
    """
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(WAL_SWITCH_RETRY_S)


def _sqlite_pragmas(*, wal: bool, synchronous: str) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        if wal:
            _switch_to_wal(cur, deadline=time.monotonic() + SQLITE_BUSY_TIMEOUT_S)
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return on_connect


def make_engine(url: str, *, sqlite_synchronous: str = "FULL") -> Engine:
    """An engine for ``url``.

    SQLite: WAL (file databases), ``synchronous`` as given (FULL: a committed write
    survives a power cut; the drift service may choose NORMAL for throughput), a busy
    timeout of :data:`SQLITE_BUSY_TIMEOUT_S` and foreign keys enforced (the cascades of
    API keys, versions, routes and rollout transitions rely on them); usable from any
    thread. PostgreSQL: a pre-ping on checkout and a recycle after
    :data:`PG_POOL_RECYCLE_S`.
    """
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_recycle=PG_POOL_RECYCLE_S)
    mode = sqlite_synchronous.upper()
    if mode not in SYNCHRONOUS_MODES:
        raise ValueError(f"sqlite synchronous must be one of {SYNCHRONOUS_MODES}, not {mode!r}")
    # The sqlite3 driver binds None through its adapter lookup, which costs ~1 us per
    # NULL when no adapter is registered (AttributeError probes for __adapt__ and
    # __conform__); an identity adapter makes it a dict hit. NULL is bound either way,
    # so registering it process-wide changes no other user of sqlite3.
    sqlite3.register_adapter(type(None), _null)
    memory = is_memory_sqlite(url)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        poolclass=StaticPool if memory else None,
    )
    event.listen(engine, "connect", _sqlite_pragmas(wal=not memory, synchronous=mode))
    return engine
