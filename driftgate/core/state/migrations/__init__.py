"""The Alembic environment of the shared state database.

Run by :mod:`driftgate.core.state.migrate`.
"""
