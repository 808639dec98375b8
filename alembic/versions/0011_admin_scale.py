"""the admin's orderings and searches on the rows not in the trash: partial indexes

Revision ID: 0011_admin_scale
Revises: 0008_webhooks

Every read of projects and tasks carries `deleted_at IS NULL` (the soft-delete filter), so the
indexes the admin panel lists and searches them by cover only those rows: a list ordered by an
index never walks past rows in the trash, however many there are, and a search never fetches
them to drop them. The trash has its own partial indexes (0005); writes that must reach deleted
rows (unassigning, the purge) use other indexes. Each index replaces the full one it matches.

Create Date: 2026-12-01 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0011_admin_scale"
down_revision: str | None = "0008_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("deleted_at IS NULL")
# (table, name of the full index, columns): the list orderings of the admin (and of the API's
# project list), led by tenant_id.
ORDERINGS = [
    ("projects", "ix_projects_tenant_id_created_at_id", ["tenant_id", "created_at", "id"]),
    ("tasks", "ix_tasks_tenant_id_updated_at_id", ["tenant_id", "updated_at", "id"]),
]
# (table, column): trigram indexes of the admin's searches.
SEARCHED = [("projects", "name"), ("tasks", "title")]


def upgrade() -> None:
    for table, name, columns in ORDERINGS:
        op.create_index(f"{name}_live", table, columns, postgresql_where=LIVE, sqlite_where=LIVE)
        op.drop_index(name, table_name=table)
    for table, column in SEARCHED:
        name = f"ix_{table}_{column}_trgm"
        op.create_index(
            f"{name}_live",
            table,
            [column],
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
            postgresql_where=LIVE,
            sqlite_where=LIVE,
        )
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for table, column in reversed(SEARCHED):
        name = f"ix_{table}_{column}_trgm"
        op.create_index(
            name,
            table,
            [column],
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        )
        op.drop_index(f"{name}_live", table_name=table)
    for table, name, columns in reversed(ORDERINGS):
        op.create_index(name, table, columns)
        op.drop_index(f"{name}_live", table_name=table)
