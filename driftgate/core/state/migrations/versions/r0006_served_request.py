"""The served chat request, recorded: ``drift_requests`` gains ``served_json`` (the
bounded message list, tools by hash and sampling parameters, under the ``keep`` text
policy) and ``served_sha256`` (its hash, under ``hash``). Both nullable: the rows already
there, and the events of older gateways, have none.

Each column is added only where it is missing, as the earlier revisions do, so a
database whose tables came from this release's plain ``create_all`` is adopted too.

Revision ID: 0006_served_request
Revises: 0005_tenant_limits
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_served_request"
down_revision: str | None = "0005_tenant_limits"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "drift_requests"
COLUMNS: tuple[tuple[str, sa.types.TypeEngine[str]], ...] = (
    ("served_json", sa.Text()),
    ("served_sha256", sa.String(64)),
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
