"""SQL per request: one query decides access, one fetches a list, whatever the page size, and a
write answers from what it wrote, without reading it back.

Counted with an engine `before_cursor_execute` listener (tests/queries.py); `SET LOCAL` (the RLS
settings sent at the start of each PostgreSQL transaction) is not a query of the request's logic
and is ignored.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity.models import ClientRole
from tenants.roles import ProjectRole, TenantRole
from tests.factories import TaskFactory, persist
from tests.queries import counting_queries
from tests.world import TenantWorld, build_tenant


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
    assert len(statements) <= (1 if reads_only_the_tenant else 2), statements


async def test_a_page_of_200_tasks_costs_the_queries_of_a_page_of_one(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    launch = acme.projects["Launch"]
    tasks = [
        TaskFactory(tenant_id=acme.id, project_id=launch.id, assignee_id=acme.users["mia"].id)
        for _ in range(250)
    ]
    await persist(db, *tasks)
    url, headers = f"{acme.project_url('Launch')}/tasks", acme.headers(app, "mia")

    one, one_statements = await queries_for(app, client, url, headers, limit=1)
    full, full_statements = await queries_for(app, client, url, headers, limit=200)

    assert (len(one.json()["items"]), len(full.json()["items"])) == (1, 200)
    assert len(one_statements) == len(full_statements) <= 2, (one_statements, full_statements)


@pytest.mark.parametrize(
    ("role", "status", "queries"),
    [
        # access, the member with their project membership, INSERT, audit
        ("viewer", 201, 4),
        # access, the member with their project membership, UPDATE, audit
        ("editor", 200, 4),
        # access, the member with their project membership: nothing to write
        ("viewer", 200, 2),
    ],
)
async def test_putting_a_project_member_answers_without_reading_back(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    role: str,
    status: int,
    queries: int,
) -> None:
    nina = await acme.add_member(db, "nina", TenantRole.MEMBER)
    url = f"{acme.project_url('Launch')}/members/{nina.id}"
    headers = acme.headers(app, "olga")
    if status == 200:
        first = await client.put(url, json={"role": "viewer"}, headers=headers)
        assert first.status_code == 201, first.text

    with counting_queries(app.state.database.engine) as statements:
        response = await client.put(url, json={"role": role}, headers=headers)

    assert response.status_code == status, response.text
    listed = await client.get(f"{acme.project_url('Launch')}/members", headers=headers)
    assert response.json() in listed.json()["items"]
    assert len(statements) <= queries, statements


@pytest.mark.parametrize(("role", "queries"), [("admin", 5), ("member", 2)])
async def test_changing_a_member_role_answers_without_reading_back(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    role: str,
    queries: int,
) -> None:
    """Access, the membership with its user, then (for a change) the UPDATE, its audit and
    its outbox event."""
    url = f"{acme.url}/members/{acme.users['mia'].id}"
    headers = acme.headers(app, "olga")

    with counting_queries(app.state.database.engine) as statements:
        response = await client.patch(url, json={"role": role}, headers=headers)

    assert response.status_code == 200, response.text
    listed = await client.get(f"{acme.url}/members", headers=headers)
    assert response.json() in listed.json()["items"]
    assert len(statements) <= queries, statements
