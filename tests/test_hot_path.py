"""What keeps the request path cheap, checked so that it stays so (README, "Performance")."""

from __future__ import annotations

import gc
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy import bindparam, event, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.memory import return_large_blocks_to_the_system
from backend.projects.models import Task
from tenants import isolation
from tenants.isolation import enter_tenant
from tests.world import build_tenant


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def _runs_on_the_event_loop(call: Callable[..., Any]) -> bool:
    function = call if inspect.isroutine(call) else type(call).__call__
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


def test_no_route_dependency_runs_in_the_thread_pool(app: FastAPI) -> None:
    """FastAPI runs a plain `def` dependency in a worker thread: a hop there and back on every
    request, for work that never blocks."""
    threaded = {
        f"{route.path}: {dependency.call}"
        for route in app.routes
        if isinstance(route, APIRoute)
        for dependency in _dependencies(route.dependant)
        if dependency.call is not None and not _runs_on_the_event_loop(dependency.call)
    }
    assert threaded == set()


async def test_the_filter_keeps_no_statement_built_per_request(db: AsyncSession) -> None:
    """The tenant filter remembers each statement's scoped form while the statement lives:
    for ever for one built once, and no longer than the request for one built in it."""
    world = await build_tenant(db, "acme")
    await enter_tenant(db, world.id)
    gc.collect()
    before = len(isolation._scopes), len(isolation._scoped_reads)
    for _ in range(3):
        statement: Any = select(Task.id).where(Task.title == "x")
        await db.execute(statement)
    del statement
    gc.collect()
    assert (len(isolation._scopes), len(isolation._scoped_reads)) == before

    # Every hook hands SQLAlchemy the same object for a statement built once: its cache key,
    # computed once, is kept.
    built_once = select(Task.id).where(Task.title == bindparam("title"))
    executed: list[Any] = []

    def remember(_connection: Any, statement: Any, *_: Any) -> None:
        executed.append(statement)

    engine = db.get_bind()
    event.listen(engine, "before_execute", remember)
    try:
        await db.execute(built_once, {"title": "x"})
        await db.execute(built_once, {"title": "y"})
    finally:
        event.remove(engine, "before_execute", remember)
    assert executed[0] is executed[1] is not built_once


def test_large_freed_blocks_go_back_to_the_system() -> None:
    assert return_large_blocks_to_the_system()
