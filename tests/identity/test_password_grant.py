"""POST /oauth/token with grant_type=password: the first-party `web` client signs users in."""

from __future__ import annotations

import base64
import statistics
import time

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.config import Environment, Settings
from backend.identity.models import RefreshToken, User
from backend.identity.passwords import OWASP_ARGON2ID, Passwords, password_hasher
from tests.factories import DEFAULT_PASSWORD, UserFactory, persist
from tests.identity.conftest import TOKEN_URL, auth, sign_in

WRONG = {"error": "invalid_grant", "error_description": "The email or password is not correct."}


async def test_a_user_signs_in_with_email_and_password(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, user: User
) -> None:
    response = await sign_in(client, "ADA@example.com")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == app.state.settings.access_token_ttl_seconds
    claims = app.state.key_ring.verify_access_token(body["access_token"])
    assert claims.subject == str(user.id)
    assert claims.client_id == "web"
    assert claims.tenant_id is None
    stored = await db.scalar(select(RefreshToken).where(RefreshToken.user_id == user.id))
    assert claims.session_id == str(stored.family_id)
    me = await client.get("/api/v1/users/me", headers=auth(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == "ada@example.com"


async def test_swagger_style_basic_auth_with_an_empty_secret_names_the_public_client(
    client: httpx.AsyncClient, user: User
) -> None:
    basic = base64.b64encode(b"web:").decode()
    response = await client.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": user.email, "password": DEFAULT_PASSWORD},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200, response.text


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    client: httpx.AsyncClient, user: User
) -> None:
    wrong_password = await sign_in(client, user.email, "not the password at all")
    unknown_email = await sign_in(client, "nobody@example.com", "not the password at all")

    assert wrong_password.status_code == unknown_email.status_code == 400
    assert wrong_password.json() == unknown_email.json() == WRONG
    assert wrong_password.headers["cache-control"] == "no-store"
    assert wrong_password.headers["content-type"] == "application/json"


async def test_a_deactivated_user_gets_the_same_answer_even_with_the_right_password(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await persist(db, UserFactory(email="gone@example.com", is_active=False))

    response = await sign_in(client, "gone@example.com")

    assert response.status_code == 400
    assert response.json() == WRONG


class CountingPasswords(Passwords):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.verified: list[bool] = []

    def verify_blocking(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        self.verified.append(password_hash is not None)
        return super().verify_blocking(password, password_hash)


async def test_an_unknown_email_still_costs_one_hash(
    app: FastAPI, client: httpx.AsyncClient, user: User
) -> None:
    counting = CountingPasswords(app.state.settings)
    original, app.state.passwords = app.state.passwords, counting
    try:
        await sign_in(client, "nobody@example.com", "whatever it is")
        await sign_in(client, user.email, "whatever it is")
    finally:
        app.state.passwords = original
    # One verification each: against the decoy hash, then against Ada's hash.
    assert counting.verified == [False, True]


async def test_unknown_email_and_wrong_password_take_a_similar_time(
    variant_client, db: AsyncSession
) -> None:
    """With production's argon2 parameters, both answers cost about one hash."""
    production_hash = password_hasher(Environment.PRODUCTION).hash(DEFAULT_PASSWORD)
    assert f"m={OWASP_ARGON2ID['memory_cost']}" in production_hash
    await persist(db, UserFactory(email="ada@example.com", password_hash=production_hash))

    async def timed(http: httpx.AsyncClient, email: str) -> float:
        started = time.perf_counter()
        response = await sign_in(http, email, "not the password at all")
        assert response.status_code == 400
        return time.perf_counter() - started

    async with variant_client(environment=Environment.PRODUCTION) as production:
        await timed(production, "warm@example.com")
        known, unknown = [], []
        # Interleaved, so that load from elsewhere on the machine weighs on both alike.
        for _ in range(9):
            known.append(await timed(production, "ada@example.com"))
            unknown.append(await timed(production, "nobody@example.com"))

    ratio = statistics.median(known) / statistics.median(unknown)
    assert 0.5 < ratio < 2.0, (known, unknown)


async def test_a_hash_made_with_old_parameters_is_upgraded_on_sign_in(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    old_hash = password_hasher(Environment.PRODUCTION).hash(DEFAULT_PASSWORD)
    ada = await persist(db, UserFactory(email="ada@example.com", password_hash=old_hash))

    assert (await sign_in(client, "ada@example.com")).status_code == 200

    ada_id = ada.id
    db.expire_all()
    upgraded = await db.scalar(select(User.password_hash).where(User.id == ada_id))
    assert upgraded != old_hash
    assert "m=1024," in upgraded  # the test environment's parameters
    assert (await sign_in(client, "ada@example.com")).status_code == 200


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": "password", "password": "x", "client_id": "web"}, 400, "invalid_request"),
        (
            {"grant_type": "password", "username": "a@b.c", "client_id": "web"},
            400,
            "invalid_request",
        ),
        ({"username": "a@b.c", "password": "x", "client_id": "web"}, 400, "invalid_request"),
        (
            {"grant_type": "authorization_code", "code": "x", "client_id": "web"},
            400,
            "unsupported_grant_type",
        ),
        ({"grant_type": "password", "username": "a@b.c", "password": "x"}, 401, "invalid_client"),
        (
            {"grant_type": "password", "username": "a@b.c", "password": "x", "client_id": "nope"},
            401,
            "invalid_client",
        ),
        (
            {
                "grant_type": "password",
                "username": "a@b.c",
                "password": "x",
                "client_id": "web",
                "client_secret": "guess",
            },
            401,
            "invalid_client",
        ),
    ],
)
async def test_malformed_token_requests_get_rfc6749_errors(
    client: httpx.AsyncClient, form: dict[str, str], status: int, error: str
) -> None:
    response = await client.post(TOKEN_URL, data=form)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == error
    assert response.json()["error_description"]
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic ")


async def test_a_scope_is_refused_since_the_api_has_none(
    client: httpx.AsyncClient, user: User
) -> None:
    response = await sign_in(client, user.email, scope="admin")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_repeated_parameters_are_refused(client: httpx.AsyncClient, user: User) -> None:
    body = (
        f"grant_type=password&client_id=web&username={user.email}"
        f"&password=a&password={DEFAULT_PASSWORD.replace(' ', '+')}"
    )
    response = await client.post(
        TOKEN_URL, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_a_json_body_is_not_a_token_request(client: httpx.AsyncClient, user: User) -> None:
    response = await client.post(
        TOKEN_URL, json={"grant_type": "password", "username": user.email, "password": "x"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_sign_in_is_throttled_per_client_address(variant_client, user: User) -> None:
    async with variant_client(login_rate_limit="3/minute", client_address="10.0.0.1") as http:
        answers = [await sign_in(http, f"guess{n}@example.com", "x") for n in range(3)]
        throttled = await sign_in(http, user.email)

    assert [answer.status_code for answer in answers] == [400, 400, 400]
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert throttled.headers["cache-control"] == "no-store"
    assert throttled.json()["error"] == "temporarily_unavailable"


@pytest.mark.parametrize(
    ("environment", "base_url", "status", "error"),
    [
        (Environment.PRODUCTION, "http://api.example.com", 400, "insecure_transport"),
        (Environment.DEVELOPMENT, "http://devbox.lan:8000", 200, None),  # a local server
    ],
    ids=["production refuses", "development allows"],
)
async def test_plain_http(
    variant_client,
    user: User,
    environment: Environment,
    base_url: str,
    status: int,
    error: str | None,
) -> None:
    async with variant_client(environment=environment, base_url=base_url) as http:
        response = await sign_in(http, user.email)
    assert response.status_code == status
    assert response.json().get("error") == error


@pytest.mark.parametrize("field", ["username", "client_id", "password"])
async def test_a_nul_byte_is_invalid_request_not_a_server_error(
    client: httpx.AsyncClient, field: str
) -> None:
    form = {"grant_type": "password", "username": "a@b.c", "password": "x", "client_id": "web"}
    response = await client.post(TOKEN_URL, data={**form, field: "a\x00b"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
