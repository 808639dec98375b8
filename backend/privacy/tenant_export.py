"""A tenant's export: every row of every tenant table, as NDJSON, in constant memory.

One line per row, `{"type": "<table>", "data": {...}}`: the tenant itself first, then the tenant
tables in the order of their foreign keys (a row's parents come before it), each by primary key;
then `{"type": "summary", "counts": {...}}`. A column named like a secret or what verifies one
(`backend.core.secrets.is_secret_name`: `*_hash`, `*secret*`, `*token*`) is never read, in any
table, including tables added later; members carry their email and name.

The rows are read in keyset batches of `BATCH_ROWS`, each sent before the next is read, by a
session of the export's own: the request's session has committed by the time the body streams.
That session enters the tenant (the ORM filter, and row-level security on PostgreSQL, where one
REPEATABLE READ transaction also makes the export a single snapshot).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from sqlalchemy import Column, Select, Table, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.core.database import Base
from backend.core.secrets import is_secret_name
from backend.core.soft_delete import INCLUDE_DELETED
from backend.identity.models import User
from tenants.audit import record_audit
from tenants.caller import TenantCaller
from tenants.isolation import enter_tenant, is_tenant_table
from tenants.models import Membership, Tenant
from tenants.roles import TenantAction

BATCH_ROWS = 1000
MEDIA_TYPE = "application/x-ndjson"
TENANTS: Table = Tenant.__table__  # type: ignore[assignment]
USERS: Table = User.__table__  # type: ignore[assignment]
MEMBERSHIPS: Table = Membership.__table__  # type: ignore[assignment]


def export_tables() -> list[Table]:
    """The tenant, then every tenant table, parents before children: a fixed order."""
    return [TENANTS, *(table for table in Base.metadata.sorted_tables if is_tenant_table(table))]


def exported_columns(table: Table) -> list[Column[Any]]:
    return [column for column in table.columns if not is_secret_name(column.name)]


async def record_tenant_export(session: AsyncSession, caller: TenantCaller) -> None:
    """Allow the export (the tenant's owners only) and audit it."""
    caller.require(TenantAction.EXPORT)
    record_audit(session, caller.actor, "tenant.exported", "tenant", caller.tenant_id)


def _batch(table: Table, tenant_id: uuid.UUID, after: tuple[Any, ...] | None) -> Select[Any]:
    key = list(table.primary_key.columns)
    # The trash is the tenant's data too, until the purge: deleted rows are exported.
    statement = (
        select(*exported_columns(table))
        .order_by(*key)
        .limit(BATCH_ROWS)
        .execution_options(**INCLUDE_DELETED)
    )
    if table is TENANTS:
        statement = statement.where(TENANTS.c.id == tenant_id)
    if table is MEMBERSHIPS:
        statement = statement.add_columns(USERS.c.email, USERS.c.full_name).join(
            USERS, USERS.c.id == MEMBERSHIPS.c.user_id
        )
    if after is not None:
        statement = statement.where(tuple_(*key) > tuple_(*after))
    return statement


def _line(document: dict[str, Any]) -> bytes:
    # default: asyncpg hands UUIDs back as its own type, which orjson does not know.
    return orjson.dumps(document, default=str) + b"\n"


async def _table_lines(
    session: AsyncSession, table: Table, tenant_id: uuid.UUID, counts: dict[str, int]
) -> AsyncIterator[bytes]:
    key_names = [column.name for column in table.primary_key.columns]
    name = str(table.name)
    after: tuple[Any, ...] | None = None
    counts[name] = 0
    while True:
        rows = (await session.execute(_batch(table, tenant_id, after))).mappings().all()
        if not rows:
            return
        counts[name] += len(rows)
        yield b"".join(_line({"type": name, "data": dict(row)}) for row in rows)
        if len(rows) < BATCH_ROWS:
            return
        after = tuple(rows[-1][key] for key in key_names)


async def export_lines(
    sessions: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID
) -> AsyncIterator[bytes]:
    """The export's body, a batch of lines at a time, in its own session and transaction."""
    async with sessions() as session:
        await enter_tenant(session, tenant_id)
        if session.get_bind().dialect.name == "postgresql":
            # For this transaction only (a connection-level option would outlive it in the
            # pool); it follows the tenant's SET LOCAL, which takes no snapshot.
            await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        counts: dict[str, int] = {}
        for table in export_tables():
            async for chunk in _table_lines(session, table, tenant_id, counts):
                yield chunk
        await session.commit()
        yield _line({"type": "summary", "counts": counts})
