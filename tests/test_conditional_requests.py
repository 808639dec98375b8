"""Optimistic concurrency: strong ETags on the GET of a tenant, project, task or member;
`If-None-Match` answers 304; `If-Match` on PATCH, PUT and DELETE answers 412 when stale, with
nothing written, also when the other edit lands between the check and the write."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

from backend.core.conditional import PreconditionFailed, Preconditions
from backend.core.database import Database
from backend.projects import tasks
from backend.projects.access import project_caller
from backend.projects.models import Task
from tenants.caller import TenantCaller
from tenants.isolation import enter_tenant
from tenants.models import Tenant
from tenants.roles import ProjectRole, TenantRole
from tests.world import TenantWorld, build_tenant


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    world = await build_tenant(
        db, "acme", members={"olga": TenantRole.OWNER, "eddie": TenantRole.MEMBER}
    )
    await world.add_project(
        db, "Launch", members={"olga": ProjectRole.OWNER, "eddie": ProjectRole.EDITOR}
    )
    await world.add_task(db, "Launch")
    return world


@dataclass(frozen=True)
class Resource:
    """A resource with an ETag: where it is, how to change it, and how to read the change."""

    name: str
    url: Callable[[TenantWorld], str]
    write: str  # PATCH or PUT
    edits: tuple[dict[str, Any], dict[str, Any]]  # two different changes
    field: str  # where an edit shows in the representation
    # A tenant's DELETE schedules its deletion (202), and the owner still reads it until the
    # purge; every other resource is gone at once (204, then 404).
    deleted: tuple[int, int] = (204, 404)


RESOURCES = [
    Resource(
        "tenant",
        lambda w: w.url,
        "PATCH",
        ({"name": "A"}, {"name": "B"}),
        "name",
        deleted=(202, 200),
    ),
    Resource(
        "project",
        lambda w: w.project_url("Launch"),
        "PATCH",
        ({"name": "A"}, {"name": "B"}),
        "name",
    ),
    Resource(
        "task",
        lambda w: f"{w.project_url('Launch')}/tasks/{w.tasks[0].id}",
        "PATCH",
        ({"title": "A"}, {"title": "B"}),
        "title",
    ),
    Resource(
        "member",
        lambda w: f"{w.url}/members/{w.users['eddie'].id}",
        "PATCH",
        ({"role": "viewer"}, {"role": "admin"}),
        "role",
    ),
    Resource(
        "project member",
        lambda w: f"{w.project_url('Launch')}/members/{w.users['eddie'].id}",
        "PUT",
        ({"role": "viewer"}, {"role": "owner"}),
        "role",
    ),
]
BY_NAME = pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.name)


def _strong(tag: str | None) -> str:
    assert tag is not None
    assert re.fullmatch(r'"[^"]+"', tag), tag  # strong: no W/ prefix
    return tag


@BY_NAME
async def test_a_get_carries_a_strong_etag_and_if_none_match_answers_304(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, resource: Resource
) -> None:
    headers = acme.headers(app, "olga")
    url = resource.url(acme)
    first = await client.get(url, headers=headers)
    tag = _strong(first.headers.get("etag"))

    again = await client.get(url, headers=headers)
    unchanged = await client.get(url, headers={**headers, "If-None-Match": tag})
    weakly = await client.get(url, headers={**headers, "If-None-Match": f'"x", W/{tag}'})
    anything = await client.get(url, headers={**headers, "If-None-Match": "*"})
    other = await client.get(url, headers={**headers, "If-None-Match": '"other"'})

    assert first.status_code == 200, first.text
    assert again.headers["etag"] == tag
    assert (unchanged.status_code, unchanged.content, unchanged.headers["etag"]) == (304, b"", tag)
    assert (weakly.status_code, anything.status_code) == (304, 304)
    assert (other.status_code, other.json()) == (200, first.json())


@BY_NAME
async def test_the_etag_changes_with_the_row_and_a_stale_if_match_writes_nothing(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, resource: Resource
) -> None:
    headers = acme.headers(app, "olga")
    url = resource.url(acme)
    first_edit, second_edit = resource.edits
    stale = _strong((await client.get(url, headers=headers)).headers["etag"])

    edited = await client.request(resource.write, url, json=first_edit, headers=headers)
    current = _strong(edited.headers.get("etag"))
    refused = await client.request(
        resource.write, url, json=second_edit, headers={**headers, "If-Match": stale}
    )
    weak = await client.request(
        resource.write, url, json=second_edit, headers={**headers, "If-Match": f"W/{current}"}
    )
    after_refusals = await client.get(url, headers=headers)

    assert edited.status_code == 200, edited.text
    assert current != stale
    assert refused.status_code == 412, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 412
    assert weak.status_code == 412  # If-Match compares strongly: a weak tag never matches
    assert after_refusals.json()[resource.field] == first_edit[resource.field]
    assert after_refusals.headers["etag"] == current
    # A stale tag from before still gets a 304? No: it no longer matches.
    assert (await client.get(url, headers={**headers, "If-None-Match": stale})).status_code == 200

    accepted = await client.request(
        resource.write, url, json=second_edit, headers={**headers, "If-Match": current}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()[resource.field] == second_edit[resource.field]
    assert accepted.headers["etag"] not in {stale, current}
    assert (await client.get(url, headers=headers)).headers["etag"] == accepted.headers["etag"]


@BY_NAME
async def test_a_delete_with_a_stale_if_match_deletes_nothing(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, resource: Resource
) -> None:
    headers = acme.headers(app, "olga")
    url = resource.url(acme)
    stale = (await client.get(url, headers=headers)).headers["etag"]
    await client.request(resource.write, url, json=resource.edits[0], headers=headers)
    current = (await client.get(url, headers=headers)).headers["etag"]

    refused = await client.delete(url, headers={**headers, "If-Match": stale})
    still_there = await client.get(url, headers=headers)
    deleted = await client.delete(url, headers={**headers, "If-Match": current})

    assert refused.status_code == 412, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert still_there.status_code == 200
    assert deleted.status_code == resource.deleted[0], deleted.text
    assert (await client.get(url, headers=headers)).status_code == resource.deleted[1]


async def test_if_match_star_and_lists_match_the_current_tag(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    headers = acme.headers(app, "olga")
    url = RESOURCES[2].url(acme)
    tag = (await client.get(url, headers=headers)).headers["etag"]

    listed = await client.patch(
        url, json={"title": "A"}, headers={**headers, "If-Match": f'"nope", {tag}'}
    )
    star = await client.patch(url, json={"title": "B"}, headers={**headers, "If-Match": "*"})
    garbage = await client.patch(url, json={"title": "C"}, headers={**headers, "If-Match": "x"})

    assert (listed.status_code, star.status_code, garbage.status_code) == (200, 200, 412)


async def test_if_match_on_a_put_that_would_create_answers_412(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    newcomer = await acme.add_member(db, "nina", TenantRole.MEMBER)
    url = f"{acme.project_url('Launch')}/members/{newcomer.id}"
    headers = {**acme.headers(app, "olga"), "If-Match": "*"}

    refused = await client.put(url, json={"role": "viewer"}, headers=headers)

    assert refused.status_code == 412, refused.text
    assert (await client.get(url, headers=acme.headers(app, "olga"))).status_code == 404


async def test_a_member_leaving_the_project_changes_their_tasks_etags(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    """Bulk writes (unassigning a leaver's tasks) move the version too."""
    task = await acme.add_task(db, "Launch", assignee="eddie")
    headers = acme.headers(app, "olga")
    url = f"{acme.project_url('Launch')}/tasks/{task.id}"
    before = (await client.get(url, headers=headers)).headers["etag"]

    left = await client.delete(
        f"{acme.project_url('Launch')}/members/{acme.users['eddie'].id}", headers=headers
    )
    stale_edit = await client.patch(
        url, json={"title": "x"}, headers={**headers, "If-Match": before}
    )

    assert left.status_code == 204
    assert stale_edit.status_code == 412
    assert (await client.get(url, headers=headers)).headers["etag"] != before


async def test_two_concurrent_edits_with_the_same_tag_one_wins_one_gets_412(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    headers = acme.headers(app, "olga")
    url = RESOURCES[2].url(acme)
    tag = (await client.get(url, headers=headers)).headers["etag"]

    answers = await asyncio.gather(
        *(
            client.patch(url, json={"title": title}, headers={**headers, "If-Match": tag})
            for title in ("first", "second")
        )
    )

    assert sorted(answer.status_code for answer in answers) == [200, 412]
    [winner] = [answer for answer in answers if answer.status_code == 200]
    final = await client.get(url, headers=headers)
    assert final.json()["title"] == winner.json()["title"]
    assert final.headers["etag"] == winner.headers["etag"]


async def _edit_elsewhere(database: Database, tenant_id: uuid.UUID, task_id: uuid.UUID) -> None:
    async with database.session_factory() as other, other.begin():
        await enter_tenant(other, tenant_id)
        task = await other.scalar(select(Task).where(Task.id == task_id))
        assert task is not None
        task.title = "edited elsewhere"


async def test_an_edit_landing_between_the_check_and_the_write_is_kept(
    database: Database, acme: TenantWorld
) -> None:
    """The If-Match check passes, then another transaction commits an edit before this one
    writes: the versioned UPDATE matches no row, and the other edit stays."""
    task_id = acme.tasks[0].id
    async with database.session_factory() as session:
        await enter_tenant(session, acme.id)
        tenant = await session.get(Tenant, acme.id)
        assert tenant is not None
        owner = TenantCaller(tenant=tenant, role=TenantRole.OWNER, user=acme.users["olga"])
        caller = await project_caller(session, owner, acme.projects["Launch"].id)
        read = await session.scalar(select(Task).where(Task.id == task_id))
        assert read is not None
        current = tasks.task_tag(read)

        interleaved: list[bool] = []

        def interleave(sync_session: Session, *_: Any) -> None:
            if not interleaved:  # the first flush only: the one that writes the task
                interleaved.append(True)
                await_only(_edit_elsewhere(database, acme.id, task_id))

        event.listen(session.sync_session, "before_flush", interleave)
        condition = Preconditions(if_match=(current,))
        with pytest.raises(PreconditionFailed):
            await tasks.update_task(
                session, caller, task_id, {"title": "mine"}, precondition=condition
            )
        await session.rollback()
        assert interleaved

    async with database.session_factory() as session:
        await enter_tenant(session, acme.id)
        kept = await session.scalar(select(Task.title).where(Task.id == task_id))
    assert kept == "edited elsewhere"
