"""Type names for statements and rows of any shape, and statement rewrites done once.

SQLAlchemy types a SELECT by the tuple of what it selects (`Select[User, Tenant]`); code that
takes or extends any SELECT names it with these.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeAlias, TypeVar

from sqlalchemy import Row, Select

AnySelect: TypeAlias = Select[*tuple[Any, ...]]
AnyRow: TypeAlias = Row[*tuple[Any, ...]]
ValueT = TypeVar("ValueT")


class PerStatement(Generic[ValueT]):
    """A value derived from a statement object, computed once and kept while that object lives.

    SQLAlchemy keeps the cache key of a statement object once computed: a statement built once
    (a module constant, with bound parameters for what varies) is walked for its key once, not
    on every execution. A `do_orm_execute` hook that replaces the statement (`.options()`,
    `.where()`) makes a new object, whose key is computed again on every execution: a walk of
    the whole statement. A hook that keeps its rewrite here hands back the same object for the
    same statement, so the saving survives it; hooks compose, each one's result being the next
    one's key. What is derived must depend on the statement alone: a value from the request
    goes in a bound parameter.
    """

    def __init__(self) -> None:
        self._values: weakref.WeakKeyDictionary[Any, ValueT] = weakref.WeakKeyDictionary()

    def get(self, statement: Any, derive: Callable[[], ValueT]) -> ValueT:
        value = self._values.get(statement)
        if value is None:
            value = self._values[statement] = derive()
        return value

    def __len__(self) -> int:
        return len(self._values)
