"""The tenant view never shows or touches another tenant's rows, whatever primary key it is
given: list, count, details, edit, delete, export, pickers, AJAX look-ups and actions.

Signed in as olive, owner of acme; every foreign key below belongs to globex.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from sqladmin.helpers import get_object_identifier
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.scoping import AdminScope, AdminScopeMissing, AdminSessionMaker, bound_scope
from backend.core.audit import Actor
from backend.invitations.models import Invitation, InvitationStatus
from backend.projects.models import Project, ProjectMember, Task
from tenants.audit import record_audit
from tenants.isolation import enter_tenant
from tenants.models import AuditEvent, Membership, Tenant
from tenants.roles import TenantRole
from tests.admin.conftest import AdminBrowser, AdminWorld
from tests.cross_tenant import cross_tenant

TENANT_VIEWS = [
    "tenant",
    "membership",
    "project",
    "project-member",
    "task",
    "invitation",
    "audit-event",
]
GLOBAL_VIEWS = ["user", "o-auth-client", "refresh-token", "platform-audit-event"]


@pytest.fixture
async def olive(browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession) -> AdminBrowser:
    for tenant in (world.acme, world.globex):
        await enter_tenant(db, tenant.id)
        record_audit(db, Actor(), "test.arranged", "marker", f"{tenant.tenant.slug}-marker")
        await db.commit()
    response = await browser_client.login("olive.acme@example.com")
    assert response.status_code == 302
    return browser_client


async def rows(db: AsyncSession, model: type, tenant_id: uuid.UUID) -> list[Any]:
    await enter_tenant(db, tenant_id)
    # In key order: a heap's order changes when a row is updated, and tests pick the first.
    found = list(await db.scalars(select(model).order_by(*model.__table__.primary_key)))
    await db.commit()
    return found


async def identifier(db: AsyncSession, view: str, tenant_id: uuid.UUID) -> str:
    """The identifier SQLAdmin would use for a row of `view` in `tenant_id`."""
    if view == "tenant":
        return str(tenant_id)
    model = {
        "membership": Membership,
        "project": Project,
        "project-member": ProjectMember,
        "task": Task,
        "invitation": Invitation,
        "audit-event": AuditEvent,
    }[view]
    return str(get_object_identifier((await rows(db, model, tenant_id))[0]))


MARKERS = {
    "tenant": ("Acme", "Globex"),
    "membership": ("olive.acme@example.com", "gina.globex@example.com"),
    "project": ("acme Apollo", "globex Zeus"),
    "project-member": ("olive.acme@example.com", "gina.globex@example.com"),
    "task": ("acme task", "globex task"),
    "invitation": ("new.acme@example.com", "new.globex@example.com"),
    "audit-event": ("acme-marker", "globex-marker"),
}
ACME_COUNTS = {
    "tenant": 1,
    "membership": 3,
    "project": 1,
    "project-member": 2,
    "task": 1,
    "invitation": 1,
    "audit-event": 1,
}


@pytest.mark.parametrize("view", TENANT_VIEWS)
async def test_lists_and_counts_hold_the_admins_tenant_only(olive: AdminBrowser, view: str) -> None:
    page = await olive.get(f"/admin/{view}/list")
    assert page.status_code == 200
    own, foreign = MARKERS[view]
    assert own in page.text
    assert foreign not in page.text
    count = ACME_COUNTS[view]
    assert f"of {count} items" in page.text


async def test_the_task_list_names_the_admins_own_projects_only(
    olive: AdminBrowser, world: AdminWorld
) -> None:
    """Project names come from an eager load of `projects`, which the session scopes too."""
    page = (await olive.get("/admin/task/list")).text
    apollo = world.acme.projects["Apollo"]
    link = f"/admin/project/details/{world.pk(apollo)}"
    assert re.search(rf'<td><a href="[^"]*{re.escape(link)}">acme Apollo</a></td>', page)
    assert "globex Zeus" not in page
    assert str(world.globex.projects["Zeus"].id) not in page
    assert "gina.globex@example.com" not in page


@pytest.mark.parametrize("view", TENANT_VIEWS)
async def test_search_finds_nothing_of_another_tenant(olive: AdminBrowser, view: str) -> None:
    page = await olive.get(f"/admin/{view}/list", params={"search": "globex"})
    assert page.status_code == 200
    assert MARKERS[view][1] not in page.text


@pytest.mark.parametrize("view", TENANT_VIEWS)
async def test_details_and_edit_of_another_tenants_row_are_not_found(
    olive: AdminBrowser, world: AdminWorld, db: AsyncSession, view: str
) -> None:
    own = await identifier(db, view, world.acme.id)
    foreign = await identifier(db, view, world.globex.id)
    assert (await olive.get(f"/admin/{view}/details/{own}")).status_code == 200
    assert (await olive.get(f"/admin/{view}/details/{foreign}")).status_code == 404
    if view in ("membership", "project", "project-member", "task"):
        assert (await olive.get(f"/admin/{view}/edit/{own}")).status_code == 200
        assert (await olive.get(f"/admin/{view}/edit/{foreign}")).status_code == 404


async def test_a_bare_primary_key_with_the_admins_own_tenant_id_finds_nothing_either(
    olive: AdminBrowser, world: AdminWorld
) -> None:
    zeus = world.globex.projects["Zeus"]
    mixed = f"{world.acme.id};{zeus.id}"
    assert (await olive.get(f"/admin/project/details/{mixed}")).status_code == 404
    assert (await olive.get(f"/admin/project/edit/{mixed}")).status_code == 404
    assert (await olive.delete("project", mixed)).status_code == 404


@pytest.mark.parametrize("view", ["membership", "project", "project-member", "task"])
async def test_posting_an_edit_to_another_tenants_row_changes_nothing(
    olive: AdminBrowser, world: AdminWorld, db: AsyncSession, view: str
) -> None:
    foreign = await identifier(db, view, world.globex.id)
    data = {"name": "Hacked", "title": "Hacked", "role": "viewer", "status": "done"}
    response = await olive.post(f"/admin/{view}/edit/{foreign}", {**data, "save": "Save"})
    assert response.status_code == 404
    async with cross_tenant(db, "test assertion"):
        assert (
            await db.scalar(
                select(func.count()).select_from(Project).where(Project.name == "Hacked")
            )
            == 0
        )
        assert (
            await db.scalar(select(func.count()).select_from(Task).where(Task.title == "Hacked"))
            == 0
        )
        gina = world.globex.users["gina"].id
        roles = set(await db.scalars(select(Membership.role).where(Membership.user_id == gina)))
    assert roles == {TenantRole.OWNER}


@pytest.mark.parametrize("view", ["membership", "project", "project-member", "task"])
async def test_deleting_another_tenants_row_deletes_nothing(
    olive: AdminBrowser, world: AdminWorld, db: AsyncSession, view: str
) -> None:
    own = await identifier(db, view, world.acme.id)
    foreign = await identifier(db, view, world.globex.id)
    before = {t: len(await rows(db, Project, t)) for t in (world.acme.id, world.globex.id)}
    assert (await olive.delete(view, foreign)).status_code == 404
    assert (await olive.delete(view, own, foreign)).status_code == 404  # all or nothing
    assert await identifier(db, view, world.globex.id) == foreign
    assert await identifier(db, view, world.acme.id) == own
    after = {t: len(await rows(db, Project, t)) for t in (world.acme.id, world.globex.id)}
    assert after == before


@pytest.mark.parametrize("view", TENANT_VIEWS)
@pytest.mark.parametrize("kind", ["csv", "json"])
async def test_exports_hold_the_admins_tenant_only(
    olive: AdminBrowser, world: AdminWorld, view: str, kind: str
) -> None:
    response = await olive.get(f"/admin/{view}/export/{kind}")
    assert response.status_code == 200
    assert str(world.globex.id) not in response.text
    for marker in MARKERS[view][1:]:
        assert marker not in response.text
    if kind == "json":
        assert len(json.loads(response.text)) == ACME_COUNTS[view]


async def test_pickers_offer_the_admins_tenant_only(olive: AdminBrowser, world: AdminWorld) -> None:
    form = await olive.get("/admin/task/create")
    assert form.status_code == 200
    assert 'name="tenant_id"' not in form.text
    lookup = "/admin/task/ajax/lookup"
    projects = await olive.get(lookup, params={"name": "project_id", "term": "s"})
    assert str(world.acme.projects["Apollo"].id) not in projects.text  # no "s" in its name
    assert str(world.globex.projects["Zeus"].id) not in projects.text
    members = await olive.get(lookup, params={"name": "assignee_id", "term": "@"})
    assert "mia.acme@example.com" in members.text
    assert "gina.globex@example.com" not in members.text
    member_lookup = "/admin/project-member/ajax/lookup"
    users = await olive.get(member_lookup, params={"name": "user_id", "term": "@"})
    assert "gus.globex@example.com" not in users.text
    assert "adam.acme@example.com" in users.text


async def test_a_forged_picker_value_from_another_tenant_is_refused(
    olive: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    zeus = world.globex.projects["Zeus"]
    response = await olive.post(
        "/admin/task/create",
        {"project_id": str(zeus.id), "title": "Smuggled", "status": "todo", "save": "Save"},
    )
    assert response.status_code == 400
    async with cross_tenant(db, "test assertion"):
        assert await db.scalar(select(Task.id).where(Task.title == "Smuggled")) is None


async def test_tenant_id_is_forced_on_create(
    olive: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    response = await olive.post(
        "/admin/project/create",
        {"tenant_id": str(world.globex.id), "name": "Planted", "description": "", "save": "Save"},
    )
    assert response.status_code == 302
    async with cross_tenant(db, "test assertion"):
        tenant_ids = list(
            await db.scalars(select(Project.tenant_id).where(Project.name == "Planted"))
        )
    assert tenant_ids == [world.acme.id]


async def test_tenant_id_cannot_be_changed_on_edit(
    olive: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    apollo = world.acme.projects["Apollo"]
    response = await olive.post(
        f"/admin/project/edit/{world.pk(apollo)}",
        {"tenant_id": str(world.globex.id), "name": "Apollo 2", "description": "", "save": "Save"},
    )
    assert response.status_code == 302
    async with cross_tenant(db, "test assertion"):
        row = (
            await db.execute(select(Project.tenant_id, Project.name).where(Project.id == apollo.id))
        ).one()
    assert tuple(row) == (world.acme.id, "Apollo 2")


async def test_the_ajax_user_lookup_finds_the_admins_members_only(
    olive: AdminBrowser, world: AdminWorld
) -> None:
    lookup = "/admin/membership/ajax/lookup"
    foreign = await olive.get(lookup, params={"name": "user", "term": "globex"})
    assert foreign.status_code == 200
    assert foreign.json() == {"results": []}
    own = await olive.get(lookup, params={"name": "user", "term": "acme"})
    emails = {result["text"] for result in own.json()["results"]}
    assert len(emails) == 3
    nobody = await olive.get(lookup, params={"name": "user", "term": "root@"})
    assert nobody.json() == {"results": []}


async def test_actions_on_another_tenants_rows_do_nothing(
    olive: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    own = world.pk(world.invitations["acme"])
    foreign = world.pk(world.invitations["globex"])
    assert (await olive.action("invitation", "revoke", foreign)).status_code == 404
    assert (await olive.action("invitation", "revoke", own, foreign)).status_code == 404
    async with cross_tenant(db, "test assertion"):
        statuses = set(await db.scalars(select(Invitation.status)))
    assert statuses == {InvitationStatus.PENDING}


@pytest.mark.parametrize("view", GLOBAL_VIEWS)
async def test_global_tables_are_closed_to_tenant_admins(olive: AdminBrowser, view: str) -> None:
    assert (await olive.get(f"/admin/{view}/list")).status_code == 403
    assert (await olive.get(f"/admin/{view}/export/csv")).status_code == 403


async def test_tenant_admins_cannot_suspend_or_edit_tenants(
    olive: AdminBrowser, world: AdminWorld
) -> None:
    assert (await olive.action("tenant", "suspend", str(world.acme.id))).status_code == 403
    assert (await olive.get(f"/admin/tenant/edit/{world.acme.id}")).status_code == 403
    assert (await olive.get("/admin/membership/create")).status_code == 403


async def test_a_superuser_sees_every_tenant(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    await browser_client.login("root@example.com")
    projects = await browser_client.get("/admin/project/list")
    assert "acme Apollo" in projects.text
    assert "globex Zeus" in projects.text
    assert "of 2 items" in projects.text
    zeus = world.pk(world.globex.projects["Zeus"])
    assert (await browser_client.get(f"/admin/project/details/{zeus}")).status_code == 200
    form = await browser_client.get("/admin/task/create")
    assert 'name="tenant_id"' in form.text
    projects = await browser_client.get(
        "/admin/task/ajax/lookup", params={"name": "project_id", "term": "Zeus"}
    )
    assert str(world.globex.projects["Zeus"].id) in projects.text
    filtered = await browser_client.get(
        "/admin/project/list", params={"tenant": str(world.globex.id)}
    )
    assert "globex Zeus" in filtered.text
    assert "acme Apollo" not in filtered.text


# -- the data layer itself: the sessions SQLAdmin gets ------------------------------------------


async def test_admin_sessions_carry_the_tenant_context(app, world: AdminWorld) -> None:
    maker = AdminSessionMaker(app)
    olive = world.acme.users["olive"]
    scope = AdminScope(olive.id, olive.email, tenant_id=world.acme.id, role=TenantRole.OWNER)
    with bound_scope(scope):
        async with maker(expire_on_commit=False) as session:
            names = set(await session.scalars(select(Project.name)))
            zeus = world.globex.projects["Zeus"]
            assert await session.get(Project, (world.globex.id, zeus.id)) is None
            assert await session.scalar(select(func.count()).select_from(Task)) == 1
    assert names == {"acme Apollo"}


async def test_admin_sessions_refuse_to_open_outside_a_scoped_request(app) -> None:
    with pytest.raises(AdminScopeMissing):
        AdminSessionMaker(app)()


@pytest.mark.postgres_only
async def test_row_level_security_holds_for_admin_sessions_without_the_orm(
    app, world: AdminWorld
) -> None:
    maker = AdminSessionMaker(app)
    olive = world.acme.users["olive"]
    scope = AdminScope(olive.id, olive.email, tenant_id=world.acme.id, role=TenantRole.OWNER)
    # On the session's own connection: past the ORM, which refuses SQL naming tenant tables.
    with bound_scope(scope):
        async with maker() as session:
            connection = await session.connection()
            count = (await connection.exec_driver_sql("SELECT count(*) FROM projects")).scalar()
            tasks = await connection.exec_driver_sql("SELECT DISTINCT tenant_id FROM tasks")
            tenants = set(tasks.scalars())
    assert count == 1
    assert tenants == {world.acme.id}
    root = AdminScope(world.root.id, world.root.email, platform=True)
    with bound_scope(root):
        async with maker() as session:
            connection = await session.connection()
            projects = await connection.exec_driver_sql("SELECT count(*) FROM projects")
            assert projects.scalar() == 2
    assert Tenant  # the tenants table itself is global: the views scope it (see TenantAdmin)
