"""Baseline: the schema of the release before migrations, created table by table.

The previous release created each service's tables with ``metadata.create_all`` when that
service first started, so its database may hold any subset of them. This revision
creates only the tables that are absent (with their indexes): on such a database it
fills the gaps and records the baseline without touching a row; on an empty one it
creates everything.

Revision ID: 0001_baseline
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

#: Every table of the baseline, parents before children.
TABLES = (
    "dg_adapters",
    "dg_gateway_heartbeats",
    "dg_rollouts",
    "dg_tenants",
    "drift_alarms",
    "drift_feedback",
    "drift_references",
    "drift_requests",
    "drift_triggers",
    "retrain_runs",
    "dg_adapter_versions",
    "dg_api_keys",
    "dg_rollout_transitions",
    "dg_routes",
)


def _absent(table: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    if _absent("dg_adapters"):
        op.create_table(
            "dg_adapters",
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("name"),
        )
    if _absent("dg_gateway_heartbeats"):
        op.create_table(
            "dg_gateway_heartbeats",
            sa.Column("gateway_id", sa.String(length=128), nullable=False),
            sa.Column("ts", sa.Float(), nullable=False),
            sa.Column("routes_hash", sa.String(length=64), nullable=False),
            sa.Column("applied_at", sa.Float(), nullable=False),
            sa.Column("in_flight", sa.JSON(), nullable=False),
            sa.PrimaryKeyConstraint("gateway_id"),
        )
        op.create_index(
            op.f("ix_dg_gateway_heartbeats_ts"),
            "dg_gateway_heartbeats",
            ["ts"],
            unique=False,
        )
    if _absent("dg_rollouts"):
        op.create_table(
            "dg_rollouts",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("adapter", sa.String(length=64), nullable=False),
            sa.Column("path", sa.Text(), nullable=False),
            sa.Column("state", sa.String(length=16), nullable=False),
            sa.Column("candidate_version", sa.Integer(), nullable=True),
            sa.Column("serving_version", sa.Integer(), nullable=True),
            sa.Column("canary_weight", sa.Float(), nullable=False),
            sa.Column("approved", sa.Boolean(), nullable=False),
            sa.Column("command", sa.String(length=16), nullable=True),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("outcome", sa.String(length=16), nullable=True),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("updated_at", sa.Float(), nullable=False),
            sa.Column("loading_started_at", sa.Float(), nullable=True),
            sa.Column("canary_started_at", sa.Float(), nullable=True),
            sa.Column("decided_at", sa.Float(), nullable=True),
            sa.Column("drain_started_at", sa.Float(), nullable=True),
            sa.Column("finished_at", sa.Float(), nullable=True),
            sa.Column("decision", sa.JSON(), nullable=False),
            sa.Column("meta", sa.JSON(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(op.f("ix_dg_rollouts_adapter"), "dg_rollouts", ["adapter"], unique=False)
        op.create_index(op.f("ix_dg_rollouts_state"), "dg_rollouts", ["state"], unique=False)
    if _absent("dg_tenants"):
        op.create_table(
            "dg_tenants",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("name", sa.String(length=128), nullable=False),
            sa.Column("adapters", sa.JSON(), nullable=False),
            sa.Column("rate_limit_rps", sa.Float(), nullable=False),
            sa.Column("burst", sa.Integer(), nullable=False),
            sa.Column("max_tokens", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("name"),
        )
    if _absent("drift_alarms"):
        op.create_table(
            "drift_alarms",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("ts", sa.Float(), nullable=False),
            sa.Column("adapter", sa.String(length=128), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("signal", sa.String(length=64), nullable=False),
            sa.Column("detector", sa.String(length=64), nullable=False),
            sa.Column("confirmed", sa.Boolean(), nullable=False),
            sa.Column("score", sa.Float(), nullable=False),
            sa.Column("p_value", sa.Float(), nullable=True),
            sa.Column("detail", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(
            "ix_drift_alarms_adapter_version",
            "drift_alarms",
            ["adapter", "version"],
            unique=False,
        )
    if _absent("drift_feedback"):
        op.create_table(
            "drift_feedback",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("event_id", sa.String(length=64), nullable=False),
            sa.Column("request_id", sa.String(length=128), nullable=False),
            sa.Column("ts", sa.Float(), nullable=False),
            sa.Column("tenant", sa.String(length=128), nullable=False),
            sa.Column("score", sa.Float(), nullable=True),
            sa.Column("label", sa.String(length=256), nullable=True),
            sa.Column("correction", sa.Text(), nullable=True),
            sa.Column("negative", sa.Boolean(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("event_id"),
        )
        op.create_index(
            op.f("ix_drift_feedback_request_id"),
            "drift_feedback",
            ["request_id"],
            unique=False,
        )
        op.create_index(op.f("ix_drift_feedback_ts"), "drift_feedback", ["ts"], unique=False)
    if _absent("drift_references"):
        op.create_table(
            "drift_references",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("adapter", sa.String(length=128), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("signal", sa.String(length=64), nullable=False),
            sa.Column("source", sa.String(length=16), nullable=False),
            sa.Column("created_ts", sa.Float(), nullable=False),
            sa.Column("values_json", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("adapter", "version", "signal", name="uq_drift_references_signal"),
        )
    if _absent("drift_requests"):
        op.create_table(
            "drift_requests",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("event_id", sa.String(length=64), nullable=False),
            sa.Column("request_id", sa.String(length=128), nullable=False),
            sa.Column("ts", sa.Float(), nullable=False),
            sa.Column("tenant", sa.String(length=128), nullable=False),
            sa.Column("adapter", sa.String(length=128), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("endpoint", sa.String(length=16), nullable=False),
            sa.Column("stream", sa.Boolean(), nullable=False),
            sa.Column("status_code", sa.Integer(), nullable=False),
            sa.Column("replica", sa.String(length=256), nullable=True),
            sa.Column("prompt_text", sa.Text(), nullable=True),
            sa.Column("completion_text", sa.Text(), nullable=True),
            sa.Column("prompt_sha256", sa.String(length=64), nullable=True),
            sa.Column("completion_sha256", sa.String(length=64), nullable=True),
            sa.Column("prompt_tokens", sa.Integer(), nullable=False),
            sa.Column("completion_tokens", sa.Integer(), nullable=False),
            sa.Column("latency_ms", sa.Float(), nullable=False),
            sa.Column("ttft_ms", sa.Float(), nullable=True),
            sa.Column("finish_reason", sa.String(length=32), nullable=True),
            sa.Column("empty", sa.Boolean(), nullable=False),
            sa.Column("refusal", sa.Boolean(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("event_id"),
        )
        op.create_index(
            "ix_drift_requests_adapter_version_id",
            "drift_requests",
            ["adapter", "version", "id"],
            unique=False,
        )
        op.create_index(
            op.f("ix_drift_requests_request_id"),
            "drift_requests",
            ["request_id"],
            unique=False,
        )
        op.create_index(op.f("ix_drift_requests_ts"), "drift_requests", ["ts"], unique=False)
    if _absent("drift_triggers"):
        op.create_table(
            "drift_triggers",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("ts", sa.Float(), nullable=False),
            sa.Column("adapter", sa.String(length=128), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("mode", sa.String(length=16), nullable=False),
            sa.Column("outcome", sa.String(length=32), nullable=False),
            sa.Column("detail", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(
            op.f("ix_drift_triggers_adapter"),
            "drift_triggers",
            ["adapter"],
            unique=False,
        )
    if _absent("retrain_runs"):
        op.create_table(
            "retrain_runs",
            sa.Column("id", sa.String(length=32), nullable=False),
            sa.Column("adapter", sa.String(length=64), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("started_at", sa.Float(), nullable=False),
            sa.Column("finished_at", sa.Float(), nullable=True),
            sa.Column("duration_s", sa.Float(), nullable=True),
            sa.Column("outcome", sa.String(length=32), nullable=False),
            sa.Column("message", sa.Text(), nullable=True),
            sa.Column("candidate_version", sa.Integer(), nullable=True),
            sa.Column("serving_version", sa.Integer(), nullable=True),
            sa.Column("candidate_score", sa.Float(), nullable=True),
            sa.Column("serving_score", sa.Float(), nullable=True),
            sa.Column("candidate_golden", sa.Float(), nullable=True),
            sa.Column("serving_golden", sa.Float(), nullable=True),
            sa.Column("dataset_size", sa.Integer(), nullable=True),
            sa.Column("dataset_hash", sa.String(length=80), nullable=True),
            sa.Column("details", sa.JSON(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(op.f("ix_retrain_runs_adapter"), "retrain_runs", ["adapter"], unique=False)
        op.create_index(
            op.f("ix_retrain_runs_started_at"),
            "retrain_runs",
            ["started_at"],
            unique=False,
        )
    if _absent("dg_adapter_versions"):
        op.create_table(
            "dg_adapter_versions",
            sa.Column("adapter", sa.String(length=64), nullable=False),
            sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("path", sa.Text(), nullable=False),
            sa.Column("state", sa.String(length=16), nullable=False),
            sa.Column("meta", sa.JSON(), nullable=False),
            sa.Column("error", sa.Text(), nullable=True),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("updated_at", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(["adapter"], ["dg_adapters.name"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("adapter", "version"),
        )
    if _absent("dg_api_keys"):
        op.create_table(
            "dg_api_keys",
            sa.Column("key_hash", sa.String(length=64), nullable=False),
            sa.Column("tenant_id", sa.Integer(), nullable=False),
            sa.Column("prefix", sa.String(length=16), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(["tenant_id"], ["dg_tenants.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("key_hash"),
        )
        op.create_index(
            op.f("ix_dg_api_keys_tenant_id"),
            "dg_api_keys",
            ["tenant_id"],
            unique=False,
        )
    if _absent("dg_rollout_transitions"):
        op.create_table(
            "dg_rollout_transitions",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("rollout_id", sa.Integer(), nullable=False),
            sa.Column("ts", sa.Float(), nullable=False),
            sa.Column("from_state", sa.String(length=16), nullable=True),
            sa.Column("to_state", sa.String(length=16), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("stats", sa.JSON(), nullable=False),
            sa.ForeignKeyConstraint(["rollout_id"], ["dg_rollouts.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(
            op.f("ix_dg_rollout_transitions_rollout_id"),
            "dg_rollout_transitions",
            ["rollout_id"],
            unique=False,
        )
    if _absent("dg_routes"):
        op.create_table(
            "dg_routes",
            sa.Column("adapter", sa.String(length=64), nullable=False),
            sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("weight", sa.Float(), nullable=False),
            sa.Column("updated_at", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(["adapter"], ["dg_adapters.name"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("adapter", "version"),
        )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
