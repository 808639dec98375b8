"""Counting the SQL statements a request sends, for the query-count tests.

Counted with an engine `before_cursor_execute` listener; `SET LOCAL` (the RLS settings sent at
the start of each PostgreSQL transaction) is not a query of the request's logic and is ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@contextmanager
def counting_queries(*engines: AsyncEngine) -> Iterator[list[str]]:
    """The statements sent through any of `engines` while the block runs."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith("SET LOCAL"):
            statements.append(statement)

    for engine in engines:
        event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine.sync_engine, "before_cursor_execute", record)
