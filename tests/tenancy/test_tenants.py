"""Tenants: creating one makes the caller its owner; only the owner deletes it (see also
test_tenant_deletion.py)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor
from backend.identity.models import ClientRole
from tenants import service
from tenants.models import TenantStatus
from tenants.roles import ProjectRole, TenantRole
from tests.auth import bearer, random_id
from tests.factories import UserFactory, persist
from tests.world import build_tenant

TENANTS = "/api/v1/tenants"


async def test_creating_a_tenant_makes_the_caller_its_owner(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    ada = await persist(db, UserFactory())

    created = await client.post(
        TENANTS, json={"name": " Acme ", "slug": "acme"}, headers=bearer(app, ada)
    )

    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["slug"], body["status"], body["role"]) == (
        "Acme",
        "acme",
        "active",
        "owner",
    )
    members = await client.get(f"{TENANTS}/{body['id']}/members", headers=bearer(app, ada))
    assert [(m["user_id"], m["role"]) for m in members.json()["items"]] == [(str(ada.id), "owner")]
    events = await client.get(f"{TENANTS}/{body['id']}/audit-events", headers=bearer(app, ada))
    assert [e["action"] for e in events.json()["items"]] == ["tenant.created"]


async def test_a_slug_is_unique_and_well_formed(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    ada = await persist(db, UserFactory())
    headers = bearer(app, ada)
    assert (
        await client.post(TENANTS, json={"name": "A", "slug": "acme"}, headers=headers)
    ).is_success

    taken = await client.post(TENANTS, json={"name": "B", "slug": "acme"}, headers=headers)
    malformed = await client.post(
        TENANTS, json={"name": "C", "slug": "Not A Slug"}, headers=headers
    )

    assert (taken.status_code, taken.json()["detail"]) == (409, "This slug is taken.")
    assert malformed.status_code == 422
    globex = await client.post(TENANTS, json={"name": "G", "slug": "globex"}, headers=headers)
    moved = await client.patch(
        f"{TENANTS}/{globex.json()['id']}", json={"slug": "acme"}, headers=headers
    )
    assert (moved.status_code, moved.json()["detail"]) == (409, "This slug is taken.")


async def test_the_tenant_list_holds_the_callers_tenants_page_by_page(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    ada = await persist(db, UserFactory())
    for slug in ("one", "two", "three"):
        world = await build_tenant(db, slug)
        await world.add_member(db, "ada", TenantRole.VIEWER, user=ada)
    await build_tenant(db, "not-adas", members={"bob": TenantRole.OWNER})

    first = (await client.get(TENANTS, params={"limit": 2}, headers=bearer(app, ada))).json()
    second = await client.get(
        TENANTS, params={"limit": 2, "cursor": first["next_cursor"]}, headers=bearer(app, ada)
    )

    assert [t["slug"] for t in first["items"]] == ["one", "two"]
    assert [(t["slug"], t["role"]) for t in second.json()["items"]] == [("three", "viewer")]
    assert second.json()["next_cursor"] is None


async def test_renaming_is_for_owners_and_admins_and_is_audited(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await build_tenant(
        db, "acme", members={"ada": TenantRole.ADMIN, "max": TenantRole.MEMBER}
    )

    renamed = await client.patch(
        acme.url, json={"name": "Acme Corp", "slug": "acme-corp"}, headers=acme.headers(app, "ada")
    )
    refused = await client.patch(acme.url, json={"name": "Mine"}, headers=acme.headers(app, "max"))

    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["slug"]) == ("Acme Corp", "acme-corp")
    assert refused.status_code == 403
    events = (await client.get(f"{acme.url}/audit-events", headers=acme.headers(app, "ada"))).json()
    assert events["items"][0]["action"] == "tenant.updated"
    assert events["items"][0]["data"] == {
        "name": {"from": "Acme", "to": "Acme Corp"},
        "slug": {"from": "acme", "to": "acme-corp"},
    }


@pytest.mark.parametrize("who", ["ada", "robot"], ids=["an admin", "an admin client"])
async def test_only_the_owner_deletes_a_tenant(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, who: str
) -> None:
    acme = await build_tenant(db, "acme", members={"ada": TenantRole.ADMIN})
    await acme.add_client(db, "robot", ClientRole.ADMIN)

    response = await client.delete(acme.url, headers=acme.headers(app, who))

    assert response.status_code == 403


async def test_strangers_get_404_for_a_tenant_that_exists_as_for_one_that_does_not(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await build_tenant(db, "acme", members={"ada": TenantRole.OWNER})
    stranger = await persist(db, UserFactory())

    existing = await client.get(acme.url, headers=bearer(app, stranger))
    missing = await client.get(f"{TENANTS}/{random_id()}", headers=bearer(app, stranger))

    assert existing.status_code == missing.status_code == 404
    assert existing.json()["detail"] == missing.json()["detail"]


async def test_a_suspended_tenant_answers_403_with_a_clear_detail(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await build_tenant(db, "acme", members={"ada": TenantRole.OWNER})
    await acme.add_project(db, "Launch", members={"ada": ProjectRole.OWNER})
    await acme.add_client(db, "robot", ClientRole.ADMIN)
    acme.tenant.status = TenantStatus.SUSPENDED
    await persist(db, acme.tenant)

    for who in ("ada", "robot"):
        for url in (acme.url, f"{acme.url}/members", acme.project_url("Launch")):
            response = await client.get(url, headers=acme.headers(app, who))
            assert response.status_code == 403, (who, url)
            assert "suspended" in response.json()["detail"]
    listed = await client.get(TENANTS, headers=acme.headers(app, "ada"))
    assert listed.json()["items"][0]["status"] == "suspended"


async def test_service_clients_cannot_create_or_list_tenants(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await build_tenant(db, "acme")
    await acme.add_client(db, "robot", ClientRole.ADMIN)
    headers = acme.headers(app, "robot")

    created = await client.post(TENANTS, json={"name": "X", "slug": "xx-x"}, headers=headers)
    listed = await client.get(TENANTS, headers=headers)

    assert (created.status_code, listed.status_code) == (403, 403)


async def test_the_admin_panels_suspension_locks_the_api_until_reactivated(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    acme = await build_tenant(db, "acme", members={"ada": TenantRole.OWNER})
    platform_admin = Actor(user_id=acme.users["ada"].id)

    async with app.state.database.session_factory() as session, session.begin():
        await service.set_tenant_status(session, acme.id, TenantStatus.SUSPENDED, platform_admin)
    suspended = await client.get(acme.url, headers=acme.headers(app, "ada"))
    async with app.state.database.session_factory() as session, session.begin():
        await service.set_tenant_status(session, acme.id, TenantStatus.ACTIVE, platform_admin)
    reactivated = await client.get(acme.url, headers=acme.headers(app, "ada"))

    assert (suspended.status_code, reactivated.status_code) == (403, 200)
    log = await client.get(f"{acme.url}/audit-events", headers=acme.headers(app, "ada"))
    assert [e["action"] for e in log.json()["items"]] == ["tenant.reactivated", "tenant.suspended"]
