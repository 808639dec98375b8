"""The start-up check of the app role: row-level security holds only for a role that is not a
superuser, has no BYPASSRLS and owns no table (a table's owner passes its policies unless they
are forced, and may turn them off).

In production the service refuses to start on such a role, with one line saying why; elsewhere
it warns. A database it cannot reach yet is not a reason to refuse: it is logged, and the
readiness check answers 503 until it is back.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.core.config import Settings

logger = logging.getLogger(__name__)

ROLE_FACTS = text(
    """
    SELECT r.rolname, r.rolsuper, r.rolbypassrls,
           (SELECT count(*) FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')) AS tables_owned
    FROM pg_roles r WHERE r.rolname = current_user
    """
)


class AppRoleUnfit(RuntimeError):
    """The app connects as a role that row-level security does not bind."""


async def app_role_faults(engine: AsyncEngine) -> tuple[str, list[str]]:
    """The connected role's name and what makes it unfit as the app role (none on SQLite)."""
    if engine.dialect.name != "postgresql":
        return "", []
    async with engine.connect() as connection:
        name, superuser, bypasses, owned = (await connection.execute(ROLE_FACTS)).one()
    faults = ["is a superuser"] if superuser else []
    faults += ["has BYPASSRLS"] if bypasses else []
    faults += [f"owns {owned} table{'s' if owned != 1 else ''}"] if owned else []
    return name, faults


async def check_app_role(engine: AsyncEngine, settings: Settings) -> None:
    """Refuse (production) or warn (elsewhere) when the app role escapes row-level security."""
    try:
        name, faults = await app_role_faults(engine)
    except (OperationalError, DBAPIError, OSError) as exc:
        logger.warning("could not check the app role: %s", type(exc).__name__)
        return
    if not faults:
        return
    line = (
        f"DATABASE_URL connects as {name}, which {', '.join(faults)}: row-level security would "
        "not bind it. Connect as a role that owns nothing (see docker/postgres-init-roles.sh)."
    )
    if settings.is_production:
        raise AppRoleUnfit(line)
    logger.warning(line)
