"""The pages behind the mailed links: confirm an email, choose a new password."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity.models import User
from tests.conftest import screenshot_path
from tests.factories import DEFAULT_PASSWORD
from tests.harness.live import LiveServer
from tests.harness.smtp import Mailbox
from tests.identity.conftest import sign_in

NEW_PASSWORD = "violet kestrel at dawn"


def _link(mail_text: str) -> str:
    match = re.search(r"(https?://\S+\?token=[\w-]+)", mail_text)
    assert match, mail_text
    return match.group(1)


def _token(link: str) -> str:
    return link.split("token=", 1)[1]


async def _mailed_link(mailbox: Mailbox, email: str) -> str:
    [mail] = await mailbox.wait_for(email)
    return _link(Mailbox.text_of(mail))


def _assert_private_page(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_the_verification_page_confirms_the_address_once(
    client: httpx.AsyncClient, db: AsyncSession, mailbox: Mailbox
) -> None:
    await client.post(
        "/api/v1/users", json={"email": "grace@example.com", "password": NEW_PASSWORD}
    )
    link = await _mailed_link(mailbox, "grace@example.com")
    assert link.startswith("https://testserver/verify-email?token=")

    page = await client.get(link)
    confirmed = await client.post("/verify-email", data={"token": _token(link)})
    again = await client.get(link)

    assert page.status_code == 200
    _assert_private_page(page)
    assert 'action="/verify-email"' in page.text
    assert confirmed.status_code == 200
    assert "Email address confirmed" in confirmed.text
    assert again.status_code == 400
    assert "This link cannot be used" in again.text
    verified = await db.scalar(
        select(User.email_verified_at).where(User.email == "grace@example.com")
    )
    assert verified is not None


@pytest.mark.parametrize("path", ["/verify-email", "/reset-password"])
async def test_a_bad_link_shows_an_error_page(client: httpx.AsyncClient, path: str) -> None:
    for url in (path, f"{path}?token=forged"):
        response = await client.get(url)
        assert response.status_code == 400
        _assert_private_page(response)
        assert "This link cannot be used" in response.text
    posted = await client.post(
        path,
        data={"token": "forged", "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD},
    )
    assert posted.status_code == 400


async def test_the_reset_page_sets_a_new_password(
    client: httpx.AsyncClient, mailbox: Mailbox, user: User
) -> None:
    await client.post("/api/v1/users/password-reset", json={"email": user.email})
    link = await _mailed_link(mailbox, user.email)
    token = _token(link)

    form = await client.get(link)
    weak = await client.post(
        "/reset-password",
        data={"token": token, "new_password": "password123", "repeat_password": "password123"},
    )
    mismatch = await client.post(
        "/reset-password",
        data={"token": token, "new_password": NEW_PASSWORD, "repeat_password": "something else"},
    )
    saved = await client.post(
        "/reset-password",
        data={"token": token, "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD},
    )
    reused = await client.post(
        "/reset-password",
        data={"token": token, "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD},
    )

    assert form.status_code == 200
    _assert_private_page(form)
    assert 'name="new_password"' in form.text
    assert weak.status_code == mismatch.status_code == 422
    assert "most common" in weak.text
    assert "differ" in mismatch.text
    assert saved.status_code == 200
    assert "Password changed" in saved.text
    assert reused.status_code == 400
    assert (await sign_in(client, user.email, DEFAULT_PASSWORD)).status_code == 400
    assert (await sign_in(client, user.email, NEW_PASSWORD)).status_code == 200


@pytest.mark.browser
async def test_a_person_resets_their_password_from_the_mail_in_a_browser(
    app: FastAPI, live_server: LiveServer, page: Page, mailbox: Mailbox, user: User
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        await http.post("/api/v1/users/password-reset", json={"email": user.email})
        link = await _mailed_link(mailbox, user.email)
        assert link.startswith(f"{live_server.url}/reset-password?token=")

        await page.goto(link)
        await page.fill("#new_password", "short")
        await page.fill("#repeat_password", "short")
        await page.evaluate("document.querySelector('form').noValidate = true")
        await page.click("#save")
        await expect(page.locator("#error")).to_contain_text("at least 10 characters")
        await page.fill("#new_password", NEW_PASSWORD)
        await page.fill("#repeat_password", NEW_PASSWORD)
        await page.click("#save")
        await expect(page.locator("#message")).to_contain_text("every device has been signed out")
        await page.screenshot(path=screenshot_path("password-reset-done"))

        assert (await sign_in(http, user.email, NEW_PASSWORD)).status_code == 200
