"""Projects: who sees which, the effective role, and deletion (to the trash) with its tasks."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend.identity.models import ClientRole
from backend.projects.models import Project, ProjectMember, Task
from tenants.roles import ProjectRole, TenantRole
from tests.auth import random_id
from tests.world import TenantWorld, build_tenant


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    world = await build_tenant(
        db,
        "acme",
        members={
            "olga": TenantRole.OWNER,
            "adam": TenantRole.ADMIN,
            "mia": TenantRole.MEMBER,
            "vic": TenantRole.VIEWER,
        },
    )
    await world.add_project(
        db, "Launch", members={"mia": ProjectRole.EDITOR, "vic": ProjectRole.EDITOR}
    )
    await world.add_project(db, "Secret")
    await world.add_client(db, "robot", ClientRole.MEMBER)
    return world


async def visible(client: httpx.AsyncClient, app: FastAPI, world: TenantWorld, who: str) -> dict:
    response = await client.get(f"{world.url}/projects", headers=world.headers(app, who))
    assert response.status_code == 200
    return {p["name"]: p["role"] for p in response.json()["items"]}


async def test_each_caller_sees_the_projects_the_design_allows_with_their_effective_role(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    both = {"acme Launch", "acme Secret"}
    assert await visible(client, app, acme, "olga") == dict.fromkeys(both, "owner")
    assert await visible(client, app, acme, "adam") == dict.fromkeys(both, "owner")
    assert await visible(client, app, acme, "robot") == dict.fromkeys(both, "editor")
    assert await visible(client, app, acme, "mia") == {"acme Launch": "editor"}
    # A tenant viewer is capped at viewer, whatever the project says.
    assert await visible(client, app, acme, "vic") == {"acme Launch": "viewer"}


async def test_a_project_the_caller_cannot_see_is_404_like_one_that_does_not_exist(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    hidden = await client.get(acme.project_url("Secret"), headers=acme.headers(app, "mia"))
    missing = await client.get(
        f"{acme.url}/projects/{random_id()}", headers=acme.headers(app, "mia")
    )
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"]


async def test_a_member_creates_a_project_and_owns_it(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    created = await client.post(
        f"{acme.url}/projects",
        json={"name": "Mine", "description": "mia's"},
        headers=acme.headers(app, "mia"),
    )
    assert created.status_code == 201, created.text
    assert (created.json()["role"], created.json()["created_by"]) == (
        "owner",
        str(acme.users["mia"].id),
    )
    members = await client.get(
        f"{acme.url}/projects/{created.json()['id']}/members", headers=acme.headers(app, "mia")
    )
    assert [(m["full_name"], m["role"]) for m in members.json()["items"]] == [("mia", "owner")]


async def test_a_tenant_viewer_cannot_create_projects(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    response = await client.post(
        f"{acme.url}/projects", json={"name": "No"}, headers=acme.headers(app, "vic")
    )
    assert response.status_code == 403


async def test_editors_edit_and_viewers_read(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    url = acme.project_url("Launch")
    edited = await client.patch(url, json={"description": "go"}, headers=acme.headers(app, "mia"))
    refused = await client.patch(url, json={"name": "x"}, headers=acme.headers(app, "vic"))
    read = await client.get(url, headers=acme.headers(app, "vic"))

    assert (edited.status_code, edited.json()["description"]) == (200, "go")
    assert refused.status_code == 403
    assert (read.status_code, read.json()["role"]) == (200, "viewer")


async def test_deleting_a_project_moves_it_and_its_tasks_to_the_trash_and_is_audited(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    superuser_engine: AsyncEngine,
) -> None:
    await acme.add_task(db, "Launch", assignee="mia")
    await acme.add_task(db, "Secret")
    refused = await client.delete(acme.project_url("Launch"), headers=acme.headers(app, "mia"))

    deleted = await client.delete(acme.project_url("Launch"), headers=acme.headers(app, "adam"))

    assert (refused.status_code, deleted.status_code) == (403, 204)
    launch_id = acme.projects["Launch"].id
    async with superuser_engine.connect() as connection:
        project = (await connection.execute(select(Project).where(Project.id == launch_id))).one()
        in_trash = select(Task.deleted_at).where(Task.project_id == launch_id)
        assert set(await connection.scalars(in_trash)) == {project.deleted_at}
        assert project.deleted_by == acme.users["adam"].id
        # The members stay, hidden with the project, for a restore to bring back.
        members = select(func.count()).select_from(ProjectMember)
        assert await connection.scalar(members.where(ProjectMember.project_id == launch_id)) == 2
        live = select(func.count()).select_from(Task).where(Task.deleted_at.is_(None))
        assert await connection.scalar(live) == 1
    log = await client.get(f"{acme.url}/audit-events", headers=acme.headers(app, "adam"))
    assert log.json()["items"][0]["action"] == "project.deleted"
    assert log.json()["items"][0]["target_id"] == str(launch_id)


async def test_projects_page_by_page(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    for n in range(3):
        await acme.add_project(db, f"extra {n}")
    url, headers = f"{acme.url}/projects", acme.headers(app, "olga")

    names, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(url, params=params, headers=headers)).json()
        names += [p["name"] for p in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break

    assert names == ["acme Launch", "acme Secret", "acme extra 0", "acme extra 1", "acme extra 2"]


async def test_limits_and_cursors_are_checked(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    url, headers = f"{acme.url}/projects", acme.headers(app, "olga")
    assert (await client.get(url, params={"limit": 201}, headers=headers)).status_code == 422
    assert (await client.get(url, params={"limit": 0}, headers=headers)).status_code == 422
    assert (await client.get(url, params={"cursor": "garbage"}, headers=headers)).status_code == 400
