"""A clean shared state database for tests that run on one PostgreSQL server."""

from __future__ import annotations

from sqlalchemy import Engine, text

from driftgate.core.state.schema import metadata


def wipe(engine: Engine) -> None:
    """Drop every table of ours and the recorded revision: the next start migrates afresh."""
    metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
