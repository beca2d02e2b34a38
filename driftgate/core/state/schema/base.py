"""The one ``MetaData`` every table of the shared state database is defined on."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

#: Every table of the database; :mod:`driftgate.core.state.migrate` creates and upgrades them.
metadata = MetaData()


class Base(DeclarativeBase):
    """Declarative base of the ORM-mapped tables (control plane, heartbeats, rollouts)."""

    metadata = metadata
