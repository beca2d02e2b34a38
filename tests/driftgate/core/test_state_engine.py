"""The one engine factory of the shared state database."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from driftgate.core.state.engine import SQLITE_BUSY_TIMEOUT_S, make_engine


def _pragma(url: str, name: str, **kw: str) -> object:
    engine = make_engine(url, **kw)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(f"PRAGMA {name}").scalar()
    finally:
        engine.dispose()


def test_sqlite_file_gets_wal_foreign_keys_busy_timeout_and_full_sync(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    assert _pragma(url, "journal_mode") == "wal"
    assert _pragma(url, "foreign_keys") == 1
    assert _pragma(url, "busy_timeout") == int(SQLITE_BUSY_TIMEOUT_S * 1000)
    assert _pragma(url, "synchronous") == 2  # FULL
    assert _pragma(url, "synchronous", sqlite_synchronous="NORMAL") == 1


def test_sqlite_in_memory_is_one_database_for_every_thread() -> None:
    engine = make_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    engine.dispose()


def test_an_unknown_synchronous_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="synchronous"):
        make_engine("sqlite://", sqlite_synchronous="FAST")


def test_postgresql_pings_and_recycles_pooled_connections() -> None:
    engine = make_engine("postgresql+psycopg://u@127.0.0.1:1/db")
    assert engine.pool._pre_ping
    assert engine.pool._recycle > 0
    engine.dispose()


def test_a_new_file_switches_to_wal_once_another_writer_lets_go(tmp_path: Path) -> None:
    """Replicas starting together on a new file: while one holds the write lock of a file
    not yet in WAL (a migration's BEGIN IMMEDIATE), SQLite refuses another's WAL switch at
    once, without its busy handler; the factory waits for the lock instead."""
    path = tmp_path / "state.db"
    writer = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, writer.execute, args=("COMMIT",))
    release.start()
    try:
        assert _pragma(f"sqlite:///{path}", "journal_mode") == "wal"
    finally:
        release.join()
        writer.close()
