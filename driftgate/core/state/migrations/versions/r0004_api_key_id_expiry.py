"""API keys get a public id (to list and revoke one key) and an optional expiry.

``dg_api_keys`` gains ``key_id`` (``key_`` + 16 random hex digits, unique; the keys already
there get one each) and ``expires_at`` (Unix seconds, nullable: the keys already there
never expire). No key is removed or changed otherwise, so every key keeps working.

Each step runs only where it is missing, as the baseline does, so a database whose
tables some release created with the current schema is upgraded too.

Revision ID: 0004_api_key_id_expiry
Revises: 0003_training_opt_in
Create Date: 2026-12-07
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0004_api_key_id_expiry"
down_revision: str | None = "0003_training_opt_in"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "dg_api_keys"
KEY_ID_INDEX = "ix_dg_api_keys_key_id"


def _columns() -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(TABLE)}


def _new_key_id() -> str:
    # The format of ``schema.control.new_key_id``, copied: a revision must not change
    # when the code of a later release does.
    return "key_" + secrets.token_hex(8)


def _give_every_key_an_id() -> None:
    keys = sa.table(TABLE, sa.column("key_hash", sa.String), sa.column("key_id", sa.String))
    bind = op.get_bind()
    missing = bind.execute(sa.select(keys.c.key_hash).where(keys.c.key_id.is_(None))).scalars()
    for key_hash in list(missing):
        bind.execute(
            sa.update(keys).where(keys.c.key_hash == key_hash).values(key_id=_new_key_id())
        )


def upgrade() -> None:
    if "expires_at" not in _columns():
        with op.batch_alter_table(TABLE) as batch:
            batch.add_column(sa.Column("expires_at", sa.Float(), nullable=True))
    if "key_id" not in _columns():
        with op.batch_alter_table(TABLE) as batch:
            batch.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))
        _give_every_key_an_id()
        with op.batch_alter_table(TABLE) as batch:
            batch.alter_column("key_id", existing_type=sa.String(length=32), nullable=False)
    indexes = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(TABLE)}
    if KEY_ID_INDEX not in indexes:
        op.create_index(KEY_ID_INDEX, TABLE, ["key_id"], unique=True)


def downgrade() -> None:
    op.drop_index(KEY_ID_INDEX, table_name=TABLE)
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("key_id")
        batch.drop_column("expires_at")
