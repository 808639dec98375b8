"""Members: roles change by the rules, a tenant keeps an owner, members may leave."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend.core.audit import Actor
from backend.projects.models import ProjectMember, Task
from tenants import service
from tenants.isolation import enter_tenant
from tenants.models import Membership
from tenants.roles import ProjectRole, TenantRole
from tests.auth import random_id
from tests.factories import UserFactory, persist
from tests.tenancy.world import TenantWorld, build_tenant


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    return await build_tenant(
        db,
        "acme",
        members={
            "olga": TenantRole.OWNER,
            "adam": TenantRole.ADMIN,
            "mia": TenantRole.MEMBER,
            "vic": TenantRole.VIEWER,
        },
    )


def member_url(world: TenantWorld, who: str) -> str:
    return f"{world.url}/members/{world.users[who].id}"


async def audit_actions(client: httpx.AsyncClient, app: FastAPI, world: TenantWorld) -> list:
    response = await client.get(f"{world.url}/audit-events", headers=world.headers(app, "olga"))
    return [(event["action"], event["data"]) for event in response.json()["items"]]


async def test_every_member_reads_the_member_list_in_joining_order(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    first = await client.get(
        f"{acme.url}/members", params={"limit": 3}, headers=acme.headers(app, "vic")
    )
    rest = await client.get(
        f"{acme.url}/members",
        params={"limit": 3, "cursor": first.json()["next_cursor"]},
        headers=acme.headers(app, "vic"),
    )

    assert [m["full_name"] for m in first.json()["items"]] == ["olga", "adam", "mia"]
    assert [(m["full_name"], m["role"]) for m in rest.json()["items"]] == [("vic", "viewer")]
    assert rest.json()["next_cursor"] is None
    assert set(first.json()["items"][0]) == {"user_id", "email", "full_name", "role", "created_at"}


async def test_an_admin_changes_roles_below_owner_and_it_is_audited(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    response = await client.patch(
        member_url(acme, "mia"), json={"role": "admin"}, headers=acme.headers(app, "adam")
    )

    assert response.status_code == 200
    assert (response.json()["user_id"], response.json()["role"]) == (
        str(acme.users["mia"].id),
        "admin",
    )
    assert (await audit_actions(client, app, acme))[0] == (
        "member.role_changed",
        {"role": {"from": "member", "to": "admin"}},
    )


@pytest.mark.parametrize(
    ("target", "role"),
    [("olga", "admin"), ("olga", "owner"), ("mia", "owner"), ("adam", "owner")],
)
async def test_an_admin_never_touches_owners_nor_grants_owner(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, target: str, role: str
) -> None:
    response = await client.patch(
        member_url(acme, target), json={"role": role}, headers=acme.headers(app, "adam")
    )
    assert response.status_code == 403


async def test_an_admin_cannot_remove_an_owner(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    response = await client.delete(member_url(acme, "olga"), headers=acme.headers(app, "adam"))
    assert response.status_code == 403


async def test_an_owner_makes_another_owner_who_may_then_step_down(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    promoted = await client.patch(
        member_url(acme, "adam"), json={"role": "owner"}, headers=acme.headers(app, "olga")
    )
    stepped_down = await client.patch(
        member_url(acme, "olga"), json={"role": "member"}, headers=acme.headers(app, "olga")
    )

    assert (promoted.status_code, stepped_down.status_code) == (200, 200)


async def test_the_last_owner_can_be_neither_demoted_nor_removed(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    headers = acme.headers(app, "olga")
    demoted = await client.patch(member_url(acme, "olga"), json={"role": "admin"}, headers=headers)
    left = await client.delete(member_url(acme, "olga"), headers=headers)

    assert (demoted.status_code, left.status_code) == (409, 409)
    assert "at least one owner" in demoted.json()["detail"]


async def test_members_and_viewers_cannot_manage_members(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    for who in ("mia", "vic"):
        headers = acme.headers(app, who)
        other = "vic" if who == "mia" else "mia"
        patched = await client.patch(
            member_url(acme, other), json={"role": "viewer"}, headers=headers
        )
        removed = await client.delete(member_url(acme, other), headers=headers)
        assert (patched.status_code, removed.status_code) == (403, 403), who


@pytest.mark.parametrize("who", ["adam", "mia", "vic"])
async def test_any_member_may_leave(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, who: str
) -> None:
    left = await client.delete(member_url(acme, who), headers=acme.headers(app, who))

    assert left.status_code == 204
    assert (await client.get(acme.url, headers=acme.headers(app, who))).status_code == 404
    assert (await audit_actions(client, app, acme))[0][0] == "member.left"


async def test_an_owner_may_leave_while_another_owner_remains(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    await client.patch(
        member_url(acme, "adam"), json={"role": "owner"}, headers=acme.headers(app, "olga")
    )
    left = await client.delete(member_url(acme, "olga"), headers=acme.headers(app, "olga"))
    assert left.status_code == 204


async def test_removing_a_member_drops_their_project_roles_and_unassigns_their_tasks(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    superuser_engine: AsyncEngine,
) -> None:
    await acme.add_project(db, "Launch", members={"mia": ProjectRole.EDITOR})
    await acme.add_project(db, "Docs", members={"mia": ProjectRole.OWNER})
    launch_task = await acme.add_task(db, "Launch", assignee="mia")
    docs_task = await acme.add_task(db, "Docs", assignee="mia")

    removed = await client.delete(member_url(acme, "mia"), headers=acme.headers(app, "adam"))

    assert removed.status_code == 204
    async with superuser_engine.connect() as connection:
        mia_id = acme.users["mia"].id
        assert (
            await connection.scalar(
                select(ProjectMember.user_id).where(ProjectMember.user_id == mia_id)
            )
            is None
        )
        assignees = await connection.execute(
            select(Task.id, Task.assignee_id).where(Task.id.in_([launch_task.id, docs_task.id]))
        )
        assert {assignee for _, assignee in assignees} == {None}
    assert (await audit_actions(client, app, acme))[0] == ("member.removed", {"role": "member"})


async def test_unknown_members_are_404(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    globex = await build_tenant(db, "globex", members={"gus": TenantRole.MEMBER})
    headers = acme.headers(app, "olga")
    for user_id in (random_id(), str(globex.users["gus"].id)):
        url = f"{acme.url}/members/{user_id}"
        assert (
            await client.patch(url, json={"role": "viewer"}, headers=headers)
        ).status_code == 404
        assert (await client.delete(url, headers=headers)).status_code == 404


async def test_add_member_for_invitations_is_idempotent_and_audited(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    newcomer = await persist(db, UserFactory())
    inviter = Actor(user_id=acme.users["adam"].id)

    for role in (TenantRole.MEMBER, TenantRole.ADMIN):  # the second call changes nothing
        async with app.state.database.session_factory() as session, session.begin():
            membership = await service.add_member(session, acme.id, newcomer.id, role, inviter)
            assert membership.role is TenantRole.MEMBER

    members = await client.get(f"{acme.url}/members", headers=acme.headers(app, "vic"))
    assert members.json()["items"][-1]["user_id"] == str(newcomer.id)
    added = [a for a in await audit_actions(client, app, acme) if a[0] == "member.added"]
    assert added == [("member.added", {"role": "member"})]


async def test_two_owners_leaving_at_once_leave_one_owner(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    for attempt in range(5):
        world = await build_tenant(
            db, f"race-{attempt}", members={"ann": TenantRole.OWNER, "ben": TenantRole.OWNER}
        )
        first, second = await asyncio.gather(
            client.delete(member_url(world, "ann"), headers=world.headers(app, "ann")),
            client.delete(member_url(world, "ben"), headers=world.headers(app, "ben")),
        )
        assert sorted([first.status_code, second.status_code]) == [204, 409]
        await db.rollback()
        await enter_tenant(db, world.id)
        owners = await db.scalars(select(Membership).where(Membership.role == TenantRole.OWNER))
        assert len(owners.all()) == 1
