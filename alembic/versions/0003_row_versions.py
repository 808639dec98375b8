"""row versions for entity tags and compare-and-set writes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 02:50:00.000000

Tenants, memberships, projects, project members and tasks get a `version` counter: 1 for the
rows that exist, incremented by every update (`backend.core.database.Versioned`).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from backend.core.app_role_grants import for_app_role

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERSIONED_TABLES = ("tenants", "memberships", "projects", "project_members", "tasks")


def upgrade() -> None:
    for table in VERSIONED_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    for_app_role([f"GRANT UPDATE (version) ON {table} TO {{role}}" for table in VERSIONED_TABLES])


def downgrade() -> None:
    for_app_role(
        [f"REVOKE UPDATE (version) ON {table} FROM {{role}}" for table in VERSIONED_TABLES]
    )
    for table in VERSIONED_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("version")
