"""The list and details pages name what they reference (tenant, project, people) instead of showing
bare ids, for both kinds of admin; the names come from eager loads that hold the tenant scope,
and cost the same number of queries whatever the number of rows.

Queries are counted with an engine `before_cursor_execute` listener; `SET LOCAL` (the RLS
settings of each PostgreSQL transaction) is left out.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor
from tenants.audit import record_audit
from tenants.isolation import enter_tenant
from tenants.roles import ProjectRole, TenantRole
from tests.admin.conftest import AdminBrowser, AdminWorld, add_invitation
from tests.queries import counting_queries

NAMED_VIEWS = ["project", "project-member", "task", "invitation", "audit-event"]
EMAIL = re.compile(r"[\w.]+@example\.com")
PAGE_SIZE = 50
MORE = 30  # rows added to each table, each naming a project and a person of its own


async def record_event(db: AsyncSession, tenant_id: Any, actor_id: Any, marker: str) -> None:
    await enter_tenant(db, tenant_id)
    record_audit(db, Actor(user_id=actor_id), "test.arranged", "marker", marker)
    await db.commit()


@pytest.fixture
async def named_world(world: AdminWorld, db: AsyncSession) -> AdminWorld:
    """The admin world, plus audit events by a member, by gina of globex, and by the superuser,
    all in acme; and an invitation to Apollo."""
    acme = world.acme
    await record_event(db, acme.id, acme.users["mia"].id, "by-mia")
    await record_event(db, acme.id, world.globex.users["gina"].id, "by-gina")
    await record_event(db, acme.id, world.root.id, "by-root")
    await record_event(db, world.globex.id, world.globex.users["gina"].id, "globex-event")
    await enter_tenant(db, acme.id)
    invitation = world.invitations["acme"]
    invitation = await db.merge(invitation)
    invitation.project_id = acme.projects["Apollo"].id
    invitation.project_role = ProjectRole.VIEWER
    await db.commit()
    return world


async def grow(db: AsyncSession, world: AdminWorld, count: int) -> None:
    """`count` more rows in every named table of acme, each with a project and a person of its
    own: an N+1 would show as `count` more queries."""
    acme = world.acme
    for n in range(count):
        name = f"extra{n}"
        await acme.add_member(db, name, TenantRole.MEMBER)
        await acme.add_project(db, name, {name: ProjectRole.EDITOR})
        await acme.add_task(db, name, assignee=name)
        acme.users = {name: acme.users[name], **acme.users}  # the next invitation's inviter
        await add_invitation(db, acme, f"{name}.invited@example.com")
        await record_event(db, acme.id, acme.users[name].id, f"{name}-event")


async def list_queries(app: FastAPI, admin: AdminBrowser, view: str) -> int:
    with counting_queries(app.state.database.engine) as statements:
        page = await admin.get(f"/admin/{view}/list", params={"pageSize": PAGE_SIZE})
    assert page.status_code == 200, view
    return len(statements)


@pytest.mark.parametrize("who", ["root@example.com", "olive.acme@example.com"])
async def test_list_pages_cost_the_same_queries_whatever_the_rows(
    app: FastAPI,
    browser_client: AdminBrowser,
    named_world: AdminWorld,
    db: AsyncSession,
    who: str,
) -> None:
    await browser_client.login(who)
    before = {view: await list_queries(app, browser_client, view) for view in NAMED_VIEWS}
    await grow(db, named_world, MORE)
    after = {view: await list_queries(app, browser_client, view) for view in NAMED_VIEWS}
    print(f"\n{who}: queries per list page: {after}")  # shown with -s
    assert after == before
    assert max(after.values()) <= 8


def in_cell(page: str, text: str) -> bool:
    """Whether a table cell of the page holds `text`, bare or as a link (the list filters name
    projects too, so a bare `in` would prove nothing)."""
    return bool(re.search(rf"<td>\s*(<a [^>]*>)?\s*{re.escape(text)}\s*(</a>)?\s*</td>", page))


async def page_of(admin: AdminBrowser, url: str) -> str:
    response = await admin.get(url)
    assert response.status_code == 200, url
    return response.text


async def test_a_superuser_sees_names_on_the_list_pages(
    browser_client: AdminBrowser, named_world: AdminWorld
) -> None:
    await browser_client.login("root@example.com")
    expected = {
        "task": [
            "acme Apollo",
            "globex Zeus",
            "mia.acme@example.com",
            "gina.globex@example.com",
        ],
        "project-member": ["acme Apollo", "globex Zeus", "olive.acme@example.com"],
        "invitation": ["acme Apollo"],
        "audit-event": ["mia.acme@example.com", "gina.globex@example.com", "root@example.com"],
    }
    for view, names in expected.items():
        page = await page_of(browser_client, f"/admin/{view}/list")
        for name in names:
            assert in_cell(page, name), (view, name)
        for project in (named_world.acme.projects["Apollo"], named_world.globex.projects["Zeus"]):
            assert not in_cell(page, str(project.id)), view


async def test_a_tenant_admin_sees_their_names_and_no_one_elses(
    browser_client: AdminBrowser, named_world: AdminWorld
) -> None:
    await browser_client.login("olive.acme@example.com")
    expected = {
        "task": ["acme Apollo", "mia.acme@example.com"],
        "project-member": ["acme Apollo", "mia.acme@example.com"],
        "invitation": ["acme Apollo"],
        "audit-event": ["mia.acme@example.com"],
    }
    for view, names in expected.items():
        page = await page_of(browser_client, f"/admin/{view}/list")
        for name in names:
            assert in_cell(page, name), (view, name)
        assert "Zeus" not in page, view
        assert all(email.endswith(".acme@example.com") for email in EMAIL.findall(page)), view
    # Actors who are not members of the tenant (gina of globex, the superuser) stay unnamed.
    events = await page_of(browser_client, "/admin/audit-event/list")
    assert "gina.globex@example.com" not in events
    assert "root@example.com" not in events
    assert in_cell(events, "(not a member)")


def details_urls(page: str, view: str) -> list[str]:
    return re.findall(rf'href="https://testserver(/admin/{view}/details/[^"]+)"', page)


@pytest.mark.parametrize("who", ["root@example.com", "olive.acme@example.com"])
async def test_details_pages_name_the_tenant_the_project_and_the_people(
    browser_client: AdminBrowser, named_world: AdminWorld, who: str
) -> None:
    await browser_client.login(who)
    acme = named_world.acme
    apollo = acme.projects["Apollo"]
    expected = {
        "project": f"{named_world.pk(apollo)}",
        "task": named_world.pk(acme.tasks[0]),
        "invitation": named_world.pk(named_world.invitations["acme"]),
        "project-member": f"{acme.id};{apollo.id};{acme.users['mia'].id}",
    }
    for view, pk in expected.items():
        page = await page_of(browser_client, f"/admin/{view}/details/{pk}")
        assert in_cell(page, "Acme"), view
        assert "globex" not in page.lower(), view
        assert not in_cell(page, str(acme.id)), view
        if view != "project":  # whose own id is on its page
            assert in_cell(page, "acme Apollo"), view
            assert not in_cell(page, str(apollo.id)), view
    task = await page_of(browser_client, f"/admin/task/details/{expected['task']}")
    assert in_cell(task, "mia.acme@example.com")
    invitation = await page_of(
        browser_client, f"/admin/invitation/details/{expected['invitation']}"
    )
    assert in_cell(invitation, "olive.acme@example.com")  # the inviter
    events = await page_of(browser_client, "/admin/audit-event/list")
    urls = details_urls(events, "audit-event")
    assert urls
    for url in urls:
        page = await page_of(browser_client, url)
        assert in_cell(page, "Acme") or in_cell(page, "Globex"), url
        assert not in_cell(page, str(acme.id)), url
