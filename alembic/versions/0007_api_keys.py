"""personal API keys

Revision ID: 0007_api_keys
Revises: 0004
A global table, like refresh_tokens: a key is found by its hash before any tenant context exists,
so its tenant column is `scope_tenant_id` and no row-level security applies. On PostgreSQL the
app role may read the keys, create them, and change only when one was last used and whether it
is revoked.

Create Date: 2026-12-01 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from backend.core.app_role_grants import for_app_role

revision: str = "0007_api_keys"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("scope_tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["scope_tenant_id"],
            ["tenants.id"],
            name=op.f("fk_api_keys_scope_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(
            "ix_api_keys_user_id_created_at_id", ["user_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_api_keys_scope_tenant_id"), ["scope_tenant_id"], unique=False
        )
    for_app_role(
        [
            "REVOKE ALL ON api_keys FROM {role}",
            "GRANT SELECT, INSERT, UPDATE (last_used_at, revoked_at) ON api_keys TO {role}",
        ]
    )


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_scope_tenant_id"))
        batch_op.drop_index("ix_api_keys_user_id_created_at_id")
    op.drop_table("api_keys")
