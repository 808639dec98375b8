"""What the migrations grant to (or revoke from) the app role, in one place.

Imported by migrations only. The app role (`DATABASE_APP_ROLE`) is made by the operator, not by
the migrations: where it does not exist (a database used by its owner alone), the statements
are skipped with a notice, and SQLite has no roles at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from backend.core.config import get_settings


def for_app_role(statements: Sequence[str]) -> None:
    """Run `statements` (`{role}` filled in with the app role) when that role exists, on
    PostgreSQL; nothing otherwise."""
    if op.get_bind().dialect.name != "postgresql":
        return
    role = get_settings().database_app_role
    body = ";\n".join(statement.format(role=role) for statement in statements)
    # The role's name is the operator's setting and the statements are the migrations' own.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                {body};
            ELSE
                RAISE NOTICE 'role {role} does not exist: no grants changed';
            END IF;
        END
        $$
        """  # noqa: S608
    )
