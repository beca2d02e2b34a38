"""The review queue: ``drift_review_items`` (requests picked for a reviewer's label when a
version's drift is confirmed), and ``drift_feedback.source`` (``client`` for the rows
already there and for ``POST /v1/feedback``; ``review`` for a label from the queue), so
training data keeps where each label came from.

Each step runs only where it is missing, as the earlier revisions do, so a database
whose tables came from this release's plain ``create_all`` is adopted too.

Revision ID: 0008_review_queue
Revises: 0007_answer_confidence
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_review_queue"
down_revision: str | None = "0007_answer_confidence"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "drift_review_items"
INDEX = "ix_drift_review_items_adapter_tenant"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not any(c["name"] == "source" for c in inspector.get_columns("drift_feedback")):
        with op.batch_alter_table("drift_feedback") as batch:
            batch.add_column(
                sa.Column("source", sa.String(16), nullable=False, server_default="client")
            )
    if inspector.has_table(TABLE):
        return
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("adapter", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("created_ts", sa.Float(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("labelled_ts", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "tenant", name="uq_drift_review_items_request"),
    )
    op.create_index(INDEX, TABLE, ["adapter", "tenant", "labelled_ts"], unique=False)


def downgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
    op.drop_table(TABLE)
    with op.batch_alter_table("drift_feedback") as batch:
        batch.drop_column("source")
