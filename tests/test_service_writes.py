"""Every service write records exactly one audit event, in the service itself.

The service modules are enumerated: each public coroutine is listed here as a write (and then
performed, counting the audit events it adds) or as a read. A new service function that is in
neither list fails `test_every_service_function_is_listed`, so that none escapes the audit.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.api_keys import service as api_keys
from backend.core.audit import Actor
from backend.core.database import utcnow
from backend.core.pagination import PageRequest
from backend.identity import administration, one_time_tokens
from backend.identity import service as accounts
from backend.identity.models import ApiKey, ClientRole, OneTimePurpose, PlatformAuditEvent, User
from backend.identity.schemas import SignUp, UserUpdate
from backend.invitations import acceptance
from backend.invitations import service as invitations
from backend.invitations.tokens import issue_token
from backend.privacy import account, tenant_export
from backend.projects import service as projects
from backend.projects import tasks, trash
from backend.projects.access import ProjectCaller, project_caller
from backend.projects.models import TaskStatus
from backend.webhooks import service as webhooks
from backend.webhooks.models import WebhookDelivery
from tenants import clients, lifecycle
from tenants import service as tenancy
from tenants.caller import TenantCaller
from tenants.isolation import enter_tenant
from tenants.models import AuditEvent, Tenant, TenantStatus
from tenants.roles import ProjectRole, TenantRole
from tests.factories import (
    DEFAULT_PASSWORD,
    InvitationFactory,
    UserFactory,
    WebhookDeliveryFactory,
    persist,
)
from tests.world import TenantWorld, build_tenant

SERVICE_MODULES = (
    "backend.api_keys.service",
    "tenants.service",
    "tenants.clients",
    "tenants.audit",
    "tenants.lifecycle",
    "backend.projects.service",
    "backend.projects.tasks",
    "backend.projects.trash",
    "backend.invitations.service",
    "backend.identity.administration",
    "backend.webhooks.service",
    "backend.identity.service",
    "backend.invitations.acceptance",
    "backend.privacy.account",
    "backend.privacy.tenant_export",
)


@dataclass
class Acting:
    """The owner of acme as the services' caller, in one open transaction."""

    app: FastAPI
    session: AsyncSession
    world: TenantWorld
    caller: TenantCaller
    on_apollo: ProjectCaller
    outsider: User

    @property
    def actor(self) -> Actor:
        return self.caller.actor

    def user(self, name: str) -> User:
        return self.world.users[name]

    async def pending_invitation(self) -> Any:
        [invitation], _ = await invitations.list_invitations(self.session, self.caller, _PAGE)
        return invitation


Write = Callable[[Acting], Awaitable[Any]]


_PAGE = PageRequest(limit=10, after=None)


def _with_token(acting: Acting, purpose: OneTimePurpose) -> str:
    return one_time_tokens.issue(acting.session, acting.user("tom").id, purpose, 3600)


def _account(acting: Acting) -> dict[str, Any]:
    state = acting.app.state
    return {"settings": state.settings, "mailer": state.mailer}


def _mail(acting: Acting) -> dict[str, Any]:
    state = acting.app.state
    return {"mailer": state.mailer, "settings": state.settings, "limits": state.invitation_limits}


WRITES: dict[str, Write] = {
    "backend.api_keys.service.create_api_key": lambda a: api_keys.create_api_key(
        a.session, a.caller, name="CI", role=TenantRole.MEMBER, expires_in_days=30
    ),
    "backend.api_keys.service.revoke_api_key": lambda a: _on_api_key(
        a, lambda key_id: api_keys.revoke_api_key(a.session, a.user("olive"), key_id)
    ),
    "backend.api_keys.service.revoke_tenant_api_key": lambda a: _on_api_key(
        a, lambda key_id: api_keys.revoke_tenant_api_key(a.session, a.caller, key_id)
    ),
    "tenants.service.create_tenant": lambda a: tenancy.create_tenant(
        a.session, a.actor, "Initech", "initech", owner_id=a.caller.user_id
    ),
    "tenants.service.update_tenant": lambda a: tenancy.update_tenant(
        a.session, a.caller, name="Acme 2", slug=None
    ),
    "tenants.lifecycle.delete_tenant": lambda a: lifecycle.delete_tenant(
        a.session, a.caller, grace=timedelta(days=14)
    ),
    "tenants.lifecycle.restore_tenant": lambda a: _pending(
        a, lambda: lifecycle.restore_tenant(a.session, a.caller)
    ),
    "tenants.lifecycle.purge_tenant_now": lambda a: _pending(
        a, lambda: lifecycle.purge_tenant_now(a.session, replace(a.caller, platform=True))
    ),
    "tenants.lifecycle.purge_due_tenant": lambda a: _pending(
        a, lambda: lifecycle.purge_due_tenant(a.session, a.caller.tenant_id, utcnow())
    ),
    "tenants.service.set_tenant_status": lambda a: tenancy.set_tenant_status(
        a.session, a.caller.tenant_id, TenantStatus.SUSPENDED, a.actor
    ),
    "tenants.service.add_member": lambda a: tenancy.add_member(
        a.session, a.caller.tenant_id, a.outsider.id, TenantRole.MEMBER, a.actor
    ),
    "tenants.service.grant_membership": lambda a: tenancy.grant_membership(
        a.session, a.caller, a.outsider.id, TenantRole.MEMBER
    ),
    "tenants.service.change_member_role": lambda a: tenancy.change_member_role(
        a.session, a.caller, a.user("tom").id, TenantRole.VIEWER
    ),
    "tenants.service.remove_member": lambda a: tenancy.remove_member(
        a.session, a.caller, a.user("tom").id
    ),
    "tenants.clients.create_service_client": lambda a: clients.create_service_client(
        a.session, a.caller, "ci", ClientRole.MEMBER
    ),
    "tenants.clients.revoke_service_client": lambda a: clients.revoke_service_client(
        a.session, a.caller, a.world.clients["robot"].client_id
    ),
    "backend.projects.service.create_project": lambda a: projects.create_project(
        a.session, a.caller, "Hermes", ""
    ),
    "backend.projects.service.update_project": lambda a: projects.update_project(
        a.session, a.on_apollo, name="Apollo 11", description=None
    ),
    "backend.projects.service.delete_project": lambda a: projects.delete_project(
        a.session, a.on_apollo
    ),
    "backend.projects.service.restore_project": lambda a: _in_trash(
        a, a.on_apollo.project, lambda: projects.restore_project(a.session, a.caller, _apollo(a))
    ),
    "backend.projects.trash.purge_trash": lambda a: _in_trash(
        a, a.on_apollo.project, lambda: trash.purge_trash(a.session, utcnow())
    ),
    "backend.projects.service.set_project_member": lambda a: projects.set_project_member(
        a.session, a.on_apollo, a.user("tom").id, ProjectRole.VIEWER
    ),
    "backend.projects.service.put_project_member": lambda a: projects.put_project_member(
        a.session, a.on_apollo.project.id, a.user("tom").id, ProjectRole.VIEWER, a.actor
    ),
    "backend.projects.service.remove_project_member": lambda a: projects.remove_project_member(
        a.session, a.on_apollo, a.user("tom").id
    ),
    "backend.projects.tasks.create_task": lambda a: tasks.create_task(
        a.session,
        a.on_apollo,
        title="Fuel",
        description="",
        status=TaskStatus.TODO,
        assignee_id=None,
    ),
    "backend.projects.tasks.update_task": lambda a: tasks.update_task(
        a.session, a.on_apollo, a.world.tasks[0].id, {"status": TaskStatus.DONE}
    ),
    "backend.projects.tasks.delete_task": lambda a: tasks.delete_task(
        a.session, a.on_apollo, a.world.tasks[0].id
    ),
    "backend.projects.tasks.restore_task": lambda a: _in_trash(
        a, a.world.tasks[0], lambda: tasks.restore_task(a.session, a.on_apollo, a.world.tasks[0].id)
    ),
    "backend.invitations.service.create_invitation": lambda a: invitations.create_invitation(
        a.session, a.caller, email="nina@example.com", role=TenantRole.MEMBER, **_mail(a)
    ),
    "backend.invitations.service.create_project_invitation": lambda a: (
        invitations.create_project_invitation(
            a.session,
            a.on_apollo,
            email="nina@example.com",
            project_role=ProjectRole.VIEWER,
            **_mail(a),
        )
    ),
    "backend.invitations.service.resend_invitation": lambda a: _on_invitation(
        a, lambda i: invitations.resend_invitation(a.session, a.caller, i.id, **_mail(a))
    ),
    "backend.invitations.service.revoke_invitation": lambda a: _on_invitation(
        a, lambda i: invitations.revoke_invitation(a.session, a.caller, i.id)
    ),
    "backend.identity.administration.deactivate_user": lambda a: administration.deactivate_user(
        a.session, a.actor, a.user("tom")
    ),
    "backend.identity.administration.reactivate_user": lambda a: administration.reactivate_user(
        a.session, a.actor, a.user("tom")
    ),
    "backend.identity.administration.revoke_user_sessions": lambda a: (
        administration.revoke_user_sessions(a.session, a.actor, a.user("tom"))
    ),
    "backend.identity.administration.update_user": lambda a: administration.update_user(
        a.session, a.actor, a.user("tom"), full_name="Tom Thumb"
    ),
    "backend.webhooks.service.create_webhook": lambda a: webhooks.create_webhook(
        a.session,
        a.caller,
        url="http://127.0.0.1:9/new",
        events=["*"],
        description="",
        webhooks=a.app.state.webhooks,
    ),
    "backend.webhooks.service.update_webhook": lambda a: _on_delivery(
        a,
        lambda d: webhooks.update_webhook(
            a.session, a.caller, d.endpoint_id, {"enabled": False}, webhooks=a.app.state.webhooks
        ),
    ),
    "backend.webhooks.service.delete_webhook": lambda a: _on_delivery(
        a, lambda d: webhooks.delete_webhook(a.session, a.caller, d.endpoint_id)
    ),
    "backend.webhooks.service.rotate_secret": lambda a: _on_delivery(
        a,
        lambda d: webhooks.rotate_secret(
            a.session, a.caller, d.endpoint_id, webhooks=a.app.state.webhooks
        ),
    ),
    "backend.webhooks.service.ping_webhook": lambda a: _on_delivery(
        a, lambda d: webhooks.ping_webhook(a.session, a.caller, d.endpoint_id)
    ),
    "backend.webhooks.service.retry_delivery": lambda a: _on_delivery(
        a, lambda d: webhooks.retry_delivery(a.session, a.caller, d.endpoint_id, d.id)
    ),
    "backend.identity.service.sign_up": lambda a: accounts.sign_up(
        a.session,
        a.app.state.passwords,
        data=SignUp(email="zoe@example.com", password=DEFAULT_PASSWORD, full_name="Zoe"),
        **_account(a),
    ),
    "backend.identity.service.verify_email": lambda a: accounts.verify_email(
        a.session, _with_token(a, OneTimePurpose.EMAIL_VERIFICATION)
    ),
    "backend.identity.service.request_password_reset": lambda a: accounts.request_password_reset(
        a.session, email=a.user("tom").email, **_account(a)
    ),
    "backend.identity.service.confirm_password_reset": lambda a: accounts.confirm_password_reset(
        a.session,
        a.app.state.passwords,
        _with_token(a, OneTimePurpose.PASSWORD_RESET),
        "a brand new passphrase",
    ),
    "backend.identity.service.update_profile": lambda a: accounts.update_profile(
        a.session, a.user("tom"), UserUpdate(full_name="Tom Thumb")
    ),
    "backend.identity.service.change_password": lambda a: accounts.change_password(
        a.session,
        a.app.state.passwords,
        a.user("tom"),
        DEFAULT_PASSWORD,
        "a brand new passphrase",
        keep_session=None,
    ),
    "backend.identity.service.log_out_everywhere": lambda a: accounts.log_out_everywhere(
        a.session, a.user("tom"), actor=Actor(user_id=a.user("tom").id)
    ),
    "backend.privacy.tenant_export.record_tenant_export": lambda a: (
        tenant_export.record_tenant_export(a.session, a.caller)
    ),
    "backend.privacy.account.erase_account": lambda a: account.erase_account(
        a.session, a.app.state.passwords, a.user("tom"), DEFAULT_PASSWORD
    ),
}

# Writes made of several listed writes: each records its own event, in this order.
COMPOSITES: dict[str, tuple[Write, list[str]]] = {
    "backend.invitations.acceptance.accept": (
        lambda a: _on_token(a, lambda t: acceptance.accept(a.session, t, a.outsider)),
        ["member.added", "invitation.accepted"],
    ),
    "backend.invitations.acceptance.accept_as_new_user": (
        lambda a: _on_token(
            a,
            lambda t: acceptance.accept_as_new_user(
                a.session,
                t,
                full_name="Nina",
                password=DEFAULT_PASSWORD,
                passwords=a.app.state.passwords,
            ),
            email="zoe@example.com",
        ),
        ["member.added", "invitation.accepted"],  # the account is the invitation's to show
    ),
}

READS = {
    "backend.api_keys.service.list_api_keys",
    "tenants.service.ensure_tenant_context",
    "tenants.service.memberships_of_user",
    "tenants.service.tenants_of_user",
    "tenants.service.list_members",
    "tenants.service.read_member",
    "tenants.clients.list_service_clients",
    "tenants.audit.list_audit_events",
    "backend.projects.service.list_projects",
    "backend.projects.service.list_project_members",
    "backend.projects.service.read_project_member",
    "backend.projects.tasks.list_tasks",
    "backend.projects.tasks.resolve_task_read",
    "backend.invitations.service.list_invitations",
    "backend.webhooks.service.list_webhooks",
    "backend.webhooks.service.get_webhook",
    "backend.webhooks.service.list_attempts",
    "backend.projects.trash.list_trash",
    "tenants.lifecycle.tenants_due_for_purge",
    "backend.identity.service.find_user_by_email",
    "backend.identity.service.verify_credentials",
    "backend.invitations.acceptance.find_by_token",
    "backend.invitations.acceptance.open_invitation",
    "backend.invitations.acceptance.authenticate_invitee",
    "backend.privacy.account.export_account",
}

# Steps of a listed write, not writes of their own.
PARTS = {
    "backend.projects.service.unassign_tasks_of_leaving_member": "remove_member",
    "tenants.service.roles_changed": "change_member_role",
    "backend.invitations.service.revoke_what_the_inviter_may_no_longer_send": "change_member_role",
    "backend.webhooks.service.set_deliveries_due": "update_webhook",
    "backend.privacy.account.revoke_all_credentials": "erase_account",
    "backend.identity.service.end_every_session": "deactivate_user",
    "backend.invitations.acceptance.claim": "accept",
    "backend.invitations.acceptance.accept_opened": "accept",
    "backend.invitations.acceptance.accept_opened_as_new_user": "accept_as_new_user",
}


def _apollo(acting: Acting) -> Any:
    return acting.on_apollo.project.id


async def _pending(acting: Acting, write: Callable[[], Awaitable[Any]]) -> Any:
    """`write` on the tenant once its deletion is due (set directly: no event of its own)."""
    tenant = acting.caller.tenant
    tenant.status, tenant.purge_after = TenantStatus.PENDING_DELETION, utcnow()
    await acting.session.flush()
    return await write()


async def _in_trash(acting: Acting, row: Any, write: Callable[[], Awaitable[Any]]) -> Any:
    """`write` on `row` once it is in the trash (put there directly: no event of its own)."""
    model = type(row)
    await acting.session.execute(
        update(model)
        .where(model.id == row.id)
        .values(deleted_at=utcnow() - timedelta(seconds=1), version=model.version + 1)
    )
    return await write()


async def _on_token(
    acting: Acting,
    write: Callable[[str], Awaitable[Any]],
    email: str = "nina@example.com",
) -> Any:
    token = issue_token(acting.world.id)
    invitee = InvitationFactory.build(
        tenant=acting.caller.tenant, email=email, token=token, inviter=acting.user("olive")
    )
    acting.session.add(invitee)
    await acting.session.flush()
    return await write(token.value)


async def _on_invitation(acting: Acting, write: Callable[[Any], Awaitable[Any]]) -> Any:
    return await write(await acting.pending_invitation())


async def _on_delivery(acting: Acting, write: Callable[[Any], Awaitable[Any]]) -> Any:
    """`write` on the tenant's one webhook delivery (and its endpoint)."""
    return await write(await acting.session.scalar(select(WebhookDelivery)))


async def _on_api_key(acting: Acting, write: Callable[[Any], Awaitable[Any]]) -> Any:
    return await write(await acting.session.scalar(select(ApiKey.id)))


def _service_coroutines() -> set[str]:
    found = set()
    for name in SERVICE_MODULES:
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            public = not attribute.startswith("_")
            if public and inspect.iscoroutinefunction(value) and value.__module__ == name:
                found.add(f"{name}.{attribute}")
    return found


def test_every_service_function_is_listed() -> None:
    assert _service_coroutines() == set(WRITES) | set(COMPOSITES) | READS | set(PARTS)


async def _arrange(app: FastAPI, db: AsyncSession) -> TenantWorld:
    world = await build_tenant(db, "acme", {"olive": TenantRole.OWNER, "tom": TenantRole.MEMBER})
    await world.add_project(db, "Apollo", {"olive": ProjectRole.OWNER, "tom": ProjectRole.EDITOR})
    await world.add_task(db, "Apollo", assignee="tom")
    await world.add_client(db, "robot", ClientRole.MEMBER)
    await persist(db, WebhookDeliveryFactory(tenant_id=world.id, failed=True))
    await world.add_api_key(db, "olive", TenantRole.ADMIN)
    async with app.state.database.session_factory() as session, session.begin():
        await enter_tenant(session, world.id)
        caller = await _owner(session, world)
        await invitations.create_invitation(
            session,
            caller,
            email="new@example.com",
            role=TenantRole.MEMBER,
            mailer=app.state.mailer,
            settings=app.state.settings,
            limits=app.state.invitation_limits,
        )
    return world


async def _owner(session: AsyncSession, world: TenantWorld) -> TenantCaller:
    tenant = await session.scalar(select(Tenant).where(Tenant.id == world.id))
    user = await session.scalar(select(User).where(User.id == world.users["olive"].id))
    assert tenant is not None
    assert user is not None
    return TenantCaller(tenant=tenant, role=TenantRole.OWNER, user=user)


async def _recorded_actions(app: FastAPI, db: AsyncSession, write: Write) -> list[str]:
    """The audit events `write` adds, performed as acme's owner in a transaction rolled back."""
    world = await _arrange(app, db)
    outsider = await persist(db, UserFactory(email="nina@example.com"))
    recorded: list[AuditEvent | PlatformAuditEvent] = []

    def count_events(session: Any, _context: Any, _instances: Any) -> None:
        audit_rows = (AuditEvent, PlatformAuditEvent)
        recorded.extend(row for row in session.new if isinstance(row, audit_rows))

    async with app.state.database.session_factory() as session:
        await enter_tenant(session, world.id)
        caller = await _owner(session, world)
        on_apollo = await project_caller(session, caller, world.projects["Apollo"].id)
        for name_, user in world.users.items():  # the session's own copies
            world.users[name_] = await session.get(User, user.id) or user
        acting = Acting(app, session, world, caller, on_apollo, outsider)
        event.listen(session.sync_session, "before_flush", count_events)
        await write(acting)
        await session.flush()
        await session.rollback()
    return [row.action for row in recorded]


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_each_service_write_records_one_audit_event(
    app: FastAPI, db: AsyncSession, name: str
) -> None:
    actions = await _recorded_actions(app, db, WRITES[name])
    assert len(actions) == 1, actions


@pytest.mark.parametrize("name", sorted(COMPOSITES))
async def test_each_composite_write_records_the_events_of_its_parts(
    app: FastAPI, db: AsyncSession, name: str
) -> None:
    write, expected = COMPOSITES[name]
    assert sorted(await _recorded_actions(app, db, write)) == sorted(expected)
