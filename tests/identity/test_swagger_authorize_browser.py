"""/docs in headless Chromium: the Authorize button's password flow, then "Try it out"."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect

from backend.identity.models import User
from tests.conftest import screenshot_path
from tests.factories import DEFAULT_PASSWORD
from tests.harness.live import LiveServer

pytestmark = pytest.mark.browser

ME_OPERATION = "#operations-users-me-read"


async def _authorize(page: Page, email: str, password: str) -> None:
    await page.click(".auth-wrapper .btn.authorize")
    dialog = page.locator(".modal-ux")
    await expect(dialog.locator("#client_id_password")).to_have_value("web")
    await dialog.locator("#oauth_username").fill(email)
    await dialog.locator("#oauth_password").fill(password)
    await dialog.locator(".auth-btn-wrapper .btn.authorize").click()


async def test_authorize_with_the_password_flow_then_try_users_me(
    app: FastAPI, live_server: LiveServer, page: Page, user: User
) -> None:
    token_requests = []
    page.on(
        "requestfinished",
        lambda request: token_requests.append(request) if "/oauth/token" in request.url else None,
    )
    await page.goto(f"{live_server.url}/docs")
    await page.wait_for_selector(".swagger-ui .info .title")

    await _authorize(page, user.email, DEFAULT_PASSWORD)

    dialog = page.locator(".modal-ux")
    await expect(dialog.get_by_role("heading", name="Authorized")).to_be_visible()
    await expect(dialog.get_by_role("button", name="Remove authorization")).to_be_visible()
    assert len(token_requests) == 1
    await dialog.get_by_role("button", name="Close").click()
    operation = page.locator(ME_OPERATION)
    await operation.locator(".opblock-summary").click()
    await operation.locator(".try-out__btn").click()
    await operation.locator(".execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status").first
    await expect(status).to_have_text("200")
    body = await operation.locator(".live-responses-table .microlight").first.inner_text()
    assert user.email in body
    await operation.screenshot(path=screenshot_path("swagger-authorized-users-me"))


async def test_a_wrong_password_is_shown_as_an_error_in_the_dialog(
    app: FastAPI, live_server: LiveServer, page: Page, user: User
) -> None:
    await page.goto(f"{live_server.url}/docs")
    await page.wait_for_selector(".swagger-ui .info .title")

    await _authorize(page, user.email, "not the password at all")

    errors = page.locator(".modal-ux .errors")
    await expect(errors).to_contain_text("invalid_grant")
    await page.screenshot(path=screenshot_path("swagger-wrong-password"))
