"""Per-tenant limits shared across gateway replicas: ``dg_tenants`` gains
``tokens_per_minute`` and ``max_concurrent`` (0 = unlimited, the value of every tenant
already there, so no tenant is limited more than before).

Each column is added only where it is missing, as the earlier revisions do, so a
database whose tables came from this release's plain ``create_all`` is adopted too.

Revision ID: 0005_tenant_limits
Revises: 0004_api_key_id_expiry
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_tenant_limits"
down_revision: str | None = "0004_api_key_id_expiry"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "dg_tenants"
COLUMNS = ("tokens_per_minute", "max_concurrent")


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(TABLE)}
    missing = [name for name in COLUMNS if name not in present]
    if not missing:
        return
    with op.batch_alter_table(TABLE) as batch:
        for name in missing:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
