"""Alembic's environment, run in-process on the connection that
:func:`driftgate.core.state.migrate.upgrade` opened, locked and will commit (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from driftgate.core.state.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run migrations through driftgate.core.state.migrate.upgrade(engine)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
