"""Creating invitations: who may invite whom, one pending invitation per target, the mail."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.secrets import hash_token
from backend.identity.models import ClientRole
from backend.invitations.models import Invitation
from tenants.isolation import enter_tenant
from tenants.models import AuditEvent
from tests.harness.smtp import Mailbox
from tests.invitations.helpers import (
    expire,
    invitation_row,
    invite,
    invite_to_project,
    link_in,
    token_in,
)
from tests.world import TenantWorld, build_tenant


async def test_an_owner_invites_by_email_and_only_the_mail_carries_the_token(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    response = await invite(client, app, acme, "olive", "  Grace.Hopper@Example.COM ", "admin")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "grace.hopper@example.com"
    assert (body["role"], body["status"], body["project_id"]) == ("admin", "pending", None)
    assert body["invited_by"] == str(acme.users["olive"].id)
    assert not {"token", "token_hash"} & set(body)

    [mail] = await mailbox.wait_for("grace.hopper@example.com")
    token = token_in(mail)
    assert token not in response.text
    tenant_part, secret = token.split(".")
    assert tenant_part == acme.id.hex
    assert len(secret) >= 43  # 32 random bytes: 256 bits
    stored = await invitation_row(db, acme, body["id"])
    assert stored.token_hash == hash_token(token)
    assert token not in repr(vars(stored))


async def test_the_mail_names_inviter_tenant_project_and_role_in_text_and_html(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, mailbox: Mailbox
) -> None:
    response = await invite_to_project(client, app, acme, "pat", "grace@example.com", "editor")
    assert response.status_code == 201, response.text

    [mail] = await mailbox.wait_for("grace@example.com")
    link = link_in(mail)
    assert link.startswith("https://testserver/invitations/accept?token=")
    assert mail["Subject"] == "pat invited you to acme Apollo in Acme"
    text, html = Mailbox.text_of(mail), Mailbox.html_of(mail)
    for part in (text, html):
        assert "pat" in part
        assert "Acme" in part
        assert "acme Apollo" in part
        assert "editor" in part
        assert "member" in part
        assert link in part


@pytest.mark.parametrize(
    ("who", "role", "expected"),
    [
        ("olive", "owner", 201),
        ("olive", "admin", 201),
        ("olive", "viewer", 201),
        ("adam", "owner", 403),  # admins never make owners
        ("adam", "admin", 201),
        ("adam", "member", 201),
        ("mia", "member", 403),
        ("mia", "viewer", 403),
        ("vic", "viewer", 403),
        ("pat", "member", 403),  # a project owner invites through the project
    ],
)
async def test_tenant_invitations_follow_the_role_matrix(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    who: str,
    role: str,
    expected: int,
) -> None:
    response = await invite(client, app, acme, who, "grace@example.com", role)
    assert response.status_code == expected, response.text


async def test_strangers_get_404_and_service_clients_act_with_their_role(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    globex = await build_tenant(db, "globex", members={"gus": "owner"})  # type: ignore[dict-item]
    await acme.add_client(db, "robot-admin", ClientRole.ADMIN)
    await acme.add_client(db, "robot-member", ClientRole.MEMBER)

    stranger = await client.post(
        f"{acme.url}/invitations",
        json={"email": "grace@example.com", "role": "member"},
        headers=globex.headers(app, "gus"),
    )
    assert stranger.status_code == 404
    by_admin_client = await invite(client, app, acme, "robot-admin", "grace@example.com")
    assert by_admin_client.status_code == 201, by_admin_client.text
    assert by_admin_client.json()["invited_by"] is None
    assert (await invite(client, app, acme, "robot-member", "ida@example.com")).status_code == 403


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("pat", 201),  # the project's owner
        ("olive", 201),  # tenant owners and admins own every project
        ("adam", 201),
        ("eddie", 403),  # an editor of the project
        ("vic", 403),  # a viewer of the project
        ("mia", 404),  # not in the project: it does not exist for her
    ],
)
async def test_project_invitations_come_from_project_owners(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, who: str, expected: int
) -> None:
    response = await invite_to_project(client, app, acme, who, "grace@example.com", "editor")
    assert response.status_code == expected, response.text


@pytest.mark.parametrize(
    ("project_role", "tenant_role"),
    [("viewer", "viewer"), ("editor", "member"), ("owner", "member")],
)
async def test_a_project_invitation_brings_a_tenant_role_following_the_project_role(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    project_role: str,
    tenant_role: str,
) -> None:
    response = await invite_to_project(client, app, acme, "pat", "grace@example.com", project_role)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["project_id"] == str(acme.projects["Apollo"].id)
    assert (body["project_role"], body["role"]) == (project_role, tenant_role)


async def test_an_admin_may_invite_into_a_project_through_the_tenant_route(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    apollo = acme.projects["Apollo"].id
    response = await invite(
        client, app, acme, "adam", "grace@example.com", "admin",
        project_id=apollo, project_role="owner",
    )  # fmt: skip
    assert response.status_code == 201, response.text
    assert (response.json()["role"], response.json()["project_role"]) == ("admin", "owner")

    globex = await build_tenant(db, "globex")
    other = await globex.add_project(db, "Secret")
    foreign = await invite(
        client, app, acme, "adam", "ida@example.com", project_id=other.id, project_role="viewer"
    )
    assert foreign.status_code == 404
    missing = await client.post(
        f"{acme.url}/projects/{other.id}/invitations",
        json={"email": "ida@example.com", "role": "viewer"},
        headers=acme.headers(app, "olive"),
    )
    assert missing.status_code == 404


async def test_one_pending_invitation_per_tenant_project_and_email(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    first = await invite(client, app, acme, "olive", "grace@example.com")
    assert first.status_code == 201

    again = await invite(client, app, acme, "adam", "GRACE@example.com ", "viewer")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    into_project = await invite_to_project(client, app, acme, "pat", "grace@example.com")
    assert into_project.status_code == 201  # another target: the project
    assert (
        await invite_to_project(client, app, acme, "olive", "Grace@example.com")
    ).status_code == 409

    await expire(db, acme, first.json()["id"])
    after_expiry = await invite(client, app, acme, "olive", "grace@example.com")
    assert after_expiry.status_code == 201
    assert (await invitation_row(db, acme, first.json()["id"])).status.value == "expired"

    revoked = await client.delete(
        f"{acme.url}/invitations/{after_expiry.json()['id']}", headers=acme.headers(app, "olive")
    )
    assert revoked.status_code == 204
    assert (await invite(client, app, acme, "olive", "grace@example.com")).status_code == 201


async def test_inviting_a_member_is_a_conflict(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    mia, eddie = acme.users["mia"].email, acme.users["eddie"].email

    assert (await invite(client, app, acme, "olive", mia.upper())).status_code == 409
    assert (await invite_to_project(client, app, acme, "pat", eddie)).status_code == 409
    # Mia is in the tenant but not in Apollo: the project may invite her.
    assert (await invite_to_project(client, app, acme, "pat", mia)).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "role": "member"},
        {"email": "grace@example.com", "role": "superuser"},
        {"email": "grace@example.com"},
        {"email": "grace@example.com", "role": "member", "project_role": "editor"},
        {
            "email": "grace@example.com",
            "role": "viewer",
            "project_role": "editor",
            "project_id": "00000000-0000-0000-0000-000000000001",
        },
        {"email": "grace@example.com", "role": "member", "token": "mine"},
    ],
)
async def test_bad_email_or_role_is_422(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, body: dict[str, str]
) -> None:
    response = await client.post(
        f"{acme.url}/invitations", json=body, headers=acme.headers(app, "olive")
    )
    assert response.status_code == 422, response.text


async def test_a_project_role_that_is_not_one_is_422(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    assert (
        await invite_to_project(client, app, acme, "pat", "g@example.com", "admin")
    ).status_code == 422
    assert (await invite_to_project(client, app, acme, "pat", "nope", "viewer")).status_code == 422


async def test_inviting_is_an_audit_event_without_the_token(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    response = await invite_to_project(client, app, acme, "pat", "grace@example.com", "viewer")
    token = token_in((await mailbox.wait_for("grace@example.com"))[0])

    await enter_tenant(db, acme.id)
    event = await db.scalar(select(AuditEvent).where(AuditEvent.action == "invitation.created"))
    assert event is not None
    assert event.actor_user_id == acme.users["pat"].id
    assert (event.target_type, event.target_id) == ("invitation", response.json()["id"])
    assert event.data == {
        "email": "grace@example.com",
        "role": "viewer",
        "project_id": str(acme.projects["Apollo"].id),
        "project_role": "viewer",
    }
    assert token not in str(event.data)
    assert await db.scalar(select(Invitation.email)) == "grace@example.com"
