"""Tasks: editors write, viewers read, filters, assignees from the project only, pages."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.pagination import Page
from backend.projects.models import TaskStatus
from backend.projects.schemas import TaskOut
from tenants.roles import ProjectRole, TenantRole
from tests.auth import random_id
from tests.world import TenantWorld, build_tenant


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    world = await build_tenant(
        db,
        "acme",
        members={"eddie": TenantRole.MEMBER, "vera": TenantRole.MEMBER, "out": TenantRole.MEMBER},
    )
    await world.add_project(
        db, "Launch", members={"eddie": ProjectRole.EDITOR, "vera": ProjectRole.VIEWER}
    )
    await world.add_project(db, "Other", members={"eddie": ProjectRole.EDITOR})
    return world


def tasks_url(world: TenantWorld, project: str = "Launch") -> str:
    return f"{world.project_url(project)}/tasks"


async def test_an_editor_creates_edits_and_deletes_a_task(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    headers = acme.headers(app, "eddie")
    created = await client.post(
        tasks_url(acme),
        json={"title": "Write", "assignee_id": str(acme.users["vera"].id)},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert (task["status"], task["assignee_id"], task["created_by"]) == (
        "todo",
        str(acme.users["vera"].id),
        str(acme.users["eddie"].id),
    )
    url = f"{tasks_url(acme)}/{task['id']}"

    edited = await client.patch(
        url, json={"status": "doing", "title": "Write more"}, headers=headers
    )
    unassigned = await client.patch(url, json={"assignee_id": None}, headers=headers)
    deleted = await client.delete(url, headers=headers)

    assert (edited.json()["status"], edited.json()["title"]) == ("doing", "Write more")
    assert edited.json()["updated_at"] > task["updated_at"]
    assert (unassigned.json()["assignee_id"], unassigned.json()["title"]) == (None, "Write more")
    assert deleted.status_code == 204
    assert (await client.get(url, headers=headers)).status_code == 404


async def test_a_viewer_reads_but_does_not_write(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    task = await acme.add_task(db, "Launch")
    headers = acme.headers(app, "vera")
    url = f"{tasks_url(acme)}/{task.id}"

    assert (await client.get(url, headers=headers)).status_code == 200
    assert (await client.patch(url, json={"title": "x"}, headers=headers)).status_code == 403
    assert (await client.delete(url, headers=headers)).status_code == 403
    assert (
        await client.post(tasks_url(acme), json={"title": "x"}, headers=headers)
    ).status_code == 403


async def test_an_assignee_must_be_a_member_of_the_project(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    globex = await build_tenant(db, "globex", members={"gus": TenantRole.OWNER})
    headers = acme.headers(app, "eddie")
    task = await acme.add_task(db, "Launch")
    strangers = [acme.users["out"].id, globex.users["gus"].id, random_id()]

    for assignee in strangers:
        created = await client.post(
            tasks_url(acme), json={"title": "x", "assignee_id": str(assignee)}, headers=headers
        )
        patched = await client.patch(
            f"{tasks_url(acme)}/{task.id}", json={"assignee_id": str(assignee)}, headers=headers
        )
        assert (created.status_code, patched.status_code) == (422, 422), assignee
        assert created.json()["detail"] == "assignee_id must be a member of the project."


async def test_a_task_belongs_to_its_project(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    other = await acme.add_task(db, "Other")
    url = f"{tasks_url(acme, 'Launch')}/{other.id}"
    headers = acme.headers(app, "eddie")
    assert (await client.get(url, headers=headers)).status_code == 404
    assert (await client.patch(url, json={"title": "x"}, headers=headers)).status_code == 404
    assert (await client.delete(url, headers=headers)).status_code == 404


async def test_filters_by_status_and_assignee(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    await acme.add_task(db, "Launch", assignee="eddie", status=TaskStatus.DOING)
    await acme.add_task(db, "Launch", assignee="vera", status=TaskStatus.DOING)
    await acme.add_task(db, "Launch", assignee="eddie", status=TaskStatus.DONE)
    await acme.add_task(db, "Other", assignee="eddie", status=TaskStatus.DOING)
    headers = acme.headers(app, "vera")

    async def matching(**params: str) -> list[tuple[str, str | None]]:
        response = await client.get(tasks_url(acme), params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [(t["status"], t["assignee_id"]) for t in response.json()["items"]]

    eddie, vera = str(acme.users["eddie"].id), str(acme.users["vera"].id)
    assert await matching(status="doing") == [("doing", eddie), ("doing", vera)]
    assert await matching(assignee_id=eddie) == [("doing", eddie), ("done", eddie)]
    assert await matching(status="done", assignee_id=eddie) == [("done", eddie)]
    assert await matching(status="todo") == []
    bad = await client.get(tasks_url(acme), params={"status": "later"}, headers=headers)
    assert bad.status_code == 422


async def test_tasks_page_by_page_oldest_first(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    created = [(await acme.add_task(db, "Launch")).id for _ in range(5)]
    headers = acme.headers(app, "vera")

    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(tasks_url(acme), params=params, headers=headers)).json()
        seen += [task["id"] for task in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break

    assert seen == [str(task_id) for task_id in created]


async def test_a_title_is_required_and_never_null(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    headers = acme.headers(app, "eddie")
    task = await acme.add_task(db, "Launch")
    assert (
        await client.post(tasks_url(acme), json={"title": " "}, headers=headers)
    ).status_code == 422
    kept = await client.patch(f"{tasks_url(acme)}/{task.id}", json={"title": None}, headers=headers)
    assert (kept.status_code, kept.json()["title"]) == (200, task.title)


async def test_a_page_of_tasks_is_the_json_its_model_gives(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    """The list is serialised from its rows without the model (`rows_page_response`): byte for
    byte what `Page[TaskOut]` would send, and what a read of each task sends."""
    await acme.add_task(db, "Launch", assignee="eddie", status=TaskStatus.DOING)
    await acme.add_task(db, "Launch")
    headers = acme.headers(app, "vera")

    listed = await client.get(tasks_url(acme), params={"limit": 1}, headers=headers)

    assert listed.headers["content-type"] == "application/json"
    page = Page[TaskOut].model_validate_json(listed.content)
    assert listed.content == page.model_dump_json().encode()
    assert page.next_cursor is not None
    for item in page.items:
        read = await client.get(f"{tasks_url(acme)}/{item.id}", headers=headers)
        assert read.json() == item.model_dump(mode="json")
