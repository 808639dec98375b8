"""Sign-up (POST /api/v1/users) and email verification."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import utcnow
from backend.core.mail import finish_deliveries
from backend.core.secrets import hash_token
from backend.identity.models import OneTimePurpose, OneTimeToken, User
from tests.harness.smtp import Mailbox
from tests.identity.conftest import sign_in

SIGN_UP = "/api/v1/users"
STRONG = "plum tree under rain"


def _link_token(mailbox_text: str, path: str) -> str:
    match = re.search(rf"https://testserver{path}\?token=([A-Za-z0-9_\-]+)", mailbox_text)
    assert match, mailbox_text
    return match.group(1)


async def test_sign_up_creates_the_account_and_mails_a_verification_link(
    client: httpx.AsyncClient, db: AsyncSession, mailbox: Mailbox
) -> None:
    response = await client.post(
        SIGN_UP, json={"email": "Grace@Example.com", "password": STRONG, "full_name": "Grace"}
    )

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "grace@example.com"
    assert body["full_name"] == "Grace"
    assert body["email_verified_at"] is None
    assert "password" not in response.text
    stored = await db.scalar(select(User).where(User.email == "grace@example.com"))
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    [mail] = await mailbox.wait_for("grace@example.com")
    assert mail["Subject"] == "Confirm your email address"
    token = _link_token(Mailbox.text_of(mail), "/verify-email")
    assert token in Mailbox.html_of(mail)
    # Only the hash is kept.
    row = await db.scalar(select(OneTimeToken).where(OneTimeToken.user_id == stored.id))
    assert row.purpose is OneTimePurpose.EMAIL_VERIFICATION
    assert row.token_hash == hash_token(token)
    assert (await sign_in(client, "grace@example.com", STRONG)).status_code == 200


async def test_the_verification_link_verifies_once(
    client: httpx.AsyncClient, db: AsyncSession, mailbox: Mailbox
) -> None:
    await client.post(SIGN_UP, json={"email": "grace@example.com", "password": STRONG})
    [mail] = await mailbox.wait_for("grace@example.com")
    token = _link_token(Mailbox.text_of(mail), "/verify-email")

    first = await client.post("/api/v1/users/verify-email", json={"token": token})
    again = await client.post("/api/v1/users/verify-email", json={"token": token})

    assert first.status_code == 204
    assert again.status_code == 400
    assert again.headers["content-type"] == "application/problem+json"
    user = await db.scalar(select(User).where(User.email == "grace@example.com"))
    assert user.email_verified_at is not None


@pytest.mark.parametrize(
    ("token", "status"),
    [("", 422), ("not-a-token", 400), ("x" * 43, 400)],
    ids=["empty", "malformed", "unknown"],
)
async def test_unknown_verification_tokens_are_refused(
    client: httpx.AsyncClient, token: str, status: int
) -> None:
    response = await client.post("/api/v1/users/verify-email", json={"token": token})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_expired_verification_token_is_refused(
    client: httpx.AsyncClient, harness_db: AsyncSession, mailbox: Mailbox
) -> None:
    await client.post(SIGN_UP, json={"email": "grace@example.com", "password": STRONG})
    [mail] = await mailbox.wait_for("grace@example.com")
    token = _link_token(Mailbox.text_of(mail), "/verify-email")
    expired = utcnow() - timedelta(seconds=1)
    await harness_db.execute(update(OneTimeToken).values(expires_at=expired))
    await harness_db.commit()

    response = await client.post("/api/v1/users/verify-email", json={"token": token})

    assert response.status_code == 400


async def test_a_verification_token_cannot_reset_a_password(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    await client.post(SIGN_UP, json={"email": "grace@example.com", "password": STRONG})
    [mail] = await mailbox.wait_for("grace@example.com")
    token = _link_token(Mailbox.text_of(mail), "/verify-email")

    response = await client.post(
        "/api/v1/users/password-reset/confirm",
        json={"token": token, "new_password": "another fine password"},
    )

    assert response.status_code == 400
    assert (await sign_in(client, "grace@example.com", "another fine password")).status_code == 400


async def test_emails_are_unique_whatever_their_case(client: httpx.AsyncClient) -> None:
    first = await client.post(SIGN_UP, json={"email": "grace@example.com", "password": STRONG})
    second = await client.post(SIGN_UP, json={"email": " GRACE@example.COM", "password": STRONG})

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not an email", "password": STRONG}, "email"),
        ({"email": "grace@", "password": STRONG}, "email"),
        ({"email": "grace@example.com", "password": "short1!"}, "password"),
        ({"email": "grace@example.com", "password": "password123"}, "password"),
        ({"email": "grace@example.com", "password": "QwertyUiop"}, "password"),
        ({"email": "grace@example.com", "password": "abababababab"}, "password"),
        ({"email": "grace@example.com", "password": "x" * 1025}, "password"),
        ({"email": "grace@example.com"}, "password"),
        ({"email": "grace@example.com", "password": STRONG, "is_superuser": True}, "is_superuser"),
        ({"email": "grace@example.com", "password": STRONG, "full_name": "a\x00b"}, "full_name"),
        ({"email": "grace@example.com", "password": STRONG, "full_name": "x" * 201}, "full_name"),
    ],
)
async def test_invalid_sign_ups_are_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    response = await client.post(SIGN_UP, json=body)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["loc"] for error in response.json()["errors"]] == [["body", field]]


async def test_sign_up_can_be_switched_off(variant_client, mailbox: Mailbox) -> None:
    async with variant_client(allow_signup=False) as closed:
        response = await closed.post(
            SIGN_UP, json={"email": "grace@example.com", "password": STRONG}
        )

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    await finish_deliveries()
    assert mailbox.to("grace@example.com") == []
