"""Fail closed for the statements that the ORM's own tenant criteria do not reach.

`with_loader_criteria` (in `tenants.isolation`) scopes ORM entities: `select(Task)`,
`select(Task.id)`, `update(Task)`, relationship loads. It does not see Core tables
(`select(Membership.__table__)`, a join to one, `update(Membership.__table__)`), statement
inserts, or SQL text. For those:

- a Core tenant table in the statement's own FROM list (plain, aliased or joined) gets
  `tenant_id = <context>` in its WHERE clause; on the nullable side of an outer join,
  `tenant_id = <context> OR tenant_id IS NULL`, which may drop a row but never shows another
  tenant's. The target of a Core UPDATE or DELETE gets it too. A Core tenant table anywhere else
  (a subquery, a CTE, EXISTS) is refused: write that query with ORM entities;
- no UPDATE moves a row to another tenant;
- an INSERT into a tenant table takes `tenant_id` from the context when it has none, and is
  refused when it names another tenant; INSERT ... SELECT into a tenant table is refused;
- SQL text (`text()`, `literal_column()`), lightweight `table()` clauses and foreign `Table`
  objects that name a tenant table are refused, with or without a context. The cross-tenant
  reads live in SECURITY DEFINER functions instead (`tenants.isolation.CrossTenantRead`).

Every statement is walked once; one without any tenant table costs only that walk. In the
statement's own SELECT, UPDATE or DELETE, a plain table whose mapped class is one of its
entities counts as the ORM's: the ORM itself names plain primary-key columns there
(`Session.get`, refreshes), and they refer to the FROM that the ORM criteria scope. Inside a
nested SELECT (a subquery, a CTE, EXISTS) a plain tenant table is always Core, whatever the
outer statement names, so it is refused there.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Delete, Insert, Select, Table, Update, or_
from sqlalchemy.sql.elements import BindParameter, ClauseElement, ColumnClause, TextClause
from sqlalchemy.sql.selectable import Alias, FromClause, Join, TableClause

from backend.core.database import Base

TENANT_COLUMN = "tenant_id"


class TenantContextMissing(RuntimeError):
    """A tenant table was queried with no tenant context: a bug, never a user error."""


class TenantMismatch(RuntimeError):
    """A row was written into, or moved to, a tenant other than the context's."""


class UnscopableStatement(RuntimeError):
    """A statement names a tenant table where no tenant filter can be added to it."""


_trusted_aliases: set[int] = set()
_trusted_keepalive: list[FromClause] = []


def trust_alias(alias: FromClause) -> None:
    """Let `alias` through unfiltered: the SQLite form of a cross-tenant read (isolation)."""
    _trusted_aliases.add(id(alias))
    _trusted_keepalive.append(alias)


_names_cache: dict[int, tuple[frozenset[str], re.Pattern[str] | None]] = {}


def _tenant_table_names() -> tuple[frozenset[str], re.Pattern[str] | None]:
    """Names of the tenant tables, and a pattern that finds them in SQL text."""
    tables = Base.metadata.tables
    cached = _names_cache.get(len(tables))
    if cached is None:
        names = frozenset(t.name for t in tables.values() if TENANT_COLUMN in t.c)
        words = "|".join(sorted(names))
        pattern = re.compile(rf"\b({words})\b", re.IGNORECASE) if names else None
        cached = _names_cache[len(tables)] = (names, pattern)
    return cached


@dataclass
class TenantReferences:
    """What a statement names: any tenant table at all, and which of them are Core ones."""

    any: bool = False
    core: list[FromClause] = field(default_factory=list)
    nested: list[str] = field(default_factory=list)  # Core tenant tables inside a nested SELECT

    def __bool__(self) -> bool:
        return self.any


def _is_orm(element: ClauseElement) -> bool:
    return "parententity" in element._annotations


def _children(element: Any) -> Iterator[Any]:
    if isinstance(element, ColumnClause):
        if element.table is not None and not _is_orm(element):
            yield element.table
        return
    if isinstance(element, TableClause):  # Table included: its children are its own columns
        return
    if isinstance(element, Alias) and id(element) in _trusted_aliases:
        return
    if isinstance(element, Select):
        # Not Select.get_children(): it adds the FROMs derived from the columns, where an ORM
        # column's table comes back without its ORM annotation.
        omit = ("_from_obj", "_correlate", "_correlate_except")
        yield from super(Select, element).get_children(omit_attrs=omit)
        yield from element._from_obj
        return
    yield from element.get_children()


def tenant_references(statement: Any, mapped: frozenset[Any] = frozenset()) -> TenantReferences:
    """Walk `statement` once; refuse SQL text, lightweight tables or foreign tables naming a
    tenant table (`UnscopableStatement`).

    A plain tenant table counts as Core unless the SELECT it sits in (the statement itself, or
    a nested one) also names it as an ORM entity, or, in the statement itself, `mapped` (the
    tables of its entities) has it: the ORM criteria scope those, and the ORM itself writes
    plain columns there (relationship joins, primary-key loads)."""
    names, pattern = _tenant_table_names()
    found = TenantReferences()
    root = id(statement)
    plain: list[tuple[Table, int]] = []  # each with the SELECT it sits in
    orm_tables: set[tuple[int, int]] = {(id(table), root) for table in mapped}
    stack: list[tuple[Any, int]] = [(statement, root)]
    seen: set[tuple[int, int]] = set()
    while stack:
        element, scope = stack.pop()
        if (id(element), scope) in seen:  # one table object may sit in several SELECTs
            continue
        seen.add((id(element), scope))
        if isinstance(element, Alias) and id(element) not in _trusted_aliases:
            base = element.element
            if isinstance(base, Table) and base.name in names:
                found.any = True
                if not _is_orm(element):  # an ORM alias is the ORM criteria's own
                    found.core.append(element)
                continue
        if isinstance(element, TableClause) and element.name in names:
            found.any = True
            if not isinstance(element, Table) or element.metadata is not Base.metadata:
                raise UnscopableStatement(f"{element.name} named outside the mapped tables")
            if _is_orm(element):
                orm_tables.add((id(element._deannotate()), scope))
            else:
                plain.append((element, scope))
        elif isinstance(element, ColumnClause) and _is_orm(element):
            if element.table is not None and getattr(element.table, "name", None) in names:
                found.any = True  # an ORM column of a tenant table, in a subquery say
                orm_tables.add((id(element.table._deannotate()), scope))
        elif isinstance(element, TextClause | ColumnClause) and pattern is not None:
            _refuse_text_naming_tenant_tables(element, pattern)
        inner = id(element) if isinstance(element, Select) else scope
        stack.extend((child, inner) for child in _children(element))
    for table, scope in plain:
        if (id(table), scope) in orm_tables:
            continue
        if scope == root:
            found.core.append(table)
        else:
            found.nested.append(table.name)  # no filter is added inside a nested SELECT
    return found


def _refuse_text_naming_tenant_tables(element: Any, pattern: re.Pattern[str]) -> None:
    text = element.text if isinstance(element, TextClause) else element.name
    if (isinstance(element, TextClause) or element.is_literal) and pattern.search(text):
        raise UnscopableStatement(
            "SQL text names a tenant table; use the ORM, or a cross-tenant read"
        )


def _members(from_: Any, nullable: bool = False) -> Iterator[tuple[Any, bool]]:
    """The tables of a FROM element, each with whether an outer join may null it."""
    if isinstance(from_, Join):
        yield from _members(from_.left, nullable or from_.full)
        yield from _members(from_.right, nullable or from_.isouter)
    else:
        yield from_, nullable


def _matches(table: Any, tenant: Any, nullable: bool = False) -> Any:
    criterion = table.c[TENANT_COLUMN] == tenant
    return or_(criterion, table.c[TENANT_COLUMN].is_(None)) if nullable else criterion


def _refuse_nested(names: Sequence[str]) -> None:
    raise UnscopableStatement(
        f"a Core statement names {', '.join(sorted(set(names)))} where no tenant filter can be "
        "added (a subquery, a CTE, EXISTS): write it with ORM entities"
    )


def _refuse_leftovers(core: Sequence[FromClause], handled: set[int]) -> None:
    leftover = [getattr(t, "name", "?") for t in core if id(t) not in handled]
    if leftover:
        _refuse_nested(leftover)


def _refuse_tenant_change(statement: Update) -> None:
    if TENANT_COLUMN in _named(statement._values or {}):
        raise TenantMismatch("an UPDATE cannot move rows to another tenant")


def scope_core_statement(statement: Any, found: TenantReferences, tenant: Any) -> Any:
    """`statement` with the tenant filter on each of its Core tenant tables; `tenant` is the
    tenant's id or a bound parameter that will carry it."""
    if isinstance(statement, Update):
        _refuse_tenant_change(statement)
    if found.nested:
        _refuse_nested(found.nested)
    if not found.core:
        return statement
    core_ids = {id(table) for table in found.core}
    handled: set[int] = set()
    criteria = []
    if isinstance(statement, Select):
        for from_ in statement.get_final_froms():
            for table, nullable in _members(from_):
                if id(table) in core_ids:
                    handled.add(id(table))
                    criteria.append(_matches(table, tenant, nullable))
    elif isinstance(statement, Update | Delete) and id(statement.table) in core_ids:
        handled.add(id(statement.table))
        criteria.append(_matches(statement.table, tenant))
    elif isinstance(statement, Insert) and id(statement.table) in core_ids:
        handled.add(id(statement.table))
    _refuse_leftovers(found.core, handled)
    return statement.where(*criteria) if criteria else statement


def _tenant_of(value: Any) -> Any:
    if isinstance(value, BindParameter):
        value = value.value
    if isinstance(value, ClauseElement):
        raise TenantMismatch("an INSERT into a tenant table takes tenant_id as a plain value")
    return value if value is None or isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _checked_row(row: Mapping[Any, Any], tenant_id: uuid.UUID) -> dict[Any, Any]:
    named = _named(row)
    if TENANT_COLUMN not in named:
        return {**row, TENANT_COLUMN: tenant_id}
    if _tenant_of(row[named[TENANT_COLUMN]]) != tenant_id:
        raise TenantMismatch("an INSERT names a tenant other than the context's")
    return dict(row)


def scope_insert(statement: Insert, parameters: Any, tenant_id: uuid.UUID) -> tuple[Insert, Any]:
    """An INSERT into a tenant table, with its rows in the context's tenant: missing tenant ids
    come from the context, another tenant's is refused."""
    if statement.select is not None:
        raise UnscopableStatement("INSERT ... SELECT into a tenant table is refused")
    if statement._multi_values:
        for rows in statement._multi_values:
            for row in rows:
                if not isinstance(row, Mapping) or TENANT_COLUMN not in _named(row):
                    raise TenantMismatch("a multi-row INSERT must name the context's tenant")
                _checked_row(row, tenant_id)
        return statement, parameters
    values: Mapping[Any, Any] = statement._values or {}
    stated = TENANT_COLUMN in _named(values)
    if stated:
        _checked_row(values, tenant_id)
    if isinstance(parameters, Mapping) and parameters:
        parameters = [parameters]
        return statement, _checked_rows(parameters, tenant_id, stated)[0]
    if isinstance(parameters, Sequence) and parameters:
        return statement, _checked_rows(parameters, tenant_id, stated)
    return (
        (statement, parameters) if stated else (statement.values(tenant_id=tenant_id), parameters)
    )


def _named(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {getattr(key, "key", key): key for key in row}


def _checked_rows(rows: Sequence[Any], tenant_id: uuid.UUID, stated: bool) -> list[Any]:
    return [
        row if stated and TENANT_COLUMN not in _named(row) else _checked_row(row, tenant_id)
        for row in rows
    ]
