"""Answer confidence: ``drift_requests`` gains ``mean_logprob`` (mean logprob of the
answer's generated tokens) and ``first_token_margin`` (its first token's logprob minus the
best alternative's). Both nullable: the rows already there, completions, and the events of
older gateways have none.

Each column is added only where it is missing, as the earlier revisions do, so a
database whose tables came from this release's plain ``create_all`` is adopted too.

Revision ID: 0007_answer_confidence
Revises: 0006_served_request
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_answer_confidence"
down_revision: str | None = "0006_served_request"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "drift_requests"
COLUMNS: tuple[tuple[str, sa.types.TypeEngine[float]], ...] = (
    ("mean_logprob", sa.Float()),
    ("first_token_margin", sa.Float()),
)


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(TABLE)}
    missing = [(name, kind) for name, kind in COLUMNS if name not in present]
    if not missing:
        return
    with op.batch_alter_table(TABLE) as batch:
        for name, kind in missing:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
