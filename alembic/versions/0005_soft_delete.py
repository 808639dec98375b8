"""soft delete of projects and tasks, tenant deletion with a grace period, leases

Revision ID: 0005_soft_delete
Revises: 0007_api_keys

- projects and tasks get `deleted_at` and `deleted_by`: a deleted row stays in the trash until
  the purge; a project's name is unique in its tenant among the rows not in the trash (a
  partial unique index, on both databases), and the trash is listed through partial indexes
  of the deleted rows;
- a tenant may be `pending_deletion` until `purge_after`;
- `leases` holds one row per periodic job (the purge), claimed by one worker at a time.

On PostgreSQL the app role may write the new columns and claim leases (column grants, as in
0002). The purge needs nothing more: it deletes tenant by tenant, inside each tenant's context.

Create Date: 2026-12-01 05:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

from alembic import op
from backend.core.app_role_grants import for_app_role

revision: str = "0005_soft_delete"
down_revision: str | None = "0007_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOFT_DELETABLE = ("projects", "tasks")
LIVE = sa.text("deleted_at IS NULL")
DELETED = sa.text("deleted_at IS NOT NULL")
LEASES = ("purge", "purge.daily")
STATUSES = ("active", "suspended", "pending_deletion")
APP_GRANTS = (
    "GRANT UPDATE (deleted_at, deleted_by) ON projects TO {role}",
    "GRANT UPDATE (deleted_at, deleted_by) ON tasks TO {role}",
    "GRANT UPDATE (purge_after) ON tenants TO {role}",
    "GRANT SELECT, UPDATE (holder, held_until) ON leases TO {role}",
)


def _status_type(statuses: Sequence[str]) -> sa.Enum:
    return sa.Enum(
        *statuses, name="tenant_status", native_enum=False, create_constraint=True, length=32
    )


def upgrade() -> None:
    for table in SOFT_DELETABLE:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
            batch.add_column(sa.Column("deleted_by", sa.Uuid(), nullable=True))
            batch.create_foreign_key(
                f"fk_{table}_deleted_by_users", "users", ["deleted_by"], ["id"], ondelete="SET NULL"
            )
            batch.create_index(
                f"ix_{table}_tenant_id_deleted_at_id",
                ["tenant_id", "deleted_at", "id"],
                unique=False,
                sqlite_where=DELETED,
                postgresql_where=DELETED,
            )
    with op.batch_alter_table("projects") as batch:
        batch.create_index(
            "ix_projects_tenant_id_name_live",
            ["tenant_id", "name"],
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        )
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("purge_after", sa.DateTime(timezone=True), nullable=True))
        batch.alter_column(
            "status", existing_type=_status_type(STATUSES[:2]), type_=_status_type(STATUSES)
        )
    leases = op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("held_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    free_since = datetime(1970, 1, 1, tzinfo=UTC)
    op.bulk_insert(leases, [{"name": n, "holder": "", "held_until": free_since} for n in LEASES])
    for_app_role(["REVOKE ALL ON leases FROM {role}", *APP_GRANTS])


def downgrade() -> None:
    for_app_role(
        [
            "REVOKE UPDATE (deleted_at, deleted_by) ON projects FROM {role}",
            "REVOKE UPDATE (deleted_at, deleted_by) ON tasks FROM {role}",
            "REVOKE UPDATE (purge_after) ON tenants FROM {role}",
        ]
    )
    op.drop_table("leases")
    # A tenant pending deletion stays closed: suspended, for the platform admins to decide.
    op.execute("UPDATE tenants SET status = 'suspended' WHERE status = 'pending_deletion'")
    with op.batch_alter_table("tenants") as batch:
        batch.alter_column(
            "status", existing_type=_status_type(STATUSES), type_=_status_type(STATUSES[:2])
        )
        batch.drop_column("purge_after")
    with op.batch_alter_table("projects") as batch:
        batch.drop_index("ix_projects_tenant_id_name_live")
    for table in SOFT_DELETABLE:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_tenant_id_deleted_at_id")
            batch.drop_constraint(f"fk_{table}_deleted_by_users", type_="foreignkey")
            batch.drop_column("deleted_by")
            batch.drop_column("deleted_at")
