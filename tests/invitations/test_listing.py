"""Listing invitations: paginated, newest first, with their status, for those allowed to invite."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tests.harness.smtp import Mailbox
from tests.invitations.helpers import expire, invite, invite_to_project, mailed_token
from tests.world import TenantWorld


async def test_owners_page_through_every_invitation_with_its_status(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, mailbox: Mailbox
) -> None:
    headers = acme.headers(app, "olive")
    ids = {}
    for name in ("pending", "accepted", "revoked", "expired"):
        response = await invite(client, app, acme, "olive", f"{name}@example.com")
        ids[name] = response.json()["id"]
    token = await mailed_token(mailbox, "accepted@example.com")
    body = {"token": token, "full_name": "Ann", "password": "a long unguessable secret"}
    assert (await client.post("/api/v1/invitations/accept-new-user", json=body)).status_code == 201
    await client.delete(f"{acme.url}/invitations/{ids['revoked']}", headers=headers)
    await expire(db, acme, ids["expired"])

    first = await client.get(f"{acme.url}/invitations?limit=3", headers=headers)
    assert first.status_code == 200
    cursor = first.json()["next_cursor"]
    assert cursor
    second = await client.get(f"{acme.url}/invitations?limit=3&cursor={cursor}", headers=headers)
    assert second.json()["next_cursor"] is None

    items = first.json()["items"] + second.json()["items"]
    assert [item["email"] for item in items] == [
        "expired@example.com",
        "revoked@example.com",
        "accepted@example.com",
        "pending@example.com",
    ]
    assert [item["status"] for item in items] == ["expired", "revoked", "accepted", "pending"]
    assert all("token" not in key for item in items for key in item)


@pytest.mark.parametrize(("who", "expected"), [("adam", 200), ("mia", 403), ("vic", 403)])
async def test_only_those_who_may_invite_list_the_tenant_invitations(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, who: str, expected: int
) -> None:
    response = await client.get(f"{acme.url}/invitations", headers=acme.headers(app, who))
    assert response.status_code == expected


async def test_a_project_owner_lists_the_invitations_of_their_project(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    await invite(client, app, acme, "olive", "tenant-only@example.com")
    await invite_to_project(client, app, acme, "pat", "apollo@example.com")
    apollo = acme.projects["Apollo"].id

    def listing(who: str, query: str = ""):
        return client.get(f"{acme.url}/invitations{query}", headers=acme.headers(app, who))

    mine = await listing("pat", f"?project_id={apollo}")
    assert mine.status_code == 200
    assert [item["email"] for item in mine.json()["items"]] == ["apollo@example.com"]
    assert (await listing("pat")).status_code == 403
    assert (await listing("eddie", f"?project_id={apollo}")).status_code == 403
    assert (await listing("mia", f"?project_id={apollo}")).status_code == 404
