"""Training opt-in: which tenants' traffic may train an adapter (``dg_training_opt_ins``).

No row, no training data: an adapter that nobody opted in trains on nothing from traffic
(issue 15, training data governance). The table is created only where it is absent, as
the baseline does, so a database whose tables came from plain ``create_all`` (the
previous release's way, which knows every table of this code) is adopted too.

Revision ID: 0003_training_opt_in
Revises: 0002_feedback_one_vote
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_training_opt_in"
down_revision: str | None = "0002_feedback_one_vote"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "dg_training_opt_ins"


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table(TABLE):
        return
    op.create_table(
        TABLE,
        sa.Column("adapter", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["adapter"], ["dg_adapters.name"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["dg_tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("adapter", "tenant_id"),
    )
    op.create_index(op.f("ix_dg_training_opt_ins_tenant_id"), TABLE, ["tenant_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_dg_training_opt_ins_tenant_id"), table_name=TABLE)
    op.drop_table(TABLE)
