"""Actions and writes of the panel, each an audit event with the admin as actor."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity.models import PlatformAuditEvent, RefreshToken, User
from backend.invitations.models import Invitation, InvitationStatus
from backend.projects.models import Project, Task
from tenants.isolation import enter_tenant
from tenants.models import AuditEvent, Membership, Tenant, TenantStatus
from tenants.roles import TenantRole
from tests.admin.conftest import AdminBrowser, AdminWorld, add_invitation
from tests.auth import bearer
from tests.cross_tenant import cross_tenant
from tests.factories import RefreshTokenFactory, persist
from tests.harness.smtp import Mailbox


async def tenant_events(db: AsyncSession, tenant_id: uuid.UUID) -> list[AuditEvent]:
    await enter_tenant(db, tenant_id)
    statement = select(AuditEvent).order_by(AuditEvent.created_at)
    events = list(await db.scalars(statement.execution_options(populate_existing=True)))
    await db.commit()
    return events


async def platform_events(db: AsyncSession) -> list[PlatformAuditEvent]:
    async with cross_tenant(db, "test assertion"):  # the app role only appends to this log
        return list(await db.scalars(select(PlatformAuditEvent)))


async def fresh(db: AsyncSession, model: type, *criteria: object) -> object:
    async with cross_tenant(db, "test assertion"):
        statement = select(model).where(*criteria).execution_options(populate_existing=True)
        return (await db.scalars(statement)).one_or_none()


async def signed_in(browser_client: AdminBrowser, email: str) -> AdminBrowser:
    assert (await browser_client.login(email)).status_code == 302
    return browser_client


async def test_suspending_a_tenant_closes_its_api_and_is_audited(
    browser_client: AdminBrowser,
    client: httpx.AsyncClient,
    app: FastAPI,
    world: AdminWorld,
    db: AsyncSession,
) -> None:
    root = await signed_in(browser_client, "root@example.com")
    olive = bearer(app, world.acme.users["olive"])
    assert (await client.get(world.acme.url, headers=olive)).status_code == 200

    response = await root.action("tenant", "suspend", str(world.acme.id))
    assert response.status_code == 302
    assert (await client.get(world.acme.url, headers=olive)).status_code == 403
    [event] = [e for e in await tenant_events(db, world.acme.id) if e.action == "tenant.suspended"]
    assert event.actor_user_id == world.root.id

    await root.action("tenant", "reactivate", str(world.acme.id))
    assert (await client.get(world.acme.url, headers=olive)).status_code == 200
    last = (await tenant_events(db, world.acme.id))[-1]
    assert (last.actor_user_id, last.data["status"]) == (
        world.root.id,
        {"from": "suspended", "to": "active"},
    )


async def test_one_action_on_several_tenants_audits_each_in_its_own_log(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    root = await signed_in(browser_client, "root@example.com")
    await root.action("tenant", "suspend", str(world.acme.id), str(world.globex.id))
    async with cross_tenant(db, "test assertion"):
        statuses = set(await db.scalars(select(Tenant.status)))
    assert statuses == {TenantStatus.SUSPENDED}
    for tenant in (world.acme, world.globex):
        events = await tenant_events(db, tenant.id)
        assert [(e.action, e.target_id) for e in events] == [("tenant.suspended", str(tenant.id))]


async def test_revoking_a_users_sessions_ends_their_tokens(
    browser_client: AdminBrowser,
    client: httpx.AsyncClient,
    app: FastAPI,
    world: AdminWorld,
    db: AsyncSession,
) -> None:
    olive = world.acme.users["olive"]
    token = RefreshTokenFactory(user=olive, client_id=app.state.settings.default_client_id)
    await persist(db, token)
    headers = bearer(app, olive)
    root = await signed_in(browser_client, "root@example.com")
    assert (await root.action("user", "revoke-sessions", str(olive.id))).status_code == 302
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 401
    revoked = await fresh(db, RefreshToken, RefreshToken.id == token.id)
    assert revoked.revoked_at is not None
    [event] = await platform_events(db)
    assert (event.action, event.target_id, event.actor_user_id) == (
        "user.sessions_revoked",
        str(olive.id),
        world.root.id,
    )


async def test_deactivating_a_user_locks_them_out(
    browser_client: AdminBrowser,
    client: httpx.AsyncClient,
    app: FastAPI,
    world: AdminWorld,
    db: AsyncSession,
) -> None:
    olive = world.acme.users["olive"]
    headers = bearer(app, olive)
    root = await signed_in(browser_client, "root@example.com")
    await root.action("user", "deactivate", str(olive.id))
    assert (await fresh(db, User, User.id == olive.id)).is_active is False
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 401
    assert [e.action for e in await platform_events(db)] == ["user.deactivated"]
    await root.action("user", "reactivate", str(olive.id))
    assert (await fresh(db, User, User.id == olive.id)).is_active is True


async def test_a_superuser_cannot_deactivate_themselves(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    root = await signed_in(browser_client, "root@example.com")
    response = await root.action("user", "deactivate", str(world.root.id))
    assert response.status_code == 302
    assert "error=" in response.headers["location"]
    assert (await fresh(db, User, User.id == world.root.id)).is_active is True
    assert await platform_events(db) == []


async def test_resending_an_invitation_mails_a_new_link(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession, mailbox: Mailbox
) -> None:
    invitation = world.invitations["acme"]
    old_hash = invitation.token_hash
    olive = await signed_in(browser_client, "olive.acme@example.com")
    assert (await olive.action("invitation", "resend", world.pk(invitation))).status_code == 302
    resent = await fresh(db, Invitation, Invitation.id == invitation.id)
    assert resent.token_hash != old_hash
    [message] = await mailbox.wait_for("new.acme@example.com")
    assert "/invitations/accept?token=" in Mailbox.text_of(message)
    [event] = [e for e in await tenant_events(db, world.acme.id) if e.action == "invitation.resent"]
    assert event.actor_user_id == world.acme.users["olive"].id


async def test_revoking_an_invitation_is_audited(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    invitation = world.invitations["acme"]
    olive = await signed_in(browser_client, "olive.acme@example.com")
    await olive.action("invitation", "revoke", world.pk(invitation))
    revoked = await fresh(db, Invitation, Invitation.id == invitation.id)
    assert revoked.status is InvitationStatus.REVOKED
    [event] = [
        e for e in await tenant_events(db, world.acme.id) if e.action == "invitation.revoked"
    ]
    assert event.actor_user_id == world.acme.users["olive"].id


async def test_a_tenant_admin_cannot_manage_an_owner_invitation(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    invitation = await add_invitation(db, world.acme, "boss@example.com", TenantRole.OWNER)
    adam = await signed_in(browser_client, "adam.acme@example.com")
    response = await adam.action("invitation", "revoke", world.pk(invitation))
    assert "error=" in response.headers["location"]
    kept = await fresh(db, Invitation, Invitation.id == invitation.id)
    assert kept.status is InvitationStatus.PENDING


async def test_an_edit_is_audited_with_what_changed(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    apollo = world.acme.projects["Apollo"]
    olive = await signed_in(browser_client, "olive.acme@example.com")
    response = await olive.post(
        f"/admin/project/edit/{world.pk(apollo)}",
        {"name": "Apollo 11", "description": "moon", "save": "Save"},
    )
    assert response.status_code == 302
    [event] = await tenant_events(db, world.acme.id)
    assert event.action == "project.updated"
    assert event.actor_user_id == world.acme.users["olive"].id
    assert event.data["name"] == {"from": "acme Apollo", "to": "Apollo 11"}


async def test_role_changes_follow_the_tenant_rules(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    acme = world.acme
    adam = await signed_in(browser_client, "adam.acme@example.com")
    olive_pk = f"{acme.id};{acme.users['olive'].id}"
    refused = await adam.post(
        f"/admin/membership/edit/{olive_pk}", {"role": "member", "save": "Save"}
    )
    assert refused.status_code == 400  # an admin never changes an owner
    mia_pk = f"{acme.id};{acme.users['mia'].id}"
    changed = await adam.post(
        f"/admin/membership/edit/{mia_pk}", {"role": "viewer", "save": "Save"}
    )
    assert changed.status_code == 302
    async with cross_tenant(db, "test assertion"):
        roles = dict((await db.execute(select(Membership.user_id, Membership.role))).all())
    assert roles[acme.users["olive"].id] is TenantRole.OWNER
    assert roles[acme.users["mia"].id] is TenantRole.VIEWER
    [event] = await tenant_events(db, acme.id)
    assert (event.action, event.actor_user_id) == ("member.role_changed", acme.users["adam"].id)


async def test_the_last_owner_cannot_be_demoted(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    olive = await signed_in(browser_client, "olive.acme@example.com")
    olive_pk = f"{world.acme.id};{world.acme.users['olive'].id}"
    response = await olive.post(
        f"/admin/membership/edit/{olive_pk}", {"role": "admin", "save": "Save"}
    )
    assert response.status_code == 400
    assert "at least one owner" in response.text


async def test_removing_a_member_unassigns_their_tasks(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    acme, mia = world.acme, world.acme.users["mia"]
    olive = await signed_in(browser_client, "olive.acme@example.com")
    assert (await olive.delete("membership", f"{acme.id};{mia.id}")).status_code == 200
    assert (
        await fresh(db, Membership, Membership.user_id == mia.id, Membership.tenant_id == acme.id)
        is None
    )
    task = await fresh(db, Task, Task.id == acme.tasks[0].id)
    assert task.assignee_id is None
    assert [e.action for e in await tenant_events(db, acme.id)] == ["member.removed"]


async def test_tasks_and_project_members_follow_the_project_rules(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    acme = world.acme
    apollo = acme.projects["Apollo"]
    olive = await signed_in(browser_client, "olive.acme@example.com")
    task = {"project_id": str(apollo.id), "title": "Fuel", "status": "todo", "save": "Save"}
    outsider = await olive.post(
        "/admin/task/create", {**task, "assignee_id": str(acme.users["adam"].id)}
    )
    assert outsider.status_code == 400
    assert "must be a member of the project" in outsider.text
    joined = await olive.post(
        "/admin/project-member/create",
        {
            "project_id": str(apollo.id),
            "user_id": str(acme.users["adam"].id),
            "role": "viewer",
            "save": "Save",
        },
    )
    assert joined.status_code == 302
    created = await olive.post(
        "/admin/task/create", {**task, "assignee_id": str(acme.users["adam"].id)}
    )
    assert created.status_code == 302
    fuel = await fresh(db, Task, Task.title == "Fuel")
    assert (fuel.tenant_id, fuel.assignee_id, fuel.created_by) == (
        acme.id,
        acme.users["adam"].id,
        acme.users["olive"].id,
    )
    actions = [e.action for e in await tenant_events(db, acme.id)]
    assert actions == ["project_member.added", "task.created"]


async def test_a_superuser_writes_into_the_chosen_tenant(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    root = await signed_in(browser_client, "root@example.com")
    response = await root.post(
        "/admin/project/create",
        {"tenant_id": str(world.globex.id), "name": "Hera", "description": "", "save": "Save"},
    )
    assert response.status_code == 302
    hera = await fresh(db, Project, Project.name == "Hera")
    assert hera.tenant_id == world.globex.id
    [event] = await tenant_events(db, world.globex.id)
    assert (event.action, event.actor_user_id) == ("project.created", world.root.id)
    gus = world.globex.users["gus"]
    edited = await root.post(
        f"/admin/membership/edit/{world.globex.id};{gus.id}", {"role": "admin", "save": "Save"}
    )
    assert edited.status_code == 302
    membership = await fresh(db, Membership, Membership.user_id == gus.id)
    assert membership.role is TenantRole.ADMIN
    assert await tenant_events(db, world.acme.id) == []


async def test_deleting_a_project_is_audited(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    apollo = world.acme.projects["Apollo"]
    olive = await signed_in(browser_client, "olive.acme@example.com")
    assert (await olive.delete("project", world.pk(apollo))).status_code == 200
    assert await fresh(db, Project, Project.id == apollo.id) is None  # in the trash: hidden
    assert [e.action for e in await tenant_events(db, world.acme.id)] == ["project.deleted"]


async def test_a_user_edit_is_a_platform_audit_event(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    olive = world.acme.users["olive"]
    root = await signed_in(browser_client, "root@example.com")
    response = await root.post(
        f"/admin/user/edit/{olive.id}", {"full_name": "Olive Oyl", "save": "Save"}
    )
    assert response.status_code == 302
    [event] = await platform_events(db)
    assert (event.action, event.actor_user_id) == ("user.updated", world.root.id)
    assert event.data == {"full_name": {"from": "olive", "to": "Olive Oyl"}}


async def test_a_superuser_adds_a_member_found_by_the_user_lookup(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    root = await signed_in(browser_client, "root@example.com")
    mia = world.acme.users["mia"]
    found = await root.get(
        "/admin/membership/ajax/lookup", params={"name": "user", "term": "mia.acme"}
    )
    assert [result["id"] for result in found.json()["results"]] == [str(mia.id)]
    response = await root.post(
        "/admin/membership/create",
        {"tenant_id": str(world.globex.id), "user": str(mia.id), "role": "member", "save": "Save"},
    )
    assert response.status_code == 302
    membership = await fresh(
        db, Membership, Membership.user_id == mia.id, Membership.tenant_id == world.globex.id
    )
    assert membership.role is TenantRole.MEMBER
    [event] = await tenant_events(db, world.globex.id)
    assert (event.action, event.actor_user_id) == ("member.added", world.root.id)


async def test_a_row_across_two_tenants_is_refused_cleanly(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    """In the platform view, the pickers' look-ups offer every tenant's rows; a project of one
    tenant in a row of another is refused before the write (the composite foreign keys would
    refuse it too)."""
    root = await signed_in(browser_client, "root@example.com")
    response = await root.post(
        "/admin/task/create",
        {
            "tenant_id": str(world.globex.id),
            "project_id": str(world.acme.projects["Apollo"].id),
            "title": "Crossed",
            "status": "todo",
            "save": "Save",
        },
    )
    assert response.status_code == 400
    assert "Project: pick one of those the search offers." in response.text
    assert await fresh(db, Task, Task.title == "Crossed") is None
