"""The acceptance page in headless Chromium, reached from the link in the received mail."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import screenshot_path
from tests.factories import DEFAULT_PASSWORD, UserFactory, persist
from tests.harness.live import LiveServer
from tests.harness.smtp import Mailbox
from tests.invitations.helpers import invite, link_in
from tests.world import TenantWorld

pytestmark = pytest.mark.browser

GRACE = "grace@example.com"


async def test_an_existing_user_signs_in_and_accepts_in_chromium(
    app: FastAPI,
    db: AsyncSession,
    acme: TenantWorld,
    live_server: LiveServer,
    page: Page,
    mailbox: Mailbox,
) -> None:
    await persist(db, UserFactory(email=GRACE))
    async with httpx.AsyncClient(base_url=live_server.url) as api:
        invited = await invite(api, live_server.app, acme, "olive", GRACE, "admin")
    assert invited.status_code == 201, invited.text
    link = link_in((await mailbox.wait_for(GRACE))[0])
    assert link.startswith(f"{live_server.url}/invitations/accept?token=")

    await page.goto(link)
    await expect(page.locator("h1")).to_have_text("Join Acme")
    await expect(page.locator("#summary")).to_contain_text(
        "olive invited you to join Acme as admin"
    )
    await page.fill("#sign-in-password", "not my password")
    await page.click("text=Sign in and accept")
    await expect(page.locator("#error")).to_contain_text("password is not correct")
    await page.fill("#sign-in-password", DEFAULT_PASSWORD)
    await page.click("text=Sign in and accept")

    await expect(page.locator("#accepted")).to_contain_text("You are now admin of Acme")
    await page.screenshot(path=screenshot_path("invitation-signed-in"))
    await page.goto(link)
    await expect(page.locator("#error")).to_contain_text("accepted already")
    await page.screenshot(path=screenshot_path("invitation-used-link"))


async def test_a_form_posted_from_another_origin_is_refused_in_chromium(
    app: FastAPI,
    acme: TenantWorld,
    live_server: LiveServer,
    page: Page,
    mailbox: Mailbox,
) -> None:
    """The same page, served from `localhost` instead of PUBLIC_BASE_URL's `127.0.0.1`: another
    origin to the browser, so its POST carries the wrong Origin (and no SameSite cookie)."""
    async with httpx.AsyncClient(base_url=live_server.url) as api:
        await invite(api, live_server.app, acme, "olive", GRACE)
    link = link_in((await mailbox.wait_for(GRACE))[0])

    await page.goto(link.replace("://127.0.0.1:", "://localhost:"))
    await page.fill("#new-account-name", "Grace")
    await page.fill("#new-account-password", "a long unguessable secret")
    await page.click("text=Create my account and accept")

    await expect(page.locator("#error")).to_contain_text("did not come from this site")
