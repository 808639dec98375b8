"""Accepting: as the signed-in invitee or as a new user; atomic; one winner among concurrent
acceptances."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.errors import Gone
from backend.identity.models import User
from backend.invitations import acceptance
from backend.invitations.models import InvitationStatus
from backend.projects.models import ProjectMember
from tenants.models import AuditEvent, Membership, TenantStatus
from tenants.roles import ProjectRole, TenantRole
from tests.auth import bearer
from tests.cross_tenant import cross_tenant
from tests.factories import UserFactory, persist
from tests.harness.smtp import Mailbox
from tests.invitations.helpers import (
    audit_actions,
    count,
    invitation_row,
    invite,
    invite_to_project,
    mailed_token,
)
from tests.world import TenantWorld

GRACE = "grace@example.com"
PASSWORD = "a long unguessable secret"


async def _accept(client: httpx.AsyncClient, app: FastAPI, user: User, token: str):
    return await client.post(
        "/api/v1/invitations/accept", json={"token": token}, headers=bearer(app, user)
    )


async def _accept_new(client: httpx.AsyncClient, token: str, password: str = PASSWORD):
    body = {"token": token, "full_name": "Grace Hopper", "password": password}
    return await client.post("/api/v1/invitations/accept-new-user", json=body)


async def _roles(db: AsyncSession, world: TenantWorld, user_id) -> tuple:
    async with cross_tenant(db, "test assertion"):
        tenant_role = await db.scalar(
            select(Membership.role).where(
                Membership.tenant_id == world.id, Membership.user_id == user_id
            )
        )
        project_role = await db.scalar(
            select(ProjectMember.role).where(
                ProjectMember.project_id == world.projects["Apollo"].id,
                ProjectMember.user_id == user_id,
            )
        )
    return tenant_role, project_role


async def test_a_signed_in_user_accepts_when_the_email_matches_in_any_case(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    grace = await persist(db, UserFactory(email=GRACE))
    created = await invite_to_project(client, app, acme, "pat", "GRACE@example.COM", "editor")
    token = await mailed_token(mailbox, GRACE)

    response = await _accept(client, app, grace, token)

    assert response.status_code == 200, response.text
    apollo = acme.projects["Apollo"]
    assert response.json() == {
        "user_id": str(grace.id),
        "email": GRACE,
        "tenant": {"id": str(acme.id), "name": "Acme"},
        "project": {"id": str(apollo.id), "name": apollo.name},
        "role": "member",
        "project_role": "editor",
    }
    assert await _roles(db, acme, grace.id) == (TenantRole.MEMBER, ProjectRole.EDITOR)
    row = await invitation_row(db, acme, created.json()["id"])
    assert (row.status, row.accepted_by) == (InvitationStatus.ACCEPTED, grace.id)
    assert row.accepted_at is not None
    assert (await audit_actions(db, acme))[-1] == "invitation.accepted"


async def test_another_account_cannot_accept_and_nothing_changes(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    mallory = await persist(db, UserFactory(email="mallory@example.com"))
    created = await invite(client, app, acme, "olive", GRACE)
    token = await mailed_token(mailbox, GRACE)

    response = await _accept(client, app, mallory, token)

    assert response.status_code == 403
    assert (await invitation_row(db, acme, created.json()["id"])).status is InvitationStatus.PENDING
    assert await _roles(db, acme, mallory.id) == (None, None)
    assert (
        await client.post("/api/v1/invitations/accept", json={"token": token})
    ).status_code == 401


async def test_a_new_user_is_created_verified_with_the_invited_email(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    await invite_to_project(client, app, acme, "pat", "Grace@Example.com", "viewer")
    token = await mailed_token(mailbox, GRACE)

    response = await _accept_new(client, token)

    assert response.status_code == 201, response.text
    assert (response.json()["role"], response.json()["project_role"]) == ("viewer", "viewer")
    grace = await db.scalar(select(User).where(User.email == GRACE))
    assert grace is not None
    assert grace.full_name == "Grace Hopper"
    assert grace.email_verified_at is not None
    assert (await app.state.passwords.verify(PASSWORD, grace.password_hash))[0]
    assert await _roles(db, acme, grace.id) == (TenantRole.VIEWER, ProjectRole.VIEWER)
    assert await audit_actions(db, acme) == [
        "invitation.created",
        "member.added",
        "project_member.added",
        "invitation.accepted",
    ]


async def test_accept_new_user_refuses_weak_passwords_and_existing_accounts(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    await invite(client, app, acme, "olive", GRACE)
    token = await mailed_token(mailbox, GRACE)

    assert (await _accept_new(client, token, password="short")).status_code == 422
    await persist(db, UserFactory(email=GRACE))
    taken = await _accept_new(client, token)
    assert taken.status_code == 409
    assert "sign in" in taken.json()["detail"]


async def test_a_member_accepting_a_project_invitation_keeps_their_tenant_role(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    mia = acme.users["mia"]
    await invite_to_project(client, app, acme, "pat", mia.email, "owner")
    token = await mailed_token(mailbox, mia.email)

    response = await _accept(client, app, mia, token)

    assert response.status_code == 200, response.text
    assert response.json()["role"] == "member"
    assert await _roles(db, acme, mia.id) == (TenantRole.MEMBER, ProjectRole.OWNER)


async def test_acceptance_is_all_or_nothing(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    """Mia joins Apollo another way after her invitation was sent: accepting fails late (after
    the invitation was claimed and the tenant membership looked at), and everything rolls back."""
    mia = acme.users["mia"]
    created = await invite_to_project(client, app, acme, "pat", mia.email, "viewer")
    token = await mailed_token(mailbox, mia.email)
    put = await client.put(
        f"{acme.project_url('Apollo')}/members/{mia.id}",
        json={"role": "editor"},
        headers=acme.headers(app, "pat"),
    )
    assert put.status_code == 201, put.text  # mia joins Apollo
    events = await count(db, acme, AuditEvent)

    response = await _accept(client, app, mia, token)

    assert response.status_code == 409
    assert (await invitation_row(db, acme, created.json()["id"])).status is InvitationStatus.PENDING
    assert await _roles(db, acme, mia.id) == (TenantRole.MEMBER, ProjectRole.EDITOR)
    assert await count(db, acme, AuditEvent) == events


async def test_a_suspended_tenant_accepts_nobody(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    await invite(client, app, acme, "olive", GRACE)
    token = await mailed_token(mailbox, GRACE)
    acme.tenant.status = TenantStatus.SUSPENDED
    await persist(db, acme.tenant)

    assert (await _accept_new(client, token)).status_code == 403
    assert await db.scalar(select(User.id).where(User.email == GRACE)) is None


async def test_two_concurrent_accepts_of_one_token_make_one_member(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    grace = await persist(db, UserFactory(email=GRACE))
    await invite_to_project(client, app, acme, "pat", GRACE, "editor")
    token = await mailed_token(mailbox, GRACE)

    responses = await asyncio.gather(*(_accept(client, app, grace, token) for _ in range(2)))

    assert sorted(r.status_code for r in responses) == [200, 410], [r.text for r in responses]
    assert await count(db, acme, Membership, Membership.user_id == grace.id) == 1
    assert await count(db, acme, AuditEvent, AuditEvent.action == "invitation.accepted") == 1


async def test_two_concurrent_new_user_accepts_make_one_account(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    await invite(client, app, acme, "olive", GRACE)
    token = await mailed_token(mailbox, GRACE)

    responses = await asyncio.gather(*(_accept_new(client, token) for _ in range(2)))

    winner, loser = sorted(responses, key=lambda r: r.status_code)
    assert winner.status_code == 201, winner.text
    # The loser is refused where the winner's commit overtook it: at the account (the email is
    # taken) or at the invitation (it is used); the status is the one of that refusal.
    refusal = 409 if loser.json()["detail"] == acceptance.ACCOUNT_EXISTS else 410
    assert loser.status_code == refusal, loser.text
    assert await db.scalar(select(User.id).where(User.email == GRACE)) is not None
    assert await count(db, acme, AuditEvent, AuditEvent.action == "invitation.accepted") == 1


async def test_the_second_of_two_interleaved_acceptances_finds_the_invitation_taken(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    """Both transactions read the invitation as pending; the first claims it and commits while
    the second waits on its claim (row lock on PostgreSQL, database lock on SQLite)."""
    grace = await persist(db, UserFactory(email=GRACE))
    await invite(client, app, acme, "olive", GRACE)
    token = await mailed_token(mailbox, GRACE)
    factory = app.state.database.session_factory

    async with factory() as first, factory() as second:
        await acceptance.accept(first, token, grace)  # claimed, not committed
        racing = asyncio.create_task(acceptance.accept(second, token, grace))
        await asyncio.sleep(0.3)
        assert not racing.done(), "the second claim should wait for the first transaction"
        await first.commit()
        with pytest.raises(Gone):
            await racing
        await second.rollback()

    assert await count(db, acme, Membership, Membership.user_id == grace.id) == 1
