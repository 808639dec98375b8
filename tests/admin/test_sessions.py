"""Admin panel sessions live in the database: signing out, a password change, "revoke
sessions" and deactivation end them, so a copy of the cookie is worthless afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.auth import SESSION_COOKIE
from backend.core.secrets import hash_token
from backend.identity.models import AdminSession
from tests.admin.conftest import ORIGIN, AdminBrowser, AdminWorld
from tests.auth import bearer
from tests.conftest import BASE_URL
from tests.factories import DEFAULT_PASSWORD


@asynccontextmanager
async def panel(app: FastAPI) -> AsyncIterator[AdminBrowser]:
    """A browser of its own, with its own cookie jar."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield AdminBrowser(http)


async def signed_in(browser: AdminBrowser, email: str) -> str:
    """Sign in and return the session cookie, as a thief would copy it."""
    assert (await browser.login(email)).status_code == 302
    assert (await browser.get("/admin/tenant/list")).status_code == 200
    return browser.http.cookies[SESSION_COOKIE]


async def replayed(app: FastAPI, cookie: str) -> httpx.Response:
    async with panel(app) as thief:
        thief.http.cookies.set(SESSION_COOKIE, cookie)
        return await thief.get("/admin/tenant/list")


def lands_on_login(response: httpx.Response) -> bool:
    return response.status_code == 302 and response.headers["location"].endswith("/admin/login")


async def log_out(browser: AdminBrowser) -> httpx.Response:
    """SQLAdmin's logout link: a GET carrying the CSRF token."""
    token = await browser.token()
    return await browser.http.get(
        "/admin/logout", params={"csrf_token": token}, headers={"Referer": ORIGIN}
    )


async def test_a_cookie_replayed_after_logout_lands_on_the_login_page(
    app: FastAPI, browser_client: AdminBrowser, world: AdminWorld
) -> None:
    cookie = await signed_in(browser_client, "root@example.com")
    assert (await replayed(app, cookie)).status_code == 200  # the copy works while signed in

    out = await log_out(browser_client)

    assert lands_on_login(out)
    assert lands_on_login(await replayed(app, cookie))


async def test_logging_out_ends_that_session_only(
    app: FastAPI, browser_client: AdminBrowser, world: AdminWorld
) -> None:
    async with panel(app) as laptop, panel(app) as phone:
        await signed_in(laptop, "root@example.com")
        await signed_in(phone, "root@example.com")
        await log_out(laptop)
        assert (await phone.get("/admin/tenant/list")).status_code == 200
        assert lands_on_login(await laptop.get("/admin/tenant/list"))


async def _change_password(app: FastAPI, client: httpx.AsyncClient, world: AdminWorld) -> None:
    body = {"current_password": DEFAULT_PASSWORD, "new_password": "a brand new passphrase"}
    headers = bearer(app, world.root)
    response = await client.post("/api/v1/users/me/password", json=body, headers=headers)
    assert response.status_code == 204


async def _log_out_everywhere(app: FastAPI, client: httpx.AsyncClient, world: AdminWorld) -> None:
    headers = bearer(app, world.root)
    response = await client.post("/api/v1/users/me/sessions/revoke", headers=headers)
    assert response.status_code == 204


Ending = Callable[[FastAPI, httpx.AsyncClient, AdminWorld], Awaitable[None]]


@pytest.mark.parametrize(
    "end", [_change_password, _log_out_everywhere], ids=["password change", "log out everywhere"]
)
async def test_account_changes_end_every_panel_session(
    app: FastAPI, client: httpx.AsyncClient, world: AdminWorld, end: Ending
) -> None:
    async with panel(app) as laptop, panel(app) as phone:
        cookies = [
            await signed_in(laptop, "root@example.com"),
            await signed_in(phone, "root@example.com"),
        ]
        await end(app, client, world)
        for cookie in cookies:
            assert lands_on_login(await replayed(app, cookie))


@pytest.mark.parametrize("action", ["revoke-sessions", "deactivate"])
async def test_admin_actions_end_every_panel_session_of_the_user(
    app: FastAPI, browser_client: AdminBrowser, world: AdminWorld, action: str
) -> None:
    """Reactivating afterwards does not bring the old sessions back."""
    olive = world.acme.users["olive"]
    async with panel(app) as olives:
        cookie = await signed_in(olives, olive.email)
    await signed_in(browser_client, "root@example.com")

    assert (await browser_client.action("user", action, str(olive.id))).status_code == 302
    await browser_client.action("user", "reactivate", str(olive.id))

    assert lands_on_login(await replayed(app, cookie))
    async with panel(app) as olives:  # she may sign in afresh
        await signed_in(olives, olive.email)


async def test_the_table_holds_a_hash_of_the_session_id(
    browser_client: AdminBrowser, world: AdminWorld, db: AsyncSession
) -> None:
    import base64
    import json

    await signed_in(browser_client, "root@example.com")
    raw = browser_client.http.cookies[SESSION_COOKIE].split(".")[0]
    session_id = json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4)))["sid"]
    [row] = (await db.scalars(select(AdminSession))).all()
    assert row.id_hash == hash_token(session_id)
    assert row.user_id == world.root.id
