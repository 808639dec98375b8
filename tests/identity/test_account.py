"""PATCH /users/me, changing the password, and logging out everywhere."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity.models import RefreshToken, User
from tests.auth import bearer
from tests.factories import DEFAULT_PASSWORD
from tests.identity.conftest import auth, refresh, sign_in, tokens_for

ME = "/api/v1/users/me"
CHANGE_PASSWORD = "/api/v1/users/me/password"
LOG_OUT_EVERYWHERE = "/api/v1/users/me/sessions/revoke"
NEW_PASSWORD = "violet kestrel at dawn"


async def test_a_user_renames_themself(
    client: httpx.AsyncClient, db: AsyncSession, user: User
) -> None:
    tokens = await tokens_for(client, user)

    response = await client.patch(
        ME, json={"full_name": "  Augusta Ada King  "}, headers=auth(tokens["access_token"])
    )

    assert response.status_code == 200
    assert response.json()["full_name"] == "Augusta Ada King"
    assert response.json()["email"] == "ada@example.com"
    me = await client.get(ME, headers=auth(tokens["access_token"]))
    assert me.json()["full_name"] == "Augusta Ada King"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "other@example.com"}, "email"),
        ({"is_superuser": True}, "is_superuser"),
        ({"full_name": "x" * 201}, "full_name"),
        ({"full_name": "line\nbreak"}, "full_name"),
    ],
)
async def test_only_the_name_can_be_patched(
    app: FastAPI, client: httpx.AsyncClient, user: User, body: dict[str, object], field: str
) -> None:
    response = await client.patch(ME, json=body, headers=bearer(app, user))
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", field]


async def test_patching_me_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.patch(ME, json={"full_name": "x"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_changing_the_password_ends_the_other_sessions_only(
    client: httpx.AsyncClient, user: User
) -> None:
    this_device = await tokens_for(client, user)
    other_device = await tokens_for(client, user)

    response = await client.post(
        CHANGE_PASSWORD,
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=auth(this_device["access_token"]),
    )

    assert response.status_code == 204
    assert (await client.get(ME, headers=auth(this_device["access_token"]))).status_code == 200
    assert (await refresh(client, this_device["refresh_token"])).status_code == 200
    assert (await client.get(ME, headers=auth(other_device["access_token"]))).status_code == 401
    assert (await refresh(client, other_device["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await sign_in(client, user.email, DEFAULT_PASSWORD)).status_code == 400
    assert (await sign_in(client, user.email, NEW_PASSWORD)).status_code == 200


async def test_a_wrong_current_password_changes_nothing(
    client: httpx.AsyncClient, user: User
) -> None:
    tokens = await tokens_for(client, user)

    response = await client.post(
        CHANGE_PASSWORD,
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
        headers=auth(tokens["access_token"]),
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["body", "current_password"]
    assert (await sign_in(client, user.email, DEFAULT_PASSWORD)).status_code == 200


@pytest.mark.parametrize("new_password", ["short", "1234567890", "qwertyuiop"])
async def test_a_weak_new_password_is_422(
    app: FastAPI, client: httpx.AsyncClient, user: User, new_password: str
) -> None:
    response = await client.post(
        CHANGE_PASSWORD,
        json={"current_password": DEFAULT_PASSWORD, "new_password": new_password},
        headers=bearer(app, user),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "new_password"]


async def test_guessing_the_current_password_is_throttled(variant_client, user: User) -> None:
    async with variant_client(login_rate_limit="2/minute") as http:
        headers = bearer(http._transport.app, user)  # type: ignore[attr-defined]
        body = {"current_password": "a wrong guess", "new_password": NEW_PASSWORD}
        answers = [await http.post(CHANGE_PASSWORD, json=body, headers=headers) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [400, 400, 429]
    assert int(answers[-1].headers["retry-after"]) > 0


async def test_logging_out_everywhere_ends_every_token_issued_so_far(
    client: httpx.AsyncClient, db: AsyncSession, user: User
) -> None:
    laptop = await tokens_for(client, user)
    phone = await tokens_for(client, user)

    response = await client.post(LOG_OUT_EVERYWHERE, headers=auth(laptop["access_token"]))

    assert response.status_code == 204
    for device in (laptop, phone):
        assert (await client.get(ME, headers=auth(device["access_token"]))).status_code == 401
        assert (await refresh(client, device["refresh_token"])).json()["error"] == "invalid_grant"
    rows = await db.scalars(select(RefreshToken).where(RefreshToken.user_id == user.id))
    assert all(row.revoked_at is not None for row in rows)


async def test_signing_in_right_after_logging_out_everywhere_works(
    client: httpx.AsyncClient, user: User
) -> None:
    """Tokens carry whole seconds: one issued in the same second as the cut-off must pass."""
    for _ in range(3):
        tokens = await tokens_for(client, user)
        await client.post(LOG_OUT_EVERYWHERE, headers=auth(tokens["access_token"]))

        fresh = await tokens_for(client, user)

        assert (await client.get(ME, headers=auth(tokens["access_token"]))).status_code == 401
        assert (await client.get(ME, headers=auth(fresh["access_token"]))).status_code == 200
        assert (await refresh(client, fresh["refresh_token"])).status_code == 200


async def test_a_service_client_has_no_account_to_manage(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    from tests.auth import client_bearer
    from tests.identity.conftest import create_service_client

    row, _secret = await create_service_client(db)
    app = client._transport.app  # type: ignore[attr-defined]
    response = await client.post(LOG_OUT_EVERYWHERE, headers=client_bearer(app, row))
    assert response.status_code == 403
