"""Soft deletes: rows whose `deleted_at` is set are hidden from every read, fail-safe.

A model with the `SoftDeletable` mixin (projects, tasks) keeps its deleted rows in the trash
until the purge removes them. Every ORM SELECT of the app's sessions gets, from a
`do_orm_execute` hook of the same kind as the tenant filter (`tenants.isolation`), the
criterion `deleted_at IS NULL` on every soft-deletable entity it names: as the selected entity,
in a column select, a join (in its ON clause), a subquery or a relationship load. Nobody has to
remember a WHERE: a plain `select(Task)` never returns a deleted task.

Rows that belong to a deleted row without being deletable themselves (the invitations into a
project in the trash) are hidden the same way: their model registers its criterion with
`hide_also`.

The one way to read deleted rows is the explicit execution option `INCLUDE_DELETED`, used by
the trash, restore and purge only (`tests/test_soft_delete.py` lists its callers).

UPDATE and DELETE statements are left alone: a single-row write selects its row first (so it
never reaches a deleted one), and the bulk cleanups (unassigning the tasks of someone who
leaves) must reach rows in the trash too, or a restored row would point at a member who left.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, ForeignKey, event
from sqlalchemy.orm import Mapped, ORMExecuteState, mapped_column, with_loader_criteria

from backend.core.database import AppSession
from backend.core.statements import PerStatement

# `session.execute(statement, execution_options=INCLUDE_DELETED)`, or
# `statement.execution_options(**INCLUDE_DELETED)`: the statement sees deleted rows too.
INCLUDE_DELETED_KEY = "include_deleted"
INCLUDE_DELETED: dict[str, Any] = {INCLUDE_DELETED_KEY: True}


class SoftDeletable:
    """`deleted_at` and `deleted_by`: set by a delete, cleared by a restore."""

    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )


# Built once: the criteria take no value from the request.
_HIDDEN: list[Any] = [
    with_loader_criteria(SoftDeletable, lambda cls: cls.deleted_at.is_(None), include_aliases=True)
]


def hide_also(entity: type[Any], visible: Callable[[Any], ColumnElement[bool]]) -> None:
    """Hide the rows of `entity` for which `visible(entity)` is false, as deleted rows are."""
    _HIDDEN.append(with_loader_criteria(entity, visible, include_aliases=True))


# Each statement object's hidden form, built once: a statement built once then keeps the cache
# key SQLAlchemy computed for it (see `PerStatement`).
_hidden_forms: PerStatement[Any] = PerStatement()


@event.listens_for(AppSession, "do_orm_execute")
def _hide_deleted_rows(state: ORMExecuteState) -> None:
    if not state.is_select or state.execution_options.get(INCLUDE_DELETED_KEY):
        return
    statement = state.statement
    state.statement = _hidden_forms.get(statement, lambda: statement.options(*_HIDDEN))
