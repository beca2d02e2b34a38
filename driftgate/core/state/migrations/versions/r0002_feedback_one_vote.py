"""One vote per request and tenant; request events record a pinned version.

``drift_feedback`` gets a unique constraint on (request_id, tenant): a tenant's later
feedback on a request replaces its earlier one (``DriftStore.write_feedback`` upserts),
so rating one answer many times counts once. Duplicates stored before this revision
are removed first, keeping each pair's newest row (the highest id), which is the vote
the new rule would have kept. ``drift_requests`` gets ``pinned`` (false for the rows
already there): the client named the version, so the canary judge leaves it out.

Each step runs only where it is missing, as the baseline does, so a database whose
tables some release created with the current schema is upgraded too.

Revision ID: 0002_feedback_one_vote
Revises: 0001_baseline
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_feedback_one_vote"
down_revision: str | None = "0001_baseline"
branch_labels: str | None = None
depends_on: str | None = None

VOTE = "uq_drift_feedback_vote"


def _inspector() -> sa.Inspector:
    return sa.inspect(op.get_bind())


def upgrade() -> None:
    if not any(u["name"] == VOTE for u in _inspector().get_unique_constraints("drift_feedback")):
        op.execute(
            "DELETE FROM drift_feedback WHERE id NOT IN "
            "(SELECT MAX(id) FROM drift_feedback GROUP BY request_id, tenant)"
        )
        with op.batch_alter_table("drift_feedback") as batch:
            batch.create_unique_constraint(VOTE, ["request_id", "tenant"])
    if not any(c["name"] == "pinned" for c in _inspector().get_columns("drift_requests")):
        with op.batch_alter_table("drift_requests") as batch:
            batch.add_column(
                sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false())
            )


def downgrade() -> None:
    with op.batch_alter_table("drift_requests") as batch:
        batch.drop_column("pinned")
    with op.batch_alter_table("drift_feedback") as batch:
        batch.drop_constraint(VOTE, type_="unique")
