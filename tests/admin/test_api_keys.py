"""Personal API keys in the panel: tenant owners and admins list and revoke their tenant's keys
only, platform admins every tenant's; each revocation goes through the service and is audited in
the key's tenant."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.scoping import AdminScope, bound_scope
from backend.core.errors import Forbidden
from backend.core.secrets import hash_token
from backend.identity.models import ApiKey
from tenants.isolation import enter_tenant
from tenants.roles import TenantRole
from tests.admin.conftest import AdminBrowser, AdminWorld
from tests.admin.test_actions import signed_in, tenant_events
from tests.cross_tenant import cross_tenant


async def _key(db: AsyncSession, headers: dict[str, str]) -> ApiKey:
    key_hash = hash_token(headers["Authorization"].removeprefix("Bearer "))
    async with cross_tenant(db, "test assertion"):
        statement = select(ApiKey).where(ApiKey.key_hash == key_hash)
        key = await db.scalar(statement.execution_options(populate_existing=True))
    assert key is not None
    return key


async def _keys(db: AsyncSession, world: AdminWorld) -> tuple[dict[str, str], dict[str, str]]:
    acme = await world.acme.add_api_key(db, "mia", TenantRole.MEMBER, name="Acme CI")
    globex = await world.globex.add_api_key(db, "gus", TenantRole.MEMBER, name="Globex CI")
    return acme, globex


async def test_a_tenant_admin_lists_and_revokes_their_tenants_keys_only(
    app: FastAPI,
    client: httpx.AsyncClient,
    browser_client: AdminBrowser,
    world: AdminWorld,
    db: AsyncSession,
) -> None:
    acme_headers, globex_headers = await _keys(db, world)
    acme_key, globex_key = await _key(db, acme_headers), await _key(db, globex_headers)
    olive = await signed_in(browser_client, "olive.acme@example.com")

    listed = await olive.get("/admin/api-key/list")
    assert listed.status_code == 200
    assert "Acme CI" in listed.text
    assert "Globex CI" not in listed.text
    assert acme_key.key_hash not in listed.text
    own = await olive.get(f"/admin/api-key/details/{acme_key.id}")
    assert own.status_code == 200
    assert "mia.acme@example.com" in own.text
    assert acme_key.key_hash not in own.text
    foreign = await olive.get(f"/admin/api-key/details/{globex_key.id}")
    assert foreign.status_code == 404

    # Another tenant's key: nothing happens.
    await olive.action("api-key", "revoke", str(globex_key.id))
    assert (await _key(db, globex_headers)).revoked_at is None
    assert (await client.get(f"{world.globex.url}/projects", headers=globex_headers)).is_success

    revoked = await olive.action("api-key", "revoke", str(acme_key.id))
    assert revoked.status_code == 302
    assert (await _key(db, acme_headers)).revoked_at is not None
    assert (await client.get(world.acme.url, headers=acme_headers)).status_code == 401
    [event] = [e for e in await tenant_events(db, world.acme.id) if e.action == "api_key.revoked"]
    assert event.actor_user_id == world.acme.users["olive"].id
    assert event.target_id == str(acme_key.id)


async def test_a_platform_admin_lists_and_revokes_every_tenants_keys(
    client: httpx.AsyncClient, browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    acme_headers, globex_headers = await _keys(db, world)
    globex_key = await _key(db, globex_headers)
    root = await signed_in(browser_client, "root@example.com")

    listed = await root.get("/admin/api-key/list")
    assert "Acme CI" in listed.text
    assert "Globex CI" in listed.text

    assert (await root.action("api-key", "revoke", str(globex_key.id))).status_code == 302
    assert (await client.get(world.globex.url, headers=globex_headers)).status_code == 401
    assert (await client.get(world.acme.url, headers=acme_headers)).status_code == 200
    [event] = [e for e in await tenant_events(db, world.globex.id) if e.action == "api_key.revoked"]
    assert event.actor_user_id == world.root.id


async def test_members_cannot_revoke_keys_even_past_the_panels_grants(
    app: FastAPI, world: AdminWorld, db: AsyncSession
) -> None:
    """The panel admits only owners and admins; the service refuses a member on its own."""
    acme_headers, _ = await _keys(db, world)
    key = await _key(db, acme_headers)
    mia = world.acme.users["mia"]
    scope = AdminScope(
        user_id=mia.id,
        email=mia.email,
        tenant_id=world.acme.id,
        tenant_name="Acme",
        role=TenantRole.MEMBER,
    )
    [view] = [v for v in app.state.admin.views if getattr(v, "identity", None) == "api-key"]
    async with app.state.database.session_factory() as session:
        await enter_tenant(session, world.acme.id)
        with bound_scope(scope):
            row = await view.fetch(session, str(key.id))
            with pytest.raises(Forbidden):
                await view.revoke_row(session, scope, row)
        await session.rollback()
