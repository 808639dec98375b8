"""The forms' pickers load by search, in the admin's scope, and a value posted from outside what
they offer is refused; forms and lists stay small and cheap however many rows the tables hold.

Signed in as olive, owner of acme, or as root, the platform superuser (tests/admin/conftest.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin import base, filters
from admin.pickers import LOOKUP_LIMIT
from backend.identity.models import User
from backend.projects.models import Project, Task
from tenants.isolation import enter_tenant
from tenants.models import Membership
from tenants.roles import TenantRole
from tests.admin.conftest import AdminBrowser, AdminWorld
from tests.cross_tenant import cross_tenant
from tests.world import TenantWorld

# Enough rows that a form listing them would weigh hundreds of kilobytes.
CROWD = 2_000
SMALL_PAGE_BYTES = 60_000


async def lookup(browser: AdminBrowser, view: str, name: str, term: str) -> list[dict[str, str]]:
    response = await browser.get(f"/admin/{view}/ajax/lookup", params={"name": name, "term": term})
    assert response.status_code == 200
    results: list[dict[str, str]] = response.json()["results"]
    return results


def texts(results: list[dict[str, str]]) -> set[str]:
    return {result["text"] for result in results}


@pytest.fixture
async def olive(browser_client: AdminBrowser, world: AdminWorld) -> AdminBrowser:
    assert (await browser_client.login("olive.acme@example.com")).status_code == 302
    return browser_client


@pytest.fixture
async def root(browser_client: AdminBrowser, world: AdminWorld) -> AdminBrowser:
    assert (await browser_client.login("root@example.com")).status_code == 302
    return browser_client


async def crowd(db: AsyncSession, tenant: TenantWorld, count: int = CROWD) -> None:
    """`count` members of `tenant`, each with a project of their own, inserted in bulk."""
    users = [
        {"id": uuid.uuid4(), "email": f"crowd{index}@example.com", "full_name": f"Crowd {index}"}
        for index in range(count)
    ]
    await db.execute(insert(User), users)
    await enter_tenant(db, tenant.id)
    await db.execute(
        insert(Membership),
        [{"tenant_id": tenant.id, "user_id": u["id"], "role": TenantRole.MEMBER} for u in users],
    )
    await db.execute(
        insert(Project),
        [
            {"tenant_id": tenant.id, "id": uuid.uuid4(), "name": f"Crowd project {index}"}
            for index in range(count)
        ],
    )
    await db.commit()


# -- the look-ups ---------------------------------------------------------------------------------


async def test_a_tenant_admins_lookups_offer_their_tenants_rows_only(
    olive: AdminBrowser, world: AdminWorld
) -> None:
    apollo, zeus = world.acme.projects["Apollo"], world.globex.projects["Zeus"]
    assert await lookup(olive, "task", "project_id", "Apollo") == [
        {"id": str(apollo.id), "text": apollo.name}
    ]
    assert await lookup(olive, "task", "project_id", "Zeus") == []
    assert str(zeus.id) not in str(await lookup(olive, "task", "project_id", "a"))
    members = {"olive.acme@example.com", "adam.acme@example.com", "mia.acme@example.com"}
    assert texts(await lookup(olive, "task", "assignee_id", "@")) == members
    assert await lookup(olive, "task", "assignee_id", "globex") == []
    assert await lookup(olive, "task", "assignee_id", "root@") == []
    assert texts(await lookup(olive, "project-member", "user_id", "a")) == members
    assert await lookup(olive, "project-member", "project_id", "Zeus") == []
    # The tenant picker is the platform view's: a tenant admin's form has none to look up.
    assert await lookup(olive, "task", "tenant_id", "globex") == []


async def test_the_platform_views_lookups_name_each_rows_tenant(
    root: AdminBrowser, world: AdminWorld
) -> None:
    zeus = world.globex.projects["Zeus"]
    assert await lookup(root, "task", "project_id", "Zeus") == [
        {"id": str(zeus.id), "text": f"{zeus.name} · globex"}
    ]
    assert texts(await lookup(root, "task", "assignee_id", "gus")) == {
        "gus.globex@example.com · globex"
    }
    assert texts(await lookup(root, "task", "tenant_id", "glob")) == {"Globex (globex)"}


async def test_a_lookup_term_is_taken_literally(olive: AdminBrowser, world: AdminWorld) -> None:
    assert await lookup(olive, "task", "assignee_id", "%") == []
    assert await lookup(olive, "task", "assignee_id", "_") == []


async def test_a_lookup_answers_a_bounded_number_of_rows(
    olive: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    await crowd(db, world.acme, 50)
    assert len(await lookup(olive, "task", "assignee_id", "crowd")) == LOOKUP_LIMIT
    assert len(await lookup(olive, "task", "project_id", "crowd")) == LOOKUP_LIMIT


# -- posted values ----------------------------------------------------------------------------


async def _task_titled(db: AsyncSession, title: str) -> Any:
    async with cross_tenant(db, "test assertion"):
        statement = (
            select(Task).where(Task.title == title).execution_options(populate_existing=True)
        )
        return (await db.scalars(statement)).one_or_none()


async def test_a_strangers_id_posted_to_a_tenant_form_is_refused(
    olive: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    apollo = world.acme.projects["Apollo"]
    gina = world.globex.users["gina"]
    form = {"project_id": str(apollo.id), "title": "Smuggled", "status": "todo", "save": "Save"}
    response = await olive.post("/admin/task/create", {**form, "assignee_id": str(gina.id)})
    assert response.status_code == 400
    assert "Assignee: pick one of those the search offers." in response.text
    assert await _task_titled(db, "Smuggled") is None
    task = world.acme.tasks[0]
    edit = {"title": "Reassigned", "status": "todo", "assignee_id": str(gina.id), "save": "Save"}
    response = await olive.post(f"/admin/task/edit/{world.pk(task)}", edit)
    assert response.status_code == 400
    assert await _task_titled(db, "Reassigned") is None


async def test_a_non_member_posted_as_assignee_in_the_platform_view_is_refused(
    root: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    """The platform view's look-up offers every tenant's members; the write still takes only a
    member of the row's tenant."""
    gus = world.globex.users["gus"]
    form = {
        "tenant_id": str(world.acme.id),
        "project_id": str(world.acme.projects["Apollo"].id),
        "title": "Crossed assignee",
        "status": "todo",
        "assignee_id": str(gus.id),
        "save": "Save",
    }
    response = await root.post("/admin/task/create", form)
    assert response.status_code == 400
    assert "Assignee: pick one of those the search offers." in response.text
    assert await _task_titled(db, "Crossed assignee") is None


async def test_a_picked_member_is_saved(
    olive: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    mia = world.acme.users["mia"]
    form = {
        "project_id": str(world.acme.projects["Apollo"].id),
        "title": "Picked",
        "status": "todo",
        "assignee_id": str(mia.id),
        "save": "Save",
    }
    assert (await olive.post("/admin/task/create", form)).status_code == 302
    task = await _task_titled(db, "Picked")
    assert (task.tenant_id, task.assignee_id) == (world.acme.id, mia.id)


# -- page weight --------------------------------------------------------------------------------


async def test_forms_carry_the_current_value_and_never_the_rows_to_pick_from(
    olive: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    await crowd(db, world.acme)
    task = world.acme.tasks[0]
    create = await olive.get("/admin/task/create")
    edit = await olive.get(f"/admin/task/edit/{world.pk(task)}")
    member_create = await olive.get("/admin/project-member/create")
    for page in (create, edit, member_create):
        assert page.status_code == 200
        assert len(page.content) < SMALL_PAGE_BYTES
        assert "crowd1@example.com" not in page.text
        assert "Crowd project 1" not in page.text
    assert 'data-role="select2-ajax"' in create.text
    assert '/admin/task/ajax/lookup" id="assignee_id"' in create.text
    assert "mia.acme@example.com" in edit.text  # the current assignee, named


async def test_a_list_counts_up_to_a_bound_and_says_so_past_it(
    root: AdminBrowser, world: AdminWorld, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "COUNTED_ROWS", 1)
    assert "of more than 1 items" in (await root.get("/admin/task/list")).text
    async with cross_tenant(db, "test assertion"):
        tasks = await db.scalar(select(func.count()).select_from(Task))
    monkeypatch.setattr(base, "COUNTED_ROWS", tasks)
    assert f"of {tasks} items" in (await root.get("/admin/task/list")).text


async def test_a_list_filter_offers_a_bounded_number_of_choices_and_the_chosen_one(
    root: AdminBrowser, world: AdminWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filters, "FILTER_CHOICES", 1)
    globex = f"tenant={world.globex.id}"
    assert globex not in (await root.get("/admin/task/list")).text  # acme comes first
    chosen = await root.get("/admin/task/list", params={"tenant": str(world.globex.id)})
    assert "globex task" in chosen.text
    assert "acme task" not in chosen.text
    assert "Clear filter" in chosen.text
