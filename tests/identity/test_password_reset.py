"""Password reset: always 202, a single-use link by mail, and every session ended."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import utcnow
from backend.core.mail import finish_deliveries
from backend.core.secrets import hash_token
from backend.identity.models import OneTimePurpose, OneTimeToken, User
from tests.factories import DEFAULT_PASSWORD, UserFactory, persist
from tests.harness.smtp import Mailbox
from tests.identity.conftest import auth, refresh, sign_in, tokens_for

RESET = "/api/v1/users/password-reset"
CONFIRM = "/api/v1/users/password-reset/confirm"
NEW_PASSWORD = "violet kestrel at dawn"


async def _reset_token(client: httpx.AsyncClient, mailbox: Mailbox, email: str) -> str:
    response = await client.post(RESET, json={"email": email})
    assert response.status_code == 202
    [mail] = await mailbox.wait_for(email.lower())
    match = re.search(r"https://testserver/reset-password\?token=([\w-]+)", Mailbox.text_of(mail))
    assert match, Mailbox.text_of(mail)
    return match.group(1)


async def test_a_reset_link_is_mailed_when_the_account_exists(
    client: httpx.AsyncClient, db: AsyncSession, mailbox: Mailbox, user: User
) -> None:
    token = await _reset_token(client, mailbox, "ADA@example.com")

    [mail] = mailbox.to("ada@example.com")
    assert mail["Subject"] == "Reset your password"
    row = await db.scalar(select(OneTimeToken).where(OneTimeToken.user_id == user.id))
    assert row.purpose is OneTimePurpose.PASSWORD_RESET
    assert row.token_hash == hash_token(token)


async def test_an_unknown_email_gets_the_same_202_and_no_mail(
    client: httpx.AsyncClient, db: AsyncSession, mailbox: Mailbox, user: User
) -> None:
    known = await client.post(RESET, json={"email": user.email})
    unknown = await client.post(RESET, json={"email": "nobody@example.com"})
    await mailbox.wait_for(user.email)
    await asyncio.sleep(0.2)

    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    await finish_deliveries()
    assert mailbox.to("nobody@example.com") == []
    assert await db.scalar(select(OneTimeToken.id).where(OneTimeToken.user_id != user.id)) is None


async def test_a_deactivated_account_gets_no_reset_mail(
    client: httpx.AsyncClient, db: AsyncSession, mailbox: Mailbox
) -> None:
    await persist(db, UserFactory(email="gone@example.com", is_active=False))

    response = await client.post(RESET, json={"email": "gone@example.com"})
    await asyncio.sleep(0.2)

    assert response.status_code == 202
    await finish_deliveries()
    assert mailbox.to("gone@example.com") == []


async def test_confirming_sets_the_password_and_ends_every_session(
    client: httpx.AsyncClient, mailbox: Mailbox, user: User
) -> None:
    signed_in = await tokens_for(client, user)
    token = await _reset_token(client, mailbox, user.email)

    response = await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})

    assert response.status_code == 204
    assert (await sign_in(client, user.email, DEFAULT_PASSWORD)).status_code == 400
    assert (await sign_in(client, user.email, NEW_PASSWORD)).status_code == 200
    assert (await refresh(client, signed_in["refresh_token"])).json()["error"] == "invalid_grant"
    me = await client.get("/api/v1/users/me", headers=auth(signed_in["access_token"]))
    assert me.status_code == 401


async def test_a_reset_link_works_once_and_retires_the_others(
    client: httpx.AsyncClient, mailbox: Mailbox, user: User
) -> None:
    older = await _reset_token(client, mailbox, user.email)
    mailbox.clear()
    newer = await _reset_token(client, mailbox, user.email)

    first = await client.post(CONFIRM, json={"token": newer, "new_password": NEW_PASSWORD})
    again = await client.post(
        CONFIRM, json={"token": newer, "new_password": "another one entirely"}
    )
    stale = await client.post(
        CONFIRM, json={"token": older, "new_password": "another one entirely"}
    )

    assert first.status_code == 204
    assert again.status_code == stale.status_code == 400
    assert again.headers["content-type"] == "application/problem+json"
    assert (await sign_in(client, user.email, NEW_PASSWORD)).status_code == 200


async def test_an_expired_reset_link_is_refused(
    client: httpx.AsyncClient, harness_db: AsyncSession, mailbox: Mailbox, user: User
) -> None:
    token = await _reset_token(client, mailbox, user.email)
    expired = utcnow() - timedelta(seconds=1)
    await harness_db.execute(update(OneTimeToken).values(expires_at=expired))
    await harness_db.commit()

    response = await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})

    assert response.status_code == 400
    assert (await sign_in(client, user.email, DEFAULT_PASSWORD)).status_code == 200


async def test_a_weak_new_password_is_422_and_keeps_the_link_usable(
    client: httpx.AsyncClient, mailbox: Mailbox, user: User
) -> None:
    token = await _reset_token(client, mailbox, user.email)

    weak = await client.post(CONFIRM, json={"token": token, "new_password": "password123"})
    strong = await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})

    assert weak.status_code == 422
    assert weak.json()["errors"][0]["loc"] == ["body", "new_password"]
    assert strong.status_code == 204


async def test_resetting_verifies_the_email_address(
    client: httpx.AsyncClient, db: AsyncSession, mailbox: Mailbox
) -> None:
    unverified = await persist(db, UserFactory(email="new@example.com", email_verified_at=None))
    token = await _reset_token(client, mailbox, "new@example.com")

    await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})

    verified_at = await db.scalar(select(User.email_verified_at).where(User.id == unverified.id))
    assert verified_at is not None


async def test_an_invalid_email_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(RESET, json={"email": "not an email"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "email"]


async def test_reset_requests_are_throttled(variant_client, mailbox: Mailbox, user: User) -> None:
    async with variant_client(login_rate_limit="2/minute") as http:
        answers = [await http.post(RESET, json={"email": user.email}) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert answers[-1].headers["content-type"] == "application/problem+json"
    assert int(answers[-1].headers["retry-after"]) > 0
