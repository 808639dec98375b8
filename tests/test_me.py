"""GET /api/v1/users/me: who the caller is, and the tenants they belong to."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tenants.roles import TenantRole
from tests.auth import bearer
from tests.factories import MembershipFactory, TenantFactory, UserFactory, persist


async def test_me_lists_the_callers_memberships_in_every_tenant(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    ada, bob = UserFactory(email="ada@example.com"), UserFactory()
    acme, globex = TenantFactory(name="Acme"), TenantFactory(name="Globex")
    await persist(db, ada, bob, acme, globex)
    await persist(
        db,
        MembershipFactory(tenant_id=acme.id, user_id=ada.id, role=TenantRole.OWNER),
        MembershipFactory(tenant_id=globex.id, user_id=ada.id, role=TenantRole.VIEWER),
        MembershipFactory(tenant_id=globex.id, user_id=bob.id, role=TenantRole.ADMIN),
    )

    response = await client.get("/api/v1/users/me", headers=bearer(app, ada))

    assert response.status_code == 200
    body = response.json()
    assert body["email"] == "ada@example.com"
    assert "password_hash" not in body
    assert body["memberships"] == [
        {"tenant_id": str(acme.id), "tenant_name": "Acme", "role": "owner"},
        {"tenant_id": str(globex.id), "tenant_name": "Globex", "role": "viewer"},
    ]


async def test_me_needs_a_valid_bearer_token(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/users/me")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    garbage = await client.get("/api/v1/users/me", headers={"Authorization": "Bearer x.y.z"})
    assert garbage.status_code == 401
    assert garbage.headers["content-type"] == "application/problem+json"


async def test_patching_me_answers_with_memberships_too(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    ada, acme = UserFactory(full_name="Ada"), TenantFactory(name="Acme")
    await persist(db, ada, acme)
    await persist(db, MembershipFactory(tenant_id=acme.id, user_id=ada.id))

    response = await client.patch(
        "/api/v1/users/me", json={"full_name": "Ada Lovelace"}, headers=bearer(app, ada)
    )

    assert response.status_code == 200
    assert response.json()["full_name"] == "Ada Lovelace"
    assert [m["tenant_name"] for m in response.json()["memberships"]] == ["Acme"]
