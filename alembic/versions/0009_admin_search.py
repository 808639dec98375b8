"""the admin panel at scale: trigram indexes for its searches, an index for the task list

Revision ID: 0009_admin_search
Revises: 0005_soft_delete
On PostgreSQL, `pg_trgm` is a trusted extension: the database owner, who runs migrations,
creates it without being a superuser. Its GIN indexes serve `ILIKE '%term%'` on every column an
admin list searches. SQLite gets plain indexes of the same names (its searches scan).

Create Date: 2026-12-01 05:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_admin_search"
down_revision: str | None = "0005_soft_delete"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCHED = [
    ("tenants", "name"),
    ("tenants", "slug"),
    ("users", "email"),
    ("users", "full_name"),
    ("projects", "name"),
    ("tasks", "title"),
    ("invitations", "email"),
    ("audit_events", "action"),
    ("audit_events", "target_id"),
    ("platform_audit_events", "action"),
    ("platform_audit_events", "target_id"),
]


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table, column in SEARCHED:
        op.create_index(
            f"ix_{table}_{column}_trgm",
            table,
            [column],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        )
    op.create_index(
        "ix_tasks_tenant_id_updated_at_id", "tasks", ["tenant_id", "updated_at", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_tenant_id_updated_at_id", table_name="tasks")
    for table, column in reversed(SEARCHED):
        op.drop_index(f"ix_{table}_{column}_trgm", table_name=table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP EXTENSION IF EXISTS pg_trgm")
