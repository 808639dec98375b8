"""CSRF: every state-changing admin request needs this session's token and the panel's origin;
anything else is 403 before SQLAdmin runs, and nothing changes."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.auth import SESSION_COOKIE
from backend.projects.models import Project
from tenants.models import Tenant, TenantStatus
from tests.admin.conftest import ORIGIN, AdminBrowser, AdminWorld
from tests.cross_tenant import cross_tenant
from tests.factories import DEFAULT_PASSWORD

EVIL = "http://127.0.0.1:9"


async def _signed_in(browser_client: AdminBrowser) -> str:
    await browser_client.login("root@example.com")
    return await browser_client.token()


async def _tenant(db: AsyncSession, world: AdminWorld) -> Tenant:
    """Acme as the database has it now."""
    statement = select(Tenant).where(Tenant.id == world.acme.id)
    return (await db.scalars(statement.execution_options(populate_existing=True))).one()


@pytest.mark.parametrize(
    ("token", "headers"),
    [
        (None, {"Origin": ORIGIN}),
        ("0" * 64, {"Origin": ORIGIN}),
        ("valid", {"Origin": EVIL}),
        ("valid", {}),
        ("valid", {"Referer": f"{EVIL}/attack.html"}),
    ],
    ids=["no token", "wrong token", "cross-origin", "no origin", "cross-origin referer"],
)
async def test_a_forged_login_is_refused_and_signs_no_one_in(
    browser_client: AdminBrowser, world: AdminWorld, token: str | None, headers: dict[str, str]
) -> None:
    data = {"username": "root@example.com", "password": DEFAULT_PASSWORD}
    if token is not None:
        data["csrf_token"] = await browser_client.token() if token == "valid" else token
    response = await browser_client.http.post("/admin/login", data=data, headers=headers)
    assert response.status_code == 403
    assert (await browser_client.get("/admin/")).status_code == 302


async def test_a_same_origin_referer_stands_in_for_a_missing_origin(
    browser_client: AdminBrowser, world: AdminWorld
) -> None:
    data = {
        "username": "root@example.com",
        "password": DEFAULT_PASSWORD,
        "csrf_token": await browser_client.token(),
    }
    headers = {"Referer": f"{ORIGIN}/admin/login"}
    response = await browser_client.http.post("/admin/login", data=data, headers=headers)
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("token", "origin"),
    [(None, ORIGIN), ("0" * 64, ORIGIN), ("valid", EVIL)],
    ids=["no token", "wrong token", "cross-origin"],
)
async def test_a_forged_edit_changes_nothing(
    browser_client: AdminBrowser,
    world: AdminWorld,
    db: AsyncSession,
    token: str | None,
    origin: str,
) -> None:
    valid = await _signed_in(browser_client)
    data = {"name": "Hacked", "slug": "hacked"}
    if token is not None:
        data["csrf_token"] = valid if token == "valid" else token
    response = await browser_client.http.post(
        f"/admin/tenant/edit/{world.acme.id}", data=data, headers={"Origin": origin}
    )
    assert response.status_code == 403
    assert (await _tenant(db, world)).name == "Acme"


async def test_a_forged_multipart_edit_changes_nothing(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    await _signed_in(browser_client)
    response = await browser_client.http.post(
        f"/admin/tenant/edit/{world.acme.id}",
        files={"name": (None, "Hacked"), "slug": (None, "hacked"), "csrf_token": (None, "x")},
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 403
    assert (await _tenant(db, world)).name == "Acme"


async def test_the_same_edit_with_token_and_origin_goes_through(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    await _signed_in(browser_client)
    response = await browser_client.post(
        f"/admin/tenant/edit/{world.acme.id}", {"name": "Acme Corp", "slug": "acme", "save": "Save"}
    )
    assert response.status_code == 302
    assert (await _tenant(db, world)).name == "Acme Corp"


async def test_a_multipart_form_with_the_token_goes_through(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    token = await _signed_in(browser_client)
    fields = {"name": "Acme Multi", "slug": "acme", "save": "Save", "csrf_token": token}
    response = await browser_client.http.post(
        f"/admin/tenant/edit/{world.acme.id}",
        files={key: (None, value) for key, value in fields.items()},
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 302
    assert (await _tenant(db, world)).name == "Acme Multi"


@pytest.mark.parametrize(
    ("token", "origin"),
    [(None, ORIGIN), ("0" * 64, ORIGIN), ("valid", EVIL)],
    ids=["no token", "wrong token", "cross-origin"],
)
async def test_a_forged_delete_deletes_nothing(
    browser_client: AdminBrowser,
    world: AdminWorld,
    db: AsyncSession,
    token: str | None,
    origin: str,
) -> None:
    valid = await _signed_in(browser_client)
    apollo = world.acme.projects["Apollo"]
    headers = {"Origin": origin}
    if token is not None:
        headers["X-CSRF-Token"] = valid if token == "valid" else token
    response = await browser_client.http.delete(
        "/admin/project/delete", params={"pks": world.pk(apollo)}, headers=headers
    )
    assert response.status_code == 403
    async with cross_tenant(db, "test assertion"):
        assert await db.scalar(select(Project.id).where(Project.id == apollo.id)) is not None


@pytest.mark.parametrize(
    ("token", "referer"),
    [(None, ORIGIN), ("0" * 64, ORIGIN), ("valid", EVIL), ("valid", None)],
    ids=["no token", "wrong token", "cross-origin", "no referer"],
)
async def test_a_forged_get_action_changes_nothing(
    browser_client: AdminBrowser,
    world: AdminWorld,
    db: AsyncSession,
    token: str | None,
    referer: str | None,
) -> None:
    valid = await _signed_in(browser_client)
    params = {"pks": str(world.acme.id)}
    if token is not None:
        params["csrf_token"] = valid if token == "valid" else token
    headers = {"Referer": f"{referer}/admin/tenant/list"} if referer else {}
    response = await browser_client.http.get(
        "/admin/tenant/action/suspend", params=params, headers=headers
    )
    assert response.status_code == 403
    assert (await _tenant(db, world)).status is TenantStatus.ACTIVE


async def test_another_sessions_token_is_worthless(
    browser_client: AdminBrowser, client: httpx.AsyncClient, world: AdminWorld, app, db
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as other_http:
        other = AdminBrowser(other_http)
        await other.login("root@example.com")
        foreign_token = await other.token()
    await _signed_in(browser_client)
    response = await browser_client.http.get(
        "/admin/tenant/action/suspend",
        params={"pks": str(world.acme.id), "csrf_token": foreign_token},
        headers={"Referer": f"{ORIGIN}/admin/tenant/list"},
    )
    assert response.status_code == 403
    assert (await _tenant(db, world)).status is TenantStatus.ACTIVE


async def test_signing_in_replaces_the_token(
    browser_client: AdminBrowser, world: AdminWorld
) -> None:
    before = await browser_client.token()
    await browser_client.login("root@example.com")
    after = await browser_client.token()
    assert before != after
    response = await browser_client.http.get(
        "/admin/logout", params={"csrf_token": before}, headers={"Referer": ORIGIN}
    )
    assert response.status_code == 403


async def test_logging_out_needs_the_token_too(
    browser_client: AdminBrowser, world: AdminWorld
) -> None:
    await _signed_in(browser_client)
    assert (await browser_client.http.get("/admin/logout")).status_code == 403
    assert (await browser_client.get("/admin/tenant/list")).status_code == 200
    token = await browser_client.token()
    out = await browser_client.http.get(
        "/admin/logout", params={"csrf_token": token}, headers={"Referer": ORIGIN}
    )
    assert out.status_code == 302
    assert SESSION_COOKIE in out.headers["set-cookie"]
    assert (await browser_client.get("/admin/tenant/list")).status_code == 302
