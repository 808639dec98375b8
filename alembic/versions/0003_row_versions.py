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
from backend.core.config import get_settings

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERSIONED_TABLES = ("tenants", "memberships", "projects", "project_members", "tasks")


def _grant_version_updates(action: str) -> None:
    """The app role writes `version` with every update (column privileges, 0002)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    role = get_settings().database_app_role
    statements = ";\n".join(
        f"{action} UPDATE (version) ON {table} {'TO' if action == 'GRANT' else 'FROM'} {role}"
        for table in VERSIONED_TABLES
    )
    op.execute(
        f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
        f"{statements}; END IF; END $$"
    )


def upgrade() -> None:
    for table in VERSIONED_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    _grant_version_updates("GRANT")


def downgrade() -> None:
    _grant_version_updates("REVOKE")
    for table in VERSIONED_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("version")
