"""Tenant isolation, layers 2 and 3 of DESIGN.md.

The tenant context lives on the session (`session.info`), set by the tenant dependency before the
first query of a request. From it:

- the ORM filter (`do_orm_execute`) adds `tenant_id = <context>` to every select, update and
  delete that touches a tenant table, ORM or Core, and raises when no context is set (fail
  closed); `tenants.statements` covers what the ORM's own criteria do not reach (Core tables,
  inserts, `text()`);
- new tenant rows take `tenant_id` from the context, and a row can never change tenant;
- on PostgreSQL, every transaction starts with `SET LOCAL app.tenant_id` (empty without a
  tenant), sent with BEGIN, which row-level security policies read, so the database refuses what
  the ORM filter might have missed.

Nothing the app role can do lifts row-level security. Reading across tenants takes one of two
explicit, greppable ways, whose callers a test lists:

- `cross_tenant_rows(session, READ, value)`: a `CrossTenantRead`, on PostgreSQL a SECURITY
  DEFINER function owned by the schema owner (migration 0002), on SQLite the same query;
- `platform_session(database)`: the platform view of the admin panel, read-only sessions as the
  schema owner, whom a policy lets read every tenant's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    ForeignKey,
    Table,
    bindparam,
    column,
    event,
    func,
    inspect,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    SessionTransaction,
    mapped_column,
    with_loader_criteria,
)
from sqlalchemy.sql.selectable import FromClause

from backend.core.database import (
    AppSession,
    Database,
    queues_sql_at_begin,
    run_at_transaction_start,
)
from backend.core.statements import PerStatement
from tenants import statements

TENANT_KEY = "tenant_id"
PLATFORM_KEY = "platform_reads"
_PG_TRANSACTION_OPEN = "pg_transaction_open"
TENANT_COLUMN = statements.TENANT_COLUMN

TenantContextMissing = statements.TenantContextMissing
TenantMismatch = statements.TenantMismatch


class PlatformWriteRefused(RuntimeError):
    """A platform (read-only) session was asked to write: writes go through a tenant context."""


class TenantScoped:
    """Mixin for tenant tables: `tenant_id` leads the primary key and references the tenant."""

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True, sort_order=-100
    )


def is_tenant_table(table: Any) -> bool:
    return isinstance(table, Table) and TENANT_COLUMN in table.c


def current_tenant_id(session: Session | AsyncSession) -> uuid.UUID | None:
    return session.info.get(TENANT_KEY)


def is_platform_session(session: Session | AsyncSession) -> bool:
    return bool(session.info.get(PLATFORM_KEY))


# -- the PostgreSQL setting ---------------------------------------------------------------------


def rls_settings_sql(session: Session | AsyncSession) -> str:
    """The `SET LOCAL` for the session's context, empty without a tenant.

    Always sent, even empty: a value left on a pooled connection at session level (by
    `set_config(..., false)`, a pooler, anything) must never apply to a later transaction.
    `SET LOCAL`, not `set_config()`, because Citus propagates it to the workers. It takes no bind
    parameters, so the tenant id is inlined; that is safe because it is re-rendered from a
    `uuid.UUID`, never from text a caller sent.
    """
    tenant_id = current_tenant_id(session)
    rendered = str(uuid.UUID(str(tenant_id))) if tenant_id is not None else ""
    return f"SET LOCAL app.tenant_id = '{rendered}'"


NO_TENANT_SQL = "SET LOCAL app.tenant_id = ''"


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
    session.info.setdefault(_PG_TRANSACTION_OPEN, []).append(connection)
    run_at_transaction_start(connection, rls_settings_sql(session))


@event.listens_for(AppSession, "after_transaction_end")
def _forget_open_transaction(_session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        _session.info.pop(_PG_TRANSACTION_OPEN, None)


def _sync_rls_settings(session: Session) -> None:
    """Apply a context change to a PostgreSQL transaction that is already open."""
    for connection in session.info.get(_PG_TRANSACTION_OPEN, ()):
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


# -- reading across tenants ---------------------------------------------------------------------


class CrossTenantRead:
    """Rows of a tenant table picked by one column, whatever their tenant: `columns` of `table`
    where `by` equals the value given (or, with `at_or_before`, is at or before it: work due).

    On PostgreSQL it is the SECURITY DEFINER function `function` (a migration creates it, owned
    by the schema owner, with a fixed `search_path`); on SQLite, which has no row-level security,
    the same query on an alias of the table that the ORM filter lets through.
    """

    def __init__(
        self,
        function: str,
        table: FromClause,
        by: str,
        columns: tuple[str, ...],
        *,
        at_or_before: bool = False,
    ) -> None:
        self.function = function
        self.table = table
        self.by = by
        self.columns = columns
        self.at_or_before = at_or_before
        self.fallback = table.alias(function)
        statements.trust_alias(self.fallback)
        CROSS_TENANT_READS[function] = self


CROSS_TENANT_READS: dict[str, CrossTenantRead] = {}


def cross_tenant_rows(session: AsyncSession | Session, read: CrossTenantRead, value: Any) -> Any:
    """The rows of `read` for `value`, as a FROM clause to select from or join; every caller is
    listed in a test."""
    if session.get_bind().dialect.name == "postgresql":
        typed = [column(name, read.table.c[name].type) for name in read.columns]
        return getattr(func, read.function)(value).table_valued(*typed, name=read.function)
    alias = read.fallback
    by = alias.c[read.by]
    chosen = select(*(alias.c[name] for name in read.columns)).where(
        by <= value if read.at_or_before else by == value
    )
    return chosen.subquery(read.function)


def platform_session(database: Database, **options: Any) -> AsyncSession:
    """A read-only session that sees every tenant's rows: the platform view of the admin panel.

    On PostgreSQL it connects as the schema owner (`MIGRATIONS_DATABASE_URL`), whom the policy
    `owner_reads` lets read tenant rows, in READ ONLY transactions; the app role gains nothing.
    On SQLite the ORM filter is lifted for it. Either way it refuses to write. Every caller is
    listed in a test; only verified superusers reach it.
    """
    return database.platform_session_factory(info={PLATFORM_KEY: True}, **options)


# -- the ORM filter -----------------------------------------------------------------------------

# A SELECT takes the tenant as this bound parameter, given with each execution: its scoped form
# does not depend on the tenant, so it is built once per statement object (`PerStatement`), and
# a statement built once at import costs no walk, no rewrite and no cache key per request.
TENANT_PARAMETER = "isolation_tenant_id"


_TENANT: Any = bindparam(TENANT_PARAMETER)
_TENANT_READ_CRITERIA = with_loader_criteria(
    TenantScoped,
    lambda cls: cls.tenant_id == _TENANT,
    include_aliases=True,
    track_closure_variables=False,
)


def _tenant_write_criteria(tenant_id: uuid.UUID) -> Any:
    # UPDATE and DELETE bind the value itself: the ORM evaluates their criteria in Python to
    # synchronise the objects in the session, and there a parameter given at execution would
    # count as NULL.
    return with_loader_criteria(
        TenantScoped, lambda cls: cls.tenant_id == tenant_id, include_aliases=True
    )


@dataclass(frozen=True)
class _StatementScope:
    """What the filter learned of one statement object; the same for every execution of it."""

    references: statements.TenantReferences
    names_tenant_table: bool


_scopes: PerStatement[_StatementScope] = PerStatement()
_scoped_reads: PerStatement[Any] = PerStatement()


def _scope_of(state: ORMExecuteState) -> _StatementScope:
    def learn() -> _StatementScope:
        tenant_mappers = [m for m in state.all_mappers if issubclass(m.class_, TenantScoped)]
        mapped = frozenset(m.local_table for m in tenant_mappers)
        found = statements.tenant_references(state.statement, mapped)
        return _StatementScope(found, bool(found or tenant_mappers))

    return _scopes.get(state.statement, learn)


def _scoped_read(statement: Any, scope: _StatementScope) -> Any:
    """`statement` with the tenant filters, every one comparing to `TENANT_PARAMETER`."""
    scoped = statements.scope_core_statement(statement, scope.references, _TENANT)
    return scoped.options(_TENANT_READ_CRITERIA)


def _single_row(parameters: Any) -> Mapping[str, Any]:
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):  # a SELECT runs once, with one set of values
        raise TypeError("a SELECT takes one mapping of parameters")
    return parameters


@event.listens_for(AppSession, "do_orm_execute")
def _scope_statement_to_tenant(state: ORMExecuteState) -> None:
    scope = _scope_of(state)
    if is_platform_session(state.session):
        if not state.is_select:
            raise PlatformWriteRefused("the platform view reads only")
        return
    if not scope.names_tenant_table:
        return
    tenant_id = current_tenant_id(state.session)
    if tenant_id is None:
        raise TenantContextMissing(
            "a tenant table was queried without a tenant context; resolve TenantAccess first, "
            "or read across tenants on purpose with cross_tenant_rows()"
        )
    if state.is_select:
        original = state.statement
        state.statement = _scoped_reads.get(original, lambda: _scoped_read(original, scope))
        state.parameters = {**_single_row(state.parameters), TENANT_PARAMETER: tenant_id}
        return
    statement = statements.scope_core_statement(state.statement, scope.references, tenant_id)
    if state.is_insert:
        statement, state.parameters = statements.scope_insert(
            statement, state.parameters, tenant_id
        )
    if state.is_update or state.is_delete:
        statement = statement.options(_tenant_write_criteria(tenant_id))
    state.statement = statement


@event.listens_for(AppSession, "before_flush")
def _stamp_and_guard_tenant(session: Session, _flush_context: Any, _instances: Any) -> None:
    if is_platform_session(session) and (session.new or session.dirty or session.deleted):
        raise PlatformWriteRefused("the platform view reads only")
    tenant_id = current_tenant_id(session)
    for instance in session.new:
        if not isinstance(instance, TenantScoped):
            continue
        if instance.tenant_id is None:
            if tenant_id is None:
                raise TenantContextMissing(f"new {type(instance).__name__} has no tenant context")
            instance.tenant_id = tenant_id
        elif instance.tenant_id != tenant_id:
            raise TenantMismatch(f"new {type(instance).__name__} belongs to another tenant")
    for instance in session.dirty:
        if isinstance(instance, TenantScoped) and inspect(instance).attrs.tenant_id.history.deleted:
            raise TenantMismatch(f"{type(instance).__name__} cannot move to another tenant")
