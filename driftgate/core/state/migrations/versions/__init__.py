"""Alembic revisions of the shared state database, oldest first."""
