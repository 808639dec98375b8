"""The acceptance page over HTTP (the browser tests drive it in Chromium): friendly errors, CSRF,
sign-in or new account, and a failed attempt that leaves everything as it was."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity.models import User
from backend.invitations.models import InvitationStatus
from tests.factories import DEFAULT_PASSWORD, UserFactory, persist
from tests.harness.smtp import Mailbox
from tests.invitations.helpers import invitation_row, invite, invite_to_project, mailed_token
from tests.world import TenantWorld

GRACE = "grace@example.com"
PASSWORD = "a long unguessable secret"
SAME_ORIGIN = {"Origin": "https://testserver"}
PAGE = "/invitations/accept"


def csrf_token_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the page has no CSRF field"
    return match.group(1)


async def open_page(client: httpx.AsyncClient, token: str) -> httpx.Response:
    page = await client.get(PAGE, params={"token": token})
    assert page.status_code == 200, page.text
    return page


async def new_account(
    client: httpx.AsyncClient, token: str, csrf: str, headers: dict[str, str] = SAME_ORIGIN, **form
) -> httpx.Response:
    data = {"token": token, "csrf_token": csrf, "full_name": "Grace", "password": PASSWORD, **form}
    return await client.post(f"{PAGE}/new-account", data=data, headers=headers)


@pytest.fixture
async def invited(app: FastAPI, client: httpx.AsyncClient, acme: TenantWorld, mailbox: Mailbox):
    """Grace, invited into Apollo as editor by pat: (invitation id, token)."""
    response = await invite_to_project(client, app, acme, "pat", GRACE, "editor")
    return response.json()["id"], await mailed_token(mailbox, GRACE)


async def test_the_page_shows_the_invitation_and_guards_its_forms(
    client: httpx.AsyncClient, acme: TenantWorld, invited: tuple[str, str]
) -> None:
    page = await open_page(client, invited[1])

    assert page.headers["content-type"].startswith("text/html")
    assert "Join Acme" in page.text
    assert "<strong>pat</strong> invited you" in page.text
    assert "acme Apollo" in page.text
    assert "as editor" in page.text
    assert GRACE in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "same-origin"
    cookie = page.headers["set-cookie"]
    for attribute in ("invitation_csrf=", "HttpOnly", "SameSite=strict", "Path=/invitations"):
        assert attribute in cookie
    assert "Secure" in cookie  # PUBLIC_BASE_URL is https here
    assert "<script" not in page.text


@pytest.mark.parametrize("token", ["", "garbage", "0" * 32 + "." + "a" * 43])
async def test_an_invalid_link_gets_a_friendly_page(client: httpx.AsyncClient, token: str) -> None:
    page = await client.get(PAGE, params={"token": token} if token else None)

    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "This invitation cannot be used" in page.text
    assert "not valid" in page.text


async def test_a_new_account_accepts_from_the_page(
    client: httpx.AsyncClient, db: AsyncSession, acme: TenantWorld, invited: tuple[str, str]
) -> None:
    page = await open_page(client, invited[1])

    done = await new_account(client, invited[1], csrf_token_of(page), full_name="Grace Hopper")

    assert done.status_code == 200, done.text
    assert "Invitation accepted" in done.text
    assert "member of Acme" in done.text
    assert "editor of the project acme Apollo" in done.text
    grace = await db.scalar(select(User).where(User.email == GRACE))
    assert grace is not None
    assert grace.full_name == "Grace Hopper"
    assert grace.email_verified_at is not None
    replay = await client.get(PAGE, params={"token": invited[1]})
    assert replay.status_code == 410
    assert "accepted already" in replay.text


@pytest.mark.parametrize(
    ("case", "headers", "steal_cookie"),
    [
        ("no cookie", SAME_ORIGIN, True),
        ("foreign origin", {"Origin": "https://evil.example"}, False),
        ("no origin nor referer", {}, False),
        ("null origin", {"Origin": "null"}, False),
    ],
)
async def test_forms_without_our_csrf_token_and_origin_are_refused(
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    invited: tuple[str, str],
    case: str,
    headers: dict[str, str],
    steal_cookie: bool,
) -> None:
    page = await open_page(client, invited[1])
    if steal_cookie:
        client.cookies.clear()

    refused = await new_account(client, invited[1], csrf_token_of(page), headers=headers)

    assert refused.status_code == 403, case
    assert "did not come from this site" in refused.text
    assert await db.scalar(select(User.id).where(User.email == GRACE)) is None
    row = await invitation_row(db, acme, invited[0])
    assert row.status is InvitationStatus.PENDING


async def test_a_token_from_another_page_view_or_tampered_is_refused(
    client: httpx.AsyncClient, invited: tuple[str, str]
) -> None:
    first = csrf_token_of(await open_page(client, invited[1]))
    await open_page(client, invited[1])  # a second view sets a new cookie

    assert (await new_account(client, invited[1], first)).status_code == 403
    tampered = csrf_token_of(await open_page(client, invited[1]))[:-2] + "xx"
    assert (await new_account(client, invited[1], tampered)).status_code == 403
    referer_only = {"Referer": f"https://testserver{PAGE}"}
    fresh = csrf_token_of(await open_page(client, invited[1]))
    assert (await new_account(client, invited[1], fresh, headers=referer_only)).status_code == 200


async def test_the_invitee_signs_in_on_the_page_and_a_wrong_password_is_said_so(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    mailbox: Mailbox,
) -> None:
    await persist(db, UserFactory(email=GRACE))
    created = await invite(client, app, acme, "olive", GRACE, "viewer")
    token = await mailed_token(mailbox, GRACE)

    def sign_in(page: httpx.Response, password: str):
        data = {"token": token, "csrf_token": csrf_token_of(page), "password": password}
        return client.post(f"{PAGE}/sign-in", data=data, headers=SAME_ORIGIN)

    wrong = await sign_in(await open_page(client, token), "not my password")
    assert wrong.status_code == 400
    assert "password is not correct" in wrong.text
    assert (await invitation_row(db, acme, created.json()["id"])).status is InvitationStatus.PENDING

    right = await sign_in(wrong, DEFAULT_PASSWORD)  # the error page carries a fresh form
    assert right.status_code == 200, right.text
    assert "You are now viewer of Acme" in right.text


async def test_a_late_failure_on_the_page_rolls_back_the_claim(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    acme: TenantWorld,
    mailbox: Mailbox,
) -> None:
    """Mia joins Apollo after being invited into it, then accepts from the page: the page answers
    normally (409 with the form), so the invitation it had claimed must be rolled back."""
    mia = acme.users["mia"]
    created = await invite_to_project(client, app, acme, "pat", mia.email, "viewer")
    token = await mailed_token(mailbox, mia.email)
    put = await client.put(
        f"{acme.project_url('Apollo')}/members/{mia.id}",
        json={"role": "editor"},
        headers=acme.headers(app, "pat"),
    )
    assert put.status_code == 201  # mia joins Apollo

    page = await open_page(client, token)
    data = {"token": token, "csrf_token": csrf_token_of(page), "password": DEFAULT_PASSWORD}
    refused = await client.post(f"{PAGE}/sign-in", data=data, headers=SAME_ORIGIN)

    assert refused.status_code == 409
    assert "member of this project already" in refused.text
    assert (await invitation_row(db, acme, created.json()["id"])).status is InvitationStatus.PENDING


async def test_the_new_account_form_explains_what_is_wrong(
    client: httpx.AsyncClient, db: AsyncSession, invited: tuple[str, str]
) -> None:
    page = await open_page(client, invited[1])

    weak = await new_account(client, invited[1], csrf_token_of(page), password="short")
    assert weak.status_code == 422
    assert "at least 10 characters" in weak.text
    assert 'value="Grace"' in weak.text  # what was typed is kept

    nameless = await new_account(client, invited[1], csrf_token_of(weak), full_name="  ")
    assert nameless.status_code == 422
    assert "Name:" in nameless.text

    await persist(db, UserFactory(email=GRACE))
    taken = await new_account(client, invited[1], csrf_token_of(nameless))
    assert taken.status_code == 409
    assert "sign in to accept instead" in taken.text
