"""SQL per request: one query decides access, one fetches a list, whatever the page size.

Counted with an engine `before_cursor_execute` listener; `SET LOCAL` (the RLS settings sent at
the start of each PostgreSQL transaction) is not a query of the request's logic and is ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend.identity.models import ClientRole
from tenants.isolation import cross_tenant
from tenants.roles import ProjectRole, TenantRole
from tests.factories import TaskFactory, persist
from tests.tenancy.world import TenantWorld, build_tenant


@contextmanager
def counting_queries(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith("SET LOCAL"):
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    world = await build_tenant(
        db, "acme", members={"olga": TenantRole.OWNER, "mia": TenantRole.MEMBER}
    )
    await world.add_project(db, "Launch", members={"mia": ProjectRole.EDITOR})
    await world.add_project(db, "Other")
    await world.add_task(db, "Launch", assignee="mia")
    await world.add_client(db, "robot", ClientRole.VIEWER)
    return world


async def queries_for(
    app: FastAPI, client: httpx.AsyncClient, url: str, headers: dict[str, str], **params: Any
) -> tuple[httpx.Response, list[str]]:
    with counting_queries(app.state.database.engine) as statements:
        response = await client.get(url, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response, statements


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("olga", ""),
        ("olga", "/members"),
        ("olga", "/audit-events"),
        ("olga", "/clients"),
        ("olga", "/projects"),
        ("mia", "/projects"),
        ("robot", "/projects"),
        ("mia", "/projects/{Launch}"),
        ("mia", "/projects/{Launch}/members"),
        ("mia", "/projects/{Launch}/tasks"),
        ("olga", "/projects/{Launch}/tasks"),
        ("robot", "/projects/{Launch}/tasks"),
        ("mia", "/projects/{Launch}/tasks/{task}"),
    ],
)
async def test_one_query_decides_access_and_one_fetches_the_data(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, who: str, path: str
) -> None:
    url = acme.url + path.format(Launch=acme.projects["Launch"].id, task=acme.tasks[0].id)
    _, statements = await queries_for(app, client, url, acme.headers(app, who))

    reads_only_the_tenant = path == "" or path == "/projects/{Launch}"
    assert len(statements) == (1 if reads_only_the_tenant else 2), statements


async def test_a_page_of_200_tasks_costs_the_queries_of_a_page_of_one(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    launch = acme.projects["Launch"]
    tasks = [
        TaskFactory(tenant_id=acme.id, project_id=launch.id, assignee_id=acme.users["mia"].id)
        for _ in range(250)
    ]
    async with cross_tenant(db, "test arrangement"):
        await persist(db, *tasks)
    url, headers = f"{acme.project_url('Launch')}/tasks", acme.headers(app, "mia")

    one, one_statements = await queries_for(app, client, url, headers, limit=1)
    full, full_statements = await queries_for(app, client, url, headers, limit=200)

    assert (len(one.json()["items"]), len(full.json()["items"])) == (1, 200)
    assert len(one_statements) == len(full_statements) == 2
