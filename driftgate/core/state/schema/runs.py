"""``retrain_runs``: every retrain run and its outcome (written by ``retrain.runs``)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Integer, String, Table, Text

from driftgate.core.state.schema.base import metadata

retrain_runs = Table(
    "retrain_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("adapter", String(64), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("started_at", Float, nullable=False, index=True),
    Column("finished_at", Float),
    Column("duration_s", Float),
    Column("outcome", String(32), nullable=False),
    Column("message", Text),
    Column("candidate_version", Integer),
    Column("serving_version", Integer),
    Column("candidate_score", Float),
    Column("serving_score", Float),
    Column("candidate_golden", Float),
    Column("serving_golden", Float),
    Column("dataset_size", Integer),
    Column("dataset_hash", String(80)),
    Column("details", JSON),
)
