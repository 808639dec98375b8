"""Service clients: a tenant role, a secret shown once, revoked by deletion."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity.models import ClientRole
from tenants.roles import TenantRole
from tests.world import TenantWorld, build_tenant


@pytest.fixture
async def acme(db: AsyncSession) -> TenantWorld:
    return await build_tenant(db, "acme", members={"ada": TenantRole.ADMIN})


async def client_credentials(client: httpx.AsyncClient, client_id: str, secret: str) -> str:
    response = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def test_a_new_client_shows_its_secret_once_and_signs_in_with_its_role(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    created = await client.post(
        f"{acme.url}/clients",
        json={"name": "CI robot", "role": "viewer"},
        headers=acme.headers(app, "ada"),
    )
    assert created.status_code == 201, created.text
    robot = created.json()
    assert (robot["name"], robot["role"], robot["created_by"]) == (
        "CI robot",
        "viewer",
        str(acme.users["ada"].id),
    )

    listed = await client.get(f"{acme.url}/clients", headers=acme.headers(app, "ada"))
    assert [c["client_id"] for c in listed.json()["items"]] == [robot["client_id"]]
    assert "client_secret" not in listed.json()["items"][0]

    token = await client_credentials(client, robot["client_id"], robot["client_secret"])
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get(acme.url, headers=headers)).json()["role"] == "viewer"
    renamed = await client.patch(acme.url, json={"name": "Robot's"}, headers=headers)
    assert renamed.status_code == 403


async def test_deleting_a_client_revokes_it_at_once_and_is_audited(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    created = await client.post(
        f"{acme.url}/clients",
        json={"name": "robot", "role": "admin"},
        headers=acme.headers(app, "ada"),
    )
    robot = created.json()
    token = await client_credentials(client, robot["client_id"], robot["client_secret"])

    deleted = await client.delete(
        f"{acme.url}/clients/{robot['client_id']}", headers=acme.headers(app, "ada")
    )

    assert deleted.status_code == 204
    stale = await client.get(acme.url, headers={"Authorization": f"Bearer {token}"})
    assert stale.status_code == 401
    listed = await client.get(f"{acme.url}/clients", headers=acme.headers(app, "ada"))
    assert listed.json()["items"] == []
    again = await client.delete(
        f"{acme.url}/clients/{robot['client_id']}", headers=acme.headers(app, "ada")
    )
    assert again.status_code == 404
    events = await client.get(f"{acme.url}/audit-events", headers=acme.headers(app, "ada"))
    assert [(e["action"], e["target_id"]) for e in events.json()["items"]] == [
        ("client.revoked", robot["client_id"]),
        ("client.created", robot["client_id"]),
    ]
    assert "secret" not in str(events.json())


async def test_another_tenants_client_is_404(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    globex = await build_tenant(db, "globex")
    theirs = await globex.add_client(db, "robot", ClientRole.ADMIN)

    response = await client.delete(
        f"{acme.url}/clients/{theirs.client_id}", headers=acme.headers(app, "ada")
    )

    assert response.status_code == 404
    still_works = await client.get(globex.url, headers=globex.headers(app, "robot"))
    assert still_works.status_code == 200


async def test_a_client_never_holds_owner(
    app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    response = await client.post(
        f"{acme.url}/clients",
        json={"name": "robot", "role": "owner"},
        headers=acme.headers(app, "ada"),
    )
    assert response.status_code == 422


async def test_clients_page_by_page(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld
) -> None:
    for n in range(3):
        await acme.add_client(db, f"robot{n}", ClientRole.VIEWER)
    url, headers = f"{acme.url}/clients", acme.headers(app, "ada")

    first = (await client.get(url, params={"limit": 2}, headers=headers)).json()
    second = (
        await client.get(url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers)
    ).json()

    names = [c["name"] for c in first["items"] + second["items"]]
    assert names == ["robot0", "robot1", "robot2"]
    assert second["next_cursor"] is None
