"""Reading every tenant's rows in a test's assertions, as the platform view of the panel does.

The app role can lift nothing (no bypass setting), so a test that checks rows across tenants
reads them through the platform session's connection (the schema owner's, read-only, on
PostgreSQL), on its own `db` session:

    async with cross_tenant(db, "test assertion"):
        statuses = set(await db.scalars(select(Tenant.status)))

Writes inside are refused; `persist` writes each tenant's rows in that tenant's context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import Database
from tenants.isolation import PLATFORM_KEY

DATABASE_KEY = "test_database"


@asynccontextmanager
async def cross_tenant(db: AsyncSession, reason: str) -> AsyncIterator[None]:
    """Inside the block, `db` reads every tenant's rows; `reason` says why, for the reader."""
    database: Database = db.info[DATABASE_KEY]
    app_bind = db.sync_session.bind
    db.sync_session.bind = database.platform_session_factory.kw["bind"].sync_engine
    db.info[PLATFORM_KEY] = reason
    try:
        yield
    finally:
        db.info.pop(PLATFORM_KEY, None)
        db.sync_session.bind = app_bind
