"""Tenant isolation, layers 2 and 3 of DESIGN.md.

The tenant context lives on the session (`session.info`), set by the tenant dependency before the
first query of a request. From it:

- the ORM filter (`do_orm_execute`) adds `tenant_id = <context>` to every select, update and
  delete that touches a tenant table, and raises when no context is set (fail closed);
- new tenant rows take `tenant_id` from the context, and a row can never change tenant;
- on PostgreSQL, every transaction starts with `SET LOCAL app.tenant_id`, which row-level
  security policies read, so the database refuses what the ORM filter might have missed.

The only way around it is `cross_tenant(...)`, which is easy to grep for and whose callers a test
lists.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Connection, Engine, ForeignKey, Table, event, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    SessionTransaction,
    mapped_column,
    with_loader_criteria,
)
from sqlalchemy.sql.util import find_tables

from backend.core.database import AppSession, queues_sql_at_begin, run_at_transaction_start

TENANT_KEY = "tenant_id"
BYPASS_KEY = "tenant_bypass_reason"
_PG_TRANSACTION_OPEN = "pg_transaction_open"
TENANT_COLUMN = "tenant_id"


class TenantContextMissing(RuntimeError):
    """A tenant table was queried with no tenant context: a bug, never a user error."""


class TenantMismatch(RuntimeError):
    """A row was written into, or moved to, a tenant other than the context's."""


class TenantScoped:
    """Mixin for tenant tables: `tenant_id` leads the primary key and references the tenant."""

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True, sort_order=-100
    )


def is_tenant_table(table: Any) -> bool:
    return isinstance(table, Table) and TENANT_COLUMN in table.c


def current_tenant_id(session: Session | AsyncSession) -> uuid.UUID | None:
    return session.info.get(TENANT_KEY)


def _bypassing(session: Session | AsyncSession) -> bool:
    return bool(session.info.get(BYPASS_KEY))


def rls_settings_sql(session: Session | AsyncSession) -> str:
    """The `SET LOCAL` statements for the session's context, always all of them.

    Always, and empty values too: a value left on a pooled connection at session level (by
    `set_config(..., false)`, a pooler, anything) must never apply to a later transaction.
    `SET LOCAL`, not `set_config()`, because Citus propagates it to the workers. It takes no bind
    parameters, so the tenant id is inlined; that is safe because it is re-rendered from a
    `uuid.UUID`, never from text a caller sent.
    """
    tenant_id = current_tenant_id(session)
    rendered = str(uuid.UUID(str(tenant_id))) if tenant_id is not None else ""
    bypass = "on" if _bypassing(session) else "off"
    return f"SET LOCAL app.tenant_id = '{rendered}'; SET LOCAL app.bypass_rls = '{bypass}'"


NO_TENANT_SQL = "SET LOCAL app.tenant_id = ''; SET LOCAL app.bypass_rls = 'off'"


@event.listens_for(Engine, "begin")
def _clear_rls_settings_on_begin(connection: Connection) -> None:
    """Every transaction on an app engine starts with no tenant, whoever runs it; a session then
    replaces this with its own context (below) before BEGIN reaches the server."""
    if queues_sql_at_begin(connection):
        run_at_transaction_start(connection, NO_TENANT_SQL)


@event.listens_for(AppSession, "after_begin")
def _set_rls_settings_on_begin(
    session: Session, _transaction: SessionTransaction, connection: Connection
) -> None:
    if connection.dialect.name != "postgresql":
        return
    session.info[_PG_TRANSACTION_OPEN] = connection
    run_at_transaction_start(connection, rls_settings_sql(session))


@event.listens_for(AppSession, "after_transaction_end")
def _forget_open_transaction(_session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        _session.info.pop(_PG_TRANSACTION_OPEN, None)


def _sync_rls_settings(session: Session) -> None:
    """Apply a context change to a PostgreSQL transaction that is already open."""
    connection = session.info.get(_PG_TRANSACTION_OPEN)
    if connection is not None:
        run_at_transaction_start(connection, rls_settings_sql(session))


def enter_tenant_sync(session: Session, tenant_id: uuid.UUID) -> None:
    session.info[TENANT_KEY] = uuid.UUID(str(tenant_id))
    _sync_rls_settings(session)


async def enter_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Scope every following statement of this session to `tenant_id`."""
    await session.run_sync(enter_tenant_sync, tenant_id)


def leave_tenant_sync(session: Session) -> None:
    session.info.pop(TENANT_KEY, None)
    _sync_rls_settings(session)


def _set_bypass_sync(session: Session, reason: str | None) -> str | None:
    """Set (or, with None, clear) the bypass; returns the previous reason, for nesting."""
    previous = session.info.get(BYPASS_KEY)
    if reason is None:
        session.info.pop(BYPASS_KEY, None)
    else:
        session.info[BYPASS_KEY] = reason
    _sync_rls_settings(session)
    return previous


@asynccontextmanager
async def cross_tenant(session: AsyncSession, reason: str) -> AsyncIterator[None]:
    """Lift tenant isolation for the statements inside the block. Every caller is listed in a test.

    `reason` says why in a word or two; it is kept on the session for debugging.
    """
    previous = await session.run_sync(_set_bypass_sync, reason)
    try:
        yield
    finally:
        await session.run_sync(_set_bypass_sync, previous)


def _touches_tenant_table(state: ORMExecuteState) -> bool:
    if any(issubclass(mapper.class_, TenantScoped) for mapper in state.all_mappers):
        return True
    return any(is_tenant_table(table) for table in find_tables(state.statement, include_crud=True))


@event.listens_for(AppSession, "do_orm_execute")
def _scope_statement_to_tenant(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if _bypassing(state.session) or not _touches_tenant_table(state):
        return
    tenant_id = current_tenant_id(state.session)
    if tenant_id is None:
        raise TenantContextMissing(
            "a tenant table was queried without a tenant context; "
            "resolve TenantAccess first, or use cross_tenant() on purpose"
        )
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantScoped,
            lambda cls: cls.tenant_id == tenant_id,
            include_aliases=True,
        )
    )


@event.listens_for(AppSession, "before_flush")
def _stamp_and_guard_tenant(session: Session, _flush_context: Any, _instances: Any) -> None:
    tenant_id = current_tenant_id(session)
    bypass = _bypassing(session)
    for instance in session.new:
        if not isinstance(instance, TenantScoped):
            continue
        if instance.tenant_id is None:
            if tenant_id is None:
                raise TenantContextMissing(f"new {type(instance).__name__} has no tenant context")
            instance.tenant_id = tenant_id
        elif not bypass and instance.tenant_id != tenant_id:
            raise TenantMismatch(f"new {type(instance).__name__} belongs to another tenant")
    for instance in session.dirty:
        if isinstance(instance, TenantScoped) and inspect(instance).attrs.tenant_id.history.deleted:
            raise TenantMismatch(f"{type(instance).__name__} cannot move to another tenant")
