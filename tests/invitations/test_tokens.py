"""Token lifecycle: preview, resend replaces the token, revoke and expiry kill it, replay is 410,
and a refused acceptance changes nothing."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.logging import JsonFormatter
from backend.core.secrets import new_token
from backend.invitations.models import InvitationStatus
from tenants.models import AuditEvent, Membership
from tests.auth import bearer
from tests.factories import UserFactory, persist
from tests.harness.smtp import Mailbox
from tests.invitations.helpers import (
    audit_actions,
    count,
    expire,
    invitation_row,
    invite,
    invite_to_project,
    mailed_token,
)
from tests.tenancy.world import TenantWorld, build_tenant

GRACE = "grace@example.com"


async def _preview(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(f"/api/v1/invitations/{token}")


async def _accept_new(client: httpx.AsyncClient, token: str) -> httpx.Response:
    body = {"token": token, "full_name": "Grace Hopper", "password": "a long unguessable secret"}
    return await client.post("/api/v1/invitations/accept-new-user", json=body)


async def test_the_preview_shows_what_the_invitation_is_for(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, mailbox: Mailbox
) -> None:
    created = await invite_to_project(client, app, acme, "pat", "Grace@Example.com", "viewer")
    token = await mailed_token(mailbox, GRACE)

    response = await _preview(client, token)

    assert response.status_code == 200
    apollo = acme.projects["Apollo"]
    assert response.json() == {
        "email": GRACE,
        "tenant": {"id": str(acme.id), "name": "Acme"},
        "project": {"id": str(apollo.id), "name": apollo.name},
        "role": "viewer",
        "project_role": "viewer",
        "inviter": "pat",
        "expires_at": created.json()["expires_at"],
    }


async def test_unknown_and_malformed_tokens_are_404(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    await invite(client, app, acme, "olive", GRACE)
    token = await mailed_token(mailbox, GRACE)
    globex = await build_tenant(db, "globex")
    _, secret = token.split(".")

    for unknown in (
        f"{acme.id.hex}.{new_token()}",  # the right tenant, another secret
        f"{globex.id.hex}.{secret}",  # the right secret under another tenant
        secret,
        "garbage",
        token + "x",
    ):
        response = await _preview(client, unknown)
        assert response.status_code == 404, unknown
        assert response.headers["content-type"] == "application/problem+json"
        accepted = await _accept_new(client, unknown)
        assert accepted.status_code == 404


async def test_resend_issues_a_new_token_and_kills_the_old_one(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    created = (await invite(client, app, acme, "olive", GRACE)).json()
    first = await mailed_token(mailbox, GRACE)

    response = await client.post(
        f"{acme.url}/invitations/{created['id']}/resend", headers=acme.headers(app, "adam")
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "pending"
    assert response.json()["expires_at"] > created["expires_at"]
    second = await mailed_token(mailbox, GRACE, count=2)
    assert second != first
    assert (await _preview(client, first)).status_code == 404
    assert (await _accept_new(client, first)).status_code == 404
    assert (await _preview(client, second)).status_code == 200
    assert await audit_actions(db, acme) == ["invitation.created", "invitation.resent"]


async def test_revoke_kills_the_token_and_is_idempotent(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    created = (await invite(client, app, acme, "olive", GRACE)).json()
    token = await mailed_token(mailbox, GRACE)
    url = f"{acme.url}/invitations/{created['id']}"

    assert (await client.delete(url, headers=acme.headers(app, "adam"))).status_code == 204

    preview = await _preview(client, token)
    assert preview.status_code == 410
    assert "withdrawn" in preview.json()["detail"]
    assert (await _accept_new(client, token)).status_code == 410
    assert (await client.delete(url, headers=acme.headers(app, "adam"))).status_code == 204
    resend = await client.post(f"{url}/resend", headers=acme.headers(app, "adam"))
    assert resend.status_code == 409
    assert await audit_actions(db, acme) == ["invitation.created", "invitation.revoked"]


async def test_an_expired_invitation_is_410_until_resent(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    created = (await invite(client, app, acme, "olive", GRACE)).json()
    token = await mailed_token(mailbox, GRACE)
    await expire(db, acme, created["id"])

    preview = await _preview(client, token)
    assert preview.status_code == 410
    assert "expired" in preview.json()["detail"]
    assert (await _accept_new(client, token)).status_code == 410

    resend = await client.post(
        f"{acme.url}/invitations/{created['id']}/resend", headers=acme.headers(app, "olive")
    )
    assert resend.status_code == 200
    fresh = await mailed_token(mailbox, GRACE, count=2)
    assert (await _accept_new(client, fresh)).status_code == 201


async def test_a_used_token_is_410_and_a_refused_acceptance_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    created = (await invite(client, app, acme, "olive", GRACE)).json()
    token = await mailed_token(mailbox, GRACE)
    assert (await _accept_new(client, token)).status_code == 201
    members = await count(db, acme, Membership)
    events = await count(db, acme, AuditEvent)

    replay = await _accept_new(client, token)
    grace = await persist(db, UserFactory(email="grace.again@example.com"))
    signed_in_replay = await client.post(
        "/api/v1/invitations/accept", json={"token": token}, headers=bearer(app, grace)
    )

    assert replay.status_code == 410
    assert "accepted already" in replay.json()["detail"]
    assert signed_in_replay.status_code == 410
    assert (await _preview(client, token)).status_code == 410
    assert await count(db, acme, Membership) == members
    assert await count(db, acme, AuditEvent) == events
    row = await invitation_row(db, acme, created["id"])
    assert row.status is InvitationStatus.ACCEPTED
    resend = await client.post(
        f"{acme.url}/invitations/{created['id']}/resend", headers=acme.headers(app, "olive")
    )
    assert resend.status_code == 409
    revoke = await client.delete(
        f"{acme.url}/invitations/{created['id']}", headers=acme.headers(app, "olive")
    )
    assert revoke.status_code == 409


async def test_who_may_resend_and_revoke(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    to_tenant = (await invite(client, app, acme, "olive", GRACE, "owner")).json()
    to_project = (await invite_to_project(client, app, acme, "pat", "ida@example.com")).json()

    def resend(invitation: dict[str, str], who: str):
        url = f"{acme.url}/invitations/{invitation['id']}/resend"
        return client.post(url, headers=acme.headers(app, who))

    assert (await resend(to_tenant, "adam")).status_code == 403  # an owner invitation
    assert (await resend(to_tenant, "pat")).status_code == 403
    assert (await resend(to_tenant, "olive")).status_code == 200
    assert (await resend(to_project, "pat")).status_code == 200  # the project's owner
    assert (await resend(to_project, "eddie")).status_code == 403
    assert (await resend(to_project, "mia")).status_code == 404  # she cannot see Apollo
    missing = {"id": "00000000-0000-0000-0000-000000000000"}
    assert (await resend(missing, "olive")).status_code == 404
    revoke = await client.delete(
        f"{acme.url}/invitations/{to_project['id']}", headers=acme.headers(app, "pat")
    )
    assert revoke.status_code == 204


async def test_the_access_log_never_carries_a_token(
    app: FastAPI,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    mailbox: Mailbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    await invite(client, app, acme, "olive", GRACE)
    token = await mailed_token(mailbox, GRACE)

    await _preview(client, token)
    await client.get("/invitations/accept", params={"token": token})

    # httpx is the test's own client, logging the URL it called; only the server's lines count.
    server_records = [record for record in caplog.records if record.name != "httpx"]
    logged = [JsonFormatter().format(record) for record in server_records]
    assert any(json.loads(line).get("route") == "/api/v1/invitations/{token}" for line in logged)
    assert not [line for line in logged if token in line]
