"""Project members: tenant members added or re-roled by PUT; leaving unassigns one's tasks."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor
from backend.projects import service
from tenants import service as tenants_service
from tenants.roles import ProjectRole, TenantRole
from tests.factories import UserFactory, persist
from tests.tenancy.world import TenantWorld, build_tenant


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    world = await build_tenant(
        db,
        "acme",
        members={"paul": TenantRole.MEMBER, "eddie": TenantRole.MEMBER, "nina": TenantRole.MEMBER},
    )
    await world.add_project(
        db, "Launch", members={"paul": ProjectRole.OWNER, "eddie": ProjectRole.EDITOR}
    )
    await world.add_project(db, "Other", members={"eddie": ProjectRole.EDITOR})
    return world


def member_url(world: TenantWorld, who: str, project: str = "Launch") -> str:
    return f"{world.project_url(project)}/members/{world.users[who].id}"


async def test_the_project_owner_adds_a_tenant_member_then_changes_their_role(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    headers = acme.headers(app, "paul")
    added = await client.put(member_url(acme, "nina"), json={"role": "viewer"}, headers=headers)
    changed = await client.put(member_url(acme, "nina"), json={"role": "editor"}, headers=headers)
    unchanged = await client.put(member_url(acme, "nina"), json={"role": "editor"}, headers=headers)

    assert (added.status_code, added.json()["role"]) == (201, "viewer")
    assert (changed.status_code, changed.json()["role"]) == (200, "editor")
    assert unchanged.status_code == 200
    assert changed.json()["email"] == acme.users["nina"].email
    listed = await client.get(f"{acme.project_url('Launch')}/members", headers=headers)
    assert [m["full_name"] for m in listed.json()["items"]] == ["paul", "eddie", "nina"]
    log = await client.get(f"{acme.url}/audit-events", headers=headers)
    assert log.status_code == 403  # a project owner is not a tenant admin


async def test_only_tenant_members_join_a_project(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    outsider = await persist(db, UserFactory())
    response = await client.put(
        f"{acme.project_url('Launch')}/members/{outsider.id}",
        json={"role": "editor"},
        headers=acme.headers(app, "paul"),
    )
    assert response.status_code == 404


async def test_editors_cannot_manage_members(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    headers = acme.headers(app, "eddie")
    put = await client.put(member_url(acme, "nina"), json={"role": "owner"}, headers=headers)
    removed = await client.delete(member_url(acme, "paul"), headers=headers)
    assert (put.status_code, removed.status_code) == (403, 403)


async def test_leaving_a_project_unassigns_ones_tasks_there_only(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    here = await acme.add_task(db, "Launch", assignee="eddie")
    elsewhere = await acme.add_task(db, "Other", assignee="eddie")

    left = await client.delete(member_url(acme, "eddie"), headers=acme.headers(app, "eddie"))

    assert left.status_code == 204
    assert (
        await client.get(acme.project_url("Launch"), headers=acme.headers(app, "eddie"))
    ).status_code == 404
    task = await client.get(
        f"{acme.project_url('Launch')}/tasks/{here.id}", headers=acme.headers(app, "paul")
    )
    assert task.json()["assignee_id"] is None
    other = await client.get(
        f"{acme.project_url('Other')}/tasks/{elsewhere.id}", headers=acme.headers(app, "eddie")
    )
    assert other.json()["assignee_id"] == str(acme.users["eddie"].id)


async def test_the_owner_removes_a_member_and_it_is_audited(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    await acme.add_member(db, "olga", TenantRole.OWNER)
    removed = await client.delete(member_url(acme, "eddie"), headers=acme.headers(app, "paul"))
    again = await client.delete(member_url(acme, "eddie"), headers=acme.headers(app, "paul"))

    assert (removed.status_code, again.status_code) == (204, 404)
    log = await client.get(f"{acme.url}/audit-events", headers=acme.headers(app, "olga"))
    event = log.json()["items"][0]
    assert (event["action"], event["target_id"], event["actor_user_id"]) == (
        "project_member.removed",
        str(acme.users["eddie"].id),
        str(acme.users["paul"].id),
    )


async def test_put_project_member_serves_invitations_too(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    newcomer = await persist(db, UserFactory())
    inviter = Actor(user_id=acme.users["paul"].id)
    project_id = acme.projects["Launch"].id

    async with app.state.database.session_factory() as session, session.begin():
        await tenants_service.add_member(session, acme.id, newcomer.id, TenantRole.MEMBER, inviter)
        created = await service.put_project_member(
            session, project_id, newcomer.id, ProjectRole.VIEWER, inviter
        )

    assert created is True
    members = await client.get(
        f"{acme.project_url('Launch')}/members", headers=acme.headers(app, "paul")
    )
    assert (members.json()["items"][-1]["user_id"], members.json()["items"][-1]["role"]) == (
        str(newcomer.id),
        "viewer",
    )
