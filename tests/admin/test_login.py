"""Signing in to the panel: the API's users and hashes, and a
session that holds ids only and is checked against the database on every request."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from admin.auth import REFUSED, SESSION_COOKIE
from backend.core.config import Environment
from backend.core.database import Database
from backend.identity.models import User
from backend.main import create_app
from tenants.isolation import enter_tenant
from tenants.models import Membership, Tenant, TenantStatus
from tenants.roles import TenantRole
from tests.admin.conftest import AdminBrowser, AdminWorld, csrf_in
from tests.factories import UserFactory, persist


async def test_a_superuser_gets_the_platform_view(
    browser_client: AdminBrowser, world: AdminWorld
) -> None:
    response = await browser_client.login("root@example.com")
    assert response.status_code == 302
    assert response.headers["location"].endswith("/admin/")
    index = await browser_client.get("/admin/")
    assert index.status_code == 200
    assert "Platform view: every tenant" in index.text
    assert "/admin/user/list" in index.text


async def test_a_tenant_owner_gets_their_tenant_view(
    browser_client: AdminBrowser, world: AdminWorld
) -> None:
    response = await browser_client.login("olive.acme@example.com")
    assert response.status_code == 302
    index = await browser_client.get("/admin/")
    assert "Tenant: Acme (owner)" in index.text
    assert "/admin/user/list" not in index.text  # users are the platform's
    assert 'data-sqladmin-menu-category="Identity"' not in index.text


@pytest.mark.parametrize(
    ("email", "password"),
    [("root@example.com", "wrong password"), ("nobody@example.com", "correct horse")],
)
async def test_a_wrong_password_or_unknown_email_is_the_same_refusal(
    browser_client: AdminBrowser, world: AdminWorld, email: str, password: str
) -> None:
    response = await browser_client.login(email, password)
    assert response.status_code == 400
    assert "Invalid credentials." in response.text
    assert (await browser_client.get("/admin/")).status_code == 302


@pytest.mark.parametrize("role", [TenantRole.MEMBER, TenantRole.VIEWER])
async def test_members_and_viewers_are_refused_with_the_reason(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession, role: TenantRole
) -> None:
    await world.acme.add_member(db, "val", role)
    response = await browser_client.login("val.acme@example.com")
    assert response.status_code == 403
    assert REFUSED in response.text.replace("&#39;", "'")
    assert (await browser_client.get("/admin/")).status_code == 302


async def test_a_deactivated_user_is_refused(
    browser_client: AdminBrowser, world: AdminWorld, owner_db: AsyncSession
) -> None:
    gone = UserFactory(email="gone@example.com", is_superuser=True, is_active=False)
    await persist(owner_db, gone)
    response = await browser_client.login("gone@example.com")
    assert response.status_code == 403
    assert "This account is deactivated." in response.text


async def test_the_owner_of_a_suspended_tenant_only_is_refused(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    await db.execute(
        update(Tenant).where(Tenant.id == world.globex.id).values(status=TenantStatus.SUSPENDED)
    )
    await db.commit()
    assert (await browser_client.login("gina.globex@example.com")).status_code == 403


def _cookie_header(response: httpx.Response) -> str:
    return next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith(SESSION_COOKIE)
    )


async def test_the_session_cookie_is_strict_http_only_and_scoped_to_admin(
    browser_client: AdminBrowser, world: AdminWorld
) -> None:
    cookie = _cookie_header(await browser_client.login("root@example.com")).lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/admin;" in cookie
    assert "secure" not in cookie  # ENVIRONMENT=test serves plain http too


async def test_the_session_cookie_is_secure_in_production(
    settings, database: Database, world: AdminWorld
) -> None:
    production = create_app(settings.model_copy(update={"environment": Environment.PRODUCTION}))
    production.state.database = database
    transport = httpx.ASGITransport(app=production)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        cookie = _cookie_header(await http.get("/admin/login")).lower()
    assert "secure" in cookie
    assert "samesite=strict" in cookie


async def test_the_session_holds_ids_only(browser_client: AdminBrowser, world: AdminWorld) -> None:
    import base64
    import json

    await browser_client.login("olive.acme@example.com")
    raw = browser_client.http.cookies[SESSION_COOKIE].split(".")[0]
    data = json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    assert set(data) == {"sid", "tid"}  # the session id and the chosen tenant
    assert data["tid"] == str(world.acme.id)


async def test_a_deactivated_user_is_out_on_the_next_request(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    await browser_client.login("root@example.com")
    assert (await browser_client.get("/admin/tenant/list")).status_code == 200
    await db.execute(update(User).where(User.id == world.root.id).values(is_active=False))
    await db.commit()
    response = await browser_client.get("/admin/tenant/list")
    assert response.status_code == 302
    assert response.headers["location"].endswith("/admin/login")


async def test_a_revoked_role_is_out_on_the_next_request(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    await browser_client.login("adam.acme@example.com")
    assert (await browser_client.get("/admin/project/list")).status_code == 200
    await enter_tenant(db, world.acme.id)
    await db.execute(
        update(Membership)
        .values(role=TenantRole.MEMBER)
        .where(Membership.user_id == world.acme.users["adam"].id)
    )
    await db.commit()
    response = await browser_client.get("/admin/project/list")
    assert response.status_code == 302
    assert response.headers["location"].endswith("/admin/tenant")
    refused = await browser_client.get("/admin/tenant")
    assert refused.status_code == 403
    assert "Your account is neither" in refused.text
    assert (await browser_client.get("/admin/project/list")).status_code == 302


async def test_logging_out_everywhere_ends_the_panel_session_too(
    browser_client: AdminBrowser, client: httpx.AsyncClient, app: FastAPI, world: AdminWorld
) -> None:
    from tests.auth import bearer

    await browser_client.login("olive.acme@example.com")
    olive = world.acme.users["olive"]
    revoked = await client.post("/api/v1/users/me/sessions/revoke", headers=bearer(app, olive))
    assert revoked.status_code == 204
    assert (await browser_client.get("/admin/project/list")).status_code == 302


async def test_an_admin_of_several_tenants_picks_one_and_can_switch(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    adam = world.acme.users["adam"]
    await world.globex.add_member(db, "adam", TenantRole.ADMIN, user=adam)
    response = await browser_client.login("adam.acme@example.com")
    assert response.headers["location"].endswith("/admin/tenant")
    assert (
        (await browser_client.get("/admin/project/list"))
        .headers["location"]
        .endswith("/admin/tenant")
    )
    picker = await browser_client.get("/admin/tenant")
    assert "Acme (admin)" in picker.text
    assert "Globex (admin)" in picker.text
    chosen = await browser_client.post("/admin/tenant", {"tenant_id": str(world.globex.id)})
    assert chosen.status_code == 302
    projects = await browser_client.get("/admin/project/list")
    assert "globex Zeus" in projects.text
    assert "acme Apollo" not in projects.text
    await browser_client.post("/admin/tenant", {"tenant_id": str(world.acme.id)})
    projects = await browser_client.get("/admin/project/list")
    assert "acme Apollo" in projects.text
    assert "globex Zeus" not in projects.text


async def test_the_picker_offers_only_the_users_own_tenants(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    await browser_client.login("olive.acme@example.com")
    refused = await browser_client.post("/admin/tenant", {"tenant_id": str(world.globex.id)})
    assert refused.status_code == 200
    assert "Pick one of your tenants." in refused.text
    assert "Tenant: Acme (owner)" in (await browser_client.get("/admin/")).text


async def test_every_page_carries_a_csrf_token(
    browser_client: AdminBrowser, world: AdminWorld
) -> None:
    assert csrf_in((await browser_client.get("/admin/login")).text)
    await browser_client.login("root@example.com")
    assert csrf_in((await browser_client.get("/admin/tenant/list")).text)
