"""Invitations are no mail relay: sending needs a verified email address, a tenant has a daily
quota, an invitation a resend cooldown, pending invitations die with their inviter's right to
send them, and service clients cannot mint more service clients."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from limits.aio.storage import MemoryStorage
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import utcnow
from backend.identity.models import ClientRole, User
from backend.invitations.limits import InvitationLimits
from backend.invitations.models import InvitationStatus
from tenants.roles import ProjectRole
from tests.auth import bearer
from tests.harness.smtp import Mailbox
from tests.invitations.helpers import invitation_row, invite, invite_to_project, mailed_token
from tests.world import TenantWorld

SIGN_UP = {"email": "spammer@example.com", "password": "a long passphrase", "full_name": "S"}


@pytest.fixture
async def limits(app: FastAPI) -> AsyncIterator[None]:
    """The default cooldown (60 seconds) and a quota of 3 a day, counted afresh."""
    saved = app.state.invitation_limits
    app.state.invitation_limits = InvitationLimits(3, 60, MemoryStorage())
    yield
    app.state.invitation_limits = saved


async def _signed_up_owner(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> tuple[dict[str, str], str, uuid.UUID]:
    """A fresh, unverified sign-up and the tenant it creates, named like a phishing line."""
    assert (await client.post("/api/v1/users", json=SIGN_UP)).status_code == 201
    user = await db.scalar(select(User).where(User.email == SIGN_UP["email"]))
    assert user is not None
    headers = bearer(app, user)
    name = "Your account is locked: call +1 555 0100"
    tenant = await client.post(
        "/api/v1/tenants", json={"name": name, "slug": "phish"}, headers=headers
    )
    assert tenant.status_code == 201, tenant.text  # creating a tenant stays open to everyone
    return headers, tenant.json()["id"], user.id


async def test_an_unverified_account_cannot_send_invitations(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, mailbox: Mailbox
) -> None:
    headers, tenant_id, user_id = await _signed_up_owner(app, client, db)

    refused = await client.post(
        f"/api/v1/tenants/{tenant_id}/invitations",
        json={"email": "target@example.org", "role": "member"},
        headers=headers,
    )

    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    detail = refused.json()["detail"]
    assert "Verify your email address" in detail
    assert "POST /api/v1/users/me/verification-mail" in detail
    again = await client.post("/api/v1/users/me/verification-mail", headers=headers)
    assert again.status_code == 202
    assert len(await mailbox.wait_for(SIGN_UP["email"], 2)) == 2  # sign-up's and this one
    assert mailbox.to("target@example.org") == []

    await db.execute(update(User).where(User.id == user_id).values(email_verified_at=utcnow()))
    await db.commit()
    sent = await client.post(
        f"/api/v1/tenants/{tenant_id}/invitations",
        json={"email": "target@example.org", "role": "member"},
        headers=headers,
    )
    assert sent.status_code == 201


async def test_an_unverified_account_cannot_create_service_clients_either(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    headers, tenant_id, _ = await _signed_up_owner(app, client, db)
    response = await client.post(
        f"/api/v1/tenants/{tenant_id}/clients",
        json={"name": "relay", "role": "admin"},
        headers=headers,
    )
    assert response.status_code == 403
    assert "Verify your email address" in response.json()["detail"]


@pytest.mark.usefixtures("limits")
async def test_a_tenant_sends_its_daily_quota_and_no_more(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    answers = [await invite(client, app, acme, "olive", f"n{n}@example.com") for n in range(4)]

    assert [answer.status_code for answer in answers] == [201, 201, 201, 429]
    refused = answers[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert 0 < int(refused.headers["retry-after"]) <= 86_400
    assert "3 invitations for today" in refused.json()["detail"]


@pytest.mark.usefixtures("limits")
async def test_a_resend_waits_for_the_cooldown_and_counts_against_the_quota(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    created = await invite(client, app, acme, "olive", "grace@example.com")
    resend_url = f"{acme.url}/invitations/{created.json()['id']}/resend"

    too_soon = await client.post(resend_url, headers=acme.headers(app, "olive"))

    assert too_soon.status_code == 429
    assert 0 < int(too_soon.headers["retry-after"]) <= 60
    app.state.invitation_limits.cooldown = None  # as INVITATION_RESEND_COOLDOWN_SECONDS=0
    resends = [await client.post(resend_url, headers=acme.headers(app, "olive")) for _ in range(3)]
    assert [answer.status_code for answer in resends] == [200, 200, 429]  # 3 mails a day


def test_a_zero_cooldown_turns_it_off() -> None:
    assert InvitationLimits(200, 0, MemoryStorage()).cooldown is None


async def test_demoting_the_inviter_revokes_their_pending_invitations(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    by_admin = await invite(client, app, acme, "adam", "grace@example.com")
    by_owner = await invite(client, app, acme, "olive", "henry@example.com")
    token = await mailed_token(mailbox, "grace@example.com")

    demoted = await client.patch(
        f"{acme.url}/members/{acme.users['adam'].id}",
        json={"role": "member"},
        headers=acme.headers(app, "olive"),
    )

    assert demoted.status_code == 200
    revoked = await invitation_row(db, acme, by_admin.json()["id"])
    assert revoked.status is InvitationStatus.REVOKED
    kept = await invitation_row(db, acme, by_owner.json()["id"])
    assert kept.status is InvitationStatus.PENDING
    assert (await client.get(f"/api/v1/invitations/{token}")).status_code == 410


async def test_an_owner_made_admin_keeps_only_what_admins_may_send(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    await client.patch(
        f"{acme.url}/members/{acme.users['adam'].id}",
        json={"role": "owner"},
        headers=acme.headers(app, "olive"),
    )
    owner_invitation = await invite(client, app, acme, "olive", "co.owner@example.com", "owner")
    member_invitation = await invite(client, app, acme, "olive", "member@example.com")

    await client.patch(
        f"{acme.url}/members/{acme.users['olive'].id}",
        json={"role": "admin"},
        headers=acme.headers(app, "adam"),
    )

    owner_row = await invitation_row(db, acme, owner_invitation.json()["id"])
    member_row = await invitation_row(db, acme, member_invitation.json()["id"])
    assert owner_row.status is InvitationStatus.REVOKED
    assert member_row.status is InvitationStatus.PENDING


async def test_removing_the_inviter_revokes_their_pending_invitations(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    created = await invite(client, app, acme, "adam", "grace@example.com")
    removed = await client.delete(
        f"{acme.url}/members/{acme.users['adam'].id}", headers=acme.headers(app, "olive")
    )
    assert removed.status_code == 204
    row = await invitation_row(db, acme, created.json()["id"])
    assert row.status is InvitationStatus.REVOKED


async def test_a_project_owner_who_loses_the_project_loses_their_invitations(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    created = await invite_to_project(client, app, acme, "pat", "grace@example.com")
    assert created.status_code == 201
    demoted = await client.put(
        f"{acme.project_url('Apollo')}/members/{acme.users['pat'].id}",
        json={"role": ProjectRole.EDITOR.value},
        headers=acme.headers(app, "olive"),
    )
    assert demoted.status_code == 200, demoted.text
    row = await invitation_row(db, acme, created.json()["id"])
    assert row.status is InvitationStatus.REVOKED


async def test_service_clients_cannot_create_or_manage_clients(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    robot = await acme.add_client(db, "robot", ClientRole.ADMIN)
    headers = acme.headers(app, "robot")
    answers = [
        await client.post(
            f"{acme.url}/clients", json={"name": "clone", "role": "admin"}, headers=headers
        ),
        await client.get(f"{acme.url}/clients", headers=headers),
        await client.delete(f"{acme.url}/clients/{robot.client_id}", headers=headers),
    ]
    assert [answer.status_code for answer in answers] == [403, 403, 403]
    assert "Service clients cannot" in answers[0].json()["detail"]
