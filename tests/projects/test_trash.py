"""Soft delete of projects and tasks: hidden from every read, the trash, restore and purge."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend.core.database import utcnow
from backend.core.leases import PURGE_LEASE, claim_lease
from backend.identity.models import ClientRole
from backend.invitations.models import Invitation
from backend.invitations.tokens import issue_token
from backend.projects.models import Project, ProjectMember, Task
from backend.projects.purge import purge_daily, run_purge
from tenants.isolation import enter_tenant
from tenants.roles import ProjectRole, TenantRole
from tests.auth import bearer
from tests.factories import InvitationFactory, UserFactory, persist
from tests.world import TenantWorld, build_tenant

PEOPLE = {
    "olga": TenantRole.OWNER,
    "adam": TenantRole.ADMIN,
    "mia": TenantRole.MEMBER,  # owns Launch
    "max": TenantRole.MEMBER,  # edits Launch, owns nothing
    "vic": TenantRole.VIEWER,
}


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    world = await build_tenant(db, "acme", members=PEOPLE)
    await world.add_project(db, "Launch", {"mia": ProjectRole.OWNER, "max": ProjectRole.EDITOR})
    await world.add_project(db, "Other", {"max": ProjectRole.OWNER})
    await world.add_task(db, "Launch", assignee="max", title="countdown")
    await world.add_task(db, "Launch", title="fuel")
    await world.add_task(db, "Other", title="paint")
    await world.add_client(db, "robot", ClientRole.ADMIN)
    await world.add_client(db, "bot", ClientRole.MEMBER)
    return world


def task_url(world: TenantWorld, project: str, index: int) -> str:
    return f"{world.project_url(project)}/tasks/{world.tasks[index].id}"


async def trash(
    client: httpx.AsyncClient, app: FastAPI, world: TenantWorld, who: str, **params: object
) -> httpx.Response:
    return await client.get(f"{world.url}/trash", params=params, headers=world.headers(app, who))


def _get_routes(app: FastAPI, naming: str) -> list[str]:
    """Every GET route of the API whose path names `naming` (a path parameter)."""
    paths = app.openapi()["paths"]
    return sorted(
        path for path, operations in paths.items() if "get" in operations and naming in path
    )


def _fill(path: str, world: TenantWorld, **ids: object) -> str:
    return path.format(tenant_id=world.id, **{k: str(v) for k, v in ids.items()})


async def test_a_deleted_project_is_hidden_from_every_read(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    token = issue_token(acme.id)
    invitation = InvitationFactory(
        token=token,
        tenant_id=acme.id,
        project_id=acme.projects["Launch"].id,
        project_role=ProjectRole.EDITOR,
        inviter=None,
        invited_by=acme.users["mia"].id,
    )
    await persist(db, invitation)
    olga = acme.headers(app, "olga")
    assert (await client.delete(acme.project_url("Launch"), headers=olga)).status_code == 204

    routes = _get_routes(app, "{project_id}")
    assert len(routes) >= 4  # the project, its members, a member, its tasks, a task
    launch, task = acme.projects["Launch"], acme.tasks[0]
    for path in routes:
        url = _fill(path, acme, project_id=launch.id, task_id=task.id, user_id=acme.users["mia"].id)
        for who in ("olga", "mia"):
            response = await client.get(url, headers=acme.headers(app, who))
            assert response.status_code == 404, (path, who)
    projects = await client.get(f"{acme.url}/projects", headers=olga)
    assert [p["name"] for p in projects.json()["items"]] == ["acme Other"]
    invitations = await client.get(f"{acme.url}/invitations", headers=olga)
    assert invitations.json()["items"] == []
    preview = await client.get(f"/api/v1/invitations/{token.value}")
    resent = await client.post(f"{acme.url}/invitations/{invitation.id}/resend", headers=olga)
    assert (preview.status_code, resent.status_code) == (404, 404)
    # Writes reach it no more either.
    again = await client.delete(acme.project_url("Launch"), headers=olga)
    renamed = await client.patch(acme.project_url("Launch"), json={"name": "x"}, headers=olga)
    assert (again.status_code, renamed.status_code) == (404, 404)


async def test_a_deleted_task_is_hidden_from_every_read(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    headers = acme.headers(app, "max")
    deleted = await client.delete(task_url(acme, "Launch", 0), headers=headers)
    assert deleted.status_code == 204

    for path in _get_routes(app, "{task_id}"):
        url = _fill(path, acme, project_id=acme.projects["Launch"].id, task_id=acme.tasks[0].id)
        assert (await client.get(url, headers=headers)).status_code == 404, path
    listed = await client.get(f"{acme.project_url('Launch')}/tasks", headers=headers)
    assert [t["title"] for t in listed.json()["items"]] == ["fuel"]
    assigned = await client.get(
        f"{acme.project_url('Launch')}/tasks",
        params={"assignee_id": str(acme.users["max"].id)},
        headers=headers,
    )
    assert assigned.json()["items"] == []
    edited = await client.patch(task_url(acme, "Launch", 0), json={"title": "x"}, headers=headers)
    assert edited.status_code == 404


async def test_the_fail_safe_filter_hides_deleted_rows_from_plain_selects(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    """Nobody writes `deleted_at IS NULL`: entity, column, join and count selects all hide
    deleted rows in a tenant's context."""
    await client.delete(acme.project_url("Launch"), headers=acme.headers(app, "olga"))
    async with app.state.database.session_factory() as session:
        await enter_tenant(session, acme.id)
        assert [t.title for t in await session.scalars(select(Task))] == ["paint"]
        assert list(await session.scalars(select(Task.title))) == ["paint"]
        assert await session.scalar(select(func.count()).select_from(Project)) == 1
        joined = select(ProjectMember.user_id).join(
            Project,
            (Project.tenant_id == ProjectMember.tenant_id)
            & (Project.id == ProjectMember.project_id),
        )
        assert list(await session.scalars(joined)) == [acme.users["max"].id]
        assert await session.get(Project, (acme.id, acme.projects["Launch"].id)) is None


async def test_the_trash_newest_first_page_by_page(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    olga = acme.headers(app, "olga")
    await client.delete(task_url(acme, "Other", 2), headers=olga)
    await client.delete(task_url(acme, "Launch", 1), headers=olga)
    await client.delete(acme.project_url("Launch"), headers=olga)  # with its other task

    first = await trash(client, app, acme, "olga", limit=2)
    second = await trash(client, app, acme, "olga", limit=2, cursor=first.json()["next_cursor"])

    assert first.status_code == 200
    items = first.json()["items"] + second.json()["items"]
    assert second.json()["next_cursor"] is None
    assert [(i["type"], i["name"]) for i in items] == [
        ("project", "acme Launch"),
        ("task", "fuel"),
        ("task", "paint"),
    ]
    project = items[0]
    assert project["id"] == project["project_id"] == str(acme.projects["Launch"].id)
    assert project["deleted_by"] == str(acme.users["olga"].id)
    assert items[1]["project_id"] == str(acme.projects["Launch"].id)
    retention = timedelta(days=app.state.settings.trash_retention_days)
    for item in items:
        deleted_at = _time(item["deleted_at"])
        assert _time(item["purge_after"]) == deleted_at + retention


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("who", "status", "sees"),
    [
        ("olga", 200, {"acme Launch", "acme Other", "paint"}),
        ("adam", 200, {"acme Launch", "acme Other", "paint"}),
        ("robot", 200, {"acme Launch", "acme Other", "paint"}),
        ("mia", 200, {"acme Launch"}),
        ("max", 200, {"acme Other", "paint"}),
        ("vic", 403, None),
        ("bot", 403, None),
    ],
)
async def test_who_sees_which_entries_of_the_trash(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    who: str,
    status: int,
    sees: set[str] | None,
) -> None:
    olga = acme.headers(app, "olga")
    await client.delete(task_url(acme, "Other", 2), headers=olga)
    await client.delete(acme.project_url("Launch"), headers=olga)
    await client.delete(acme.project_url("Other"), headers=olga)

    response = await trash(client, app, acme, who)

    assert response.status_code == status
    if sees is not None:
        assert {item["name"] for item in response.json()["items"]} == sees


async def test_members_who_own_no_project_and_strangers_are_refused(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    await acme.add_member(db, "nina", TenantRole.MEMBER)
    stranger = await persist(db, UserFactory())

    member = await trash(client, app, acme, "nina")
    outsider = await client.get(f"{acme.url}/trash", headers=bearer(app, stranger))

    assert (member.status_code, outsider.status_code) == (403, 404)


async def test_restoring_a_project_brings_back_the_tasks_deleted_with_it(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    mia, olga = acme.headers(app, "mia"), acme.headers(app, "olga")
    await client.delete(task_url(acme, "Launch", 1), headers=mia)  # on its own, first
    await client.delete(acme.project_url("Launch"), headers=mia)
    restore = f"{acme.project_url('Launch')}/restore"

    editor = await client.post(restore, headers=acme.headers(app, "max"))
    restored = await client.post(restore, headers=mia)
    again = await client.post(restore, headers=mia)

    assert (editor.status_code, restored.status_code, again.status_code) == (403, 200, 404)
    assert restored.json()["name"] == "acme Launch"
    assert restored.headers["ETag"]
    tasks = await client.get(f"{acme.project_url('Launch')}/tasks", headers=mia)
    assert [t["title"] for t in tasks.json()["items"]] == ["countdown"]
    entries = (await trash(client, app, acme, "olga")).json()["items"]
    assert [(e["type"], e["name"]) for e in entries] == [("task", "fuel")]

    task = await client.post(f"{task_url(acme, 'Launch', 1)}/restore", headers=mia)
    assert task.status_code == 200
    assert task.json()["title"] == "fuel"
    assert (await client.get(task_url(acme, "Launch", 1), headers=mia)).status_code == 200
    log = await client.get(f"{acme.url}/audit-events", headers=olga)
    actions = [event["action"] for event in log.json()["items"]]
    assert actions[:4] == ["task.restored", "project.restored", "project.deleted", "task.deleted"]


async def test_a_project_editor_restores_tasks_but_not_the_project(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    max_ = acme.headers(app, "max")
    await client.delete(task_url(acme, "Launch", 0), headers=max_)
    viewer = await client.post(
        f"{task_url(acme, 'Launch', 0)}/restore", headers=acme.headers(app, "vic")
    )
    restored = await client.post(f"{task_url(acme, 'Launch', 0)}/restore", headers=max_)
    live = await client.post(f"{task_url(acme, 'Launch', 1)}/restore", headers=max_)

    assert (viewer.status_code, restored.status_code, live.status_code) == (404, 200, 404)


async def test_names_are_unique_among_the_projects_not_in_the_trash(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    olga = acme.headers(app, "olga")
    projects = f"{acme.url}/projects"
    taken = await client.post(projects, json={"name": "acme Launch"}, headers=olga)
    renamed = await client.patch(
        acme.project_url("Other"), json={"name": "acme Launch"}, headers=olga
    )
    await client.delete(acme.project_url("Launch"), headers=olga)
    reused = await client.post(projects, json={"name": "acme Launch"}, headers=olga)
    restored = await client.post(f"{acme.project_url('Launch')}/restore", headers=olga)

    assert (taken.status_code, renamed.status_code) == (409, 409)
    assert (reused.status_code, restored.status_code) == (201, 409)
    assert restored.headers["content-type"] == "application/problem+json"


async def _deleted_long_ago(engine: AsyncEngine, days: int) -> None:
    """Date every deletion so far `days` back (as the superuser: the test's clock)."""
    then = utcnow() - timedelta(days=days)
    async with engine.begin() as connection:
        for model in (Project, Task):
            deleted = model.deleted_at.is_not(None)
            await connection.execute(update(model).where(deleted).values(deleted_at=then))


async def test_the_purge_removes_what_is_past_retention_and_records_it(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    superuser_engine: AsyncEngine,
) -> None:
    globex = await build_tenant(db, "globex", members={"gus": TenantRole.OWNER})
    await globex.add_project(db, "Launch")
    olga = acme.headers(app, "olga")
    await client.delete(task_url(acme, "Other", 2), headers=olga)
    await client.delete(acme.project_url("Launch"), headers=olga)
    await _deleted_long_ago(superuser_engine, app.state.settings.trash_retention_days + 1)
    await client.delete(acme.project_url("Other"), headers=olga)  # today: kept

    report = await run_purge(app.state.database, app.state.settings)

    assert report is not None
    assert (report.tenants, report.projects, report.tasks) == (0, 1, 3)
    async with superuser_engine.connect() as connection:
        names = set(await connection.scalars(select(Project.name)))
        assert names == {"acme Other", "globex Launch"}
        members = select(func.count()).select_from(ProjectMember)
        launch = ProjectMember.project_id == acme.projects["Launch"].id
        assert await connection.scalar(members.where(launch)) == 0
        invitations = select(func.count()).select_from(Invitation)
        assert await connection.scalar(invitations) == 0
    entries = (await trash(client, app, acme, "olga")).json()["items"]
    assert [e["name"] for e in entries] == ["acme Other"]
    restore = await client.post(f"{acme.project_url('Launch')}/restore", headers=olga)
    assert restore.status_code == 404
    restore_task = await client.post(f"{task_url(acme, 'Other', 2)}/restore", headers=olga)
    assert restore_task.status_code == 404  # "paint", deleted on its own and purged
    log = (await client.get(f"{acme.url}/audit-events", headers=olga)).json()["items"]
    purged = [event for event in log if event["action"] == "trash.purged"]
    assert len(purged) == 1
    assert purged[0]["actor_user_id"] is None
    assert purged[0]["data"]["projects"] == [
        {"id": str(acme.projects["Launch"].id), "name": "acme Launch"}
    ]
    assert [t["title"] for t in purged[0]["data"]["tasks"]] == ["paint"]


async def test_two_workers_claiming_the_purge_lease_at_once_get_it_once(app: FastAPI) -> None:
    database = app.state.database
    start = asyncio.Event()

    async def claim(holder: str) -> object:
        async with database.session_factory() as session, session.begin():
            await start.wait()
            return await claim_lease(session, PURGE_LEASE, holder, timedelta(minutes=5))

    claims = [asyncio.create_task(claim(f"worker-{n}")) for n in range(2)]
    await asyncio.sleep(0)
    start.set()
    results = await asyncio.gather(*claims)

    assert sum(result is not None for result in results) == 1


async def test_a_purge_while_another_holds_the_lease_does_nothing(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, superuser_engine: AsyncEngine
) -> None:
    await client.delete(acme.project_url("Launch"), headers=acme.headers(app, "olga"))
    await _deleted_long_ago(superuser_engine, app.state.settings.trash_retention_days + 1)
    database = app.state.database
    async with database.session_factory() as session, session.begin():
        assert await claim_lease(session, PURGE_LEASE, "elsewhere", timedelta(minutes=5))

    skipped = await run_purge(database, app.state.settings)

    assert skipped is None
    async with superuser_engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(Project)) == 2


async def test_the_daily_purge_runs_once_whichever_worker_claims_the_day(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    superuser_engine: AsyncEngine,
) -> None:
    olga = acme.headers(app, "olga")
    await client.delete(acme.project_url("Launch"), headers=olga)
    await _deleted_long_ago(superuser_engine, app.state.settings.trash_retention_days + 1)
    settings = app.state.settings.model_copy(
        update={"purge_interval_seconds": 3600, "purge_check_seconds": 0.05}
    )
    workers = [asyncio.create_task(purge_daily(app.state.database, settings)) for _ in range(2)]
    try:
        for _ in range(200):  # polls for up to 10 s
            async with superuser_engine.connect() as connection:
                left = await connection.scalar(select(func.count()).select_from(Project))
            if left == 1:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # several more checks of both workers
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    assert left == 1
    log = (await client.get(f"{acme.url}/audit-events", headers=olga)).json()["items"]
    assert [e["action"] for e in log].count("trash.purged") == 1
