"""POST /oauth/revoke (RFC 7009) and POST /oauth/introspect (RFC 7662)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.secrets import new_token
from backend.identity.models import RefreshToken, RevokedAccessToken, User
from tests.factories import OAuthClientFactory, persist
from tests.identity.conftest import auth, create_service_client, refresh, tokens_for
from tests.identity.test_client_credentials import CLIENT_CREDENTIALS, basic

REVOKE = "/oauth/revoke"
INTROSPECT = "/oauth/introspect"


async def test_revoking_a_refresh_token_ends_its_session(
    client: httpx.AsyncClient, db: AsyncSession, user: User
) -> None:
    tokens = await tokens_for(client, user)
    other = await tokens_for(client, user)

    response = await client.post(
        REVOKE,
        data={
            "token": tokens["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": "web",
        },
    )

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert (await refresh(client, tokens["refresh_token"])).json()["error"] == "invalid_grant"
    me = await client.get("/api/v1/users/me", headers=auth(tokens["access_token"]))
    assert me.status_code == 401
    # Another session of the same user is untouched.
    assert (await refresh(client, other["refresh_token"])).status_code == 200


async def test_revoking_an_access_token_records_its_jti(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, user: User
) -> None:
    tokens = await tokens_for(client, user)
    jti = app.state.key_ring.verify_access_token(tokens["access_token"]).jwt_id

    # The hint is wrong on purpose: it is only a hint.
    first = await client.post(
        REVOKE,
        data={
            "token": tokens["access_token"],
            "token_type_hint": "refresh_token",
            "client_id": "web",
        },
    )
    again = await client.post(REVOKE, data={"token": tokens["access_token"], "client_id": "web"})

    assert first.status_code == again.status_code == 200
    assert await db.get(RevokedAccessToken, jti) is not None
    assert (
        await client.get("/api/v1/users/me", headers=auth(tokens["access_token"]))
    ).status_code == 401
    # The refresh token of the session still works: only that access token was revoked.
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200


@pytest.mark.parametrize("token", ["unknown", "a" * 43, "x.y.z"])
async def test_revoking_an_unknown_token_is_not_an_error(
    client: httpx.AsyncClient, token: str
) -> None:
    response = await client.post(REVOKE, data={"token": token, "client_id": "web"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"client_id": "web"}, 400, "invalid_request"),
        ({"token": "t"}, 401, "invalid_client"),
        ({"token": "t", "client_id": "nobody"}, 401, "invalid_client"),
    ],
)
async def test_malformed_revocations_get_rfc6749_errors(
    client: httpx.AsyncClient, form: dict[str, str], status: int, error: str
) -> None:
    response = await client.post(REVOKE, data=form)
    assert response.status_code == status
    assert response.json()["error"] == error


async def test_an_unknown_hint_is_ignored(client: httpx.AsyncClient, user: User) -> None:
    tokens = await tokens_for(client, user)
    response = await client.post(
        REVOKE,
        data={"token": tokens["refresh_token"], "token_type_hint": "id_token", "client_id": "web"},
    )
    assert response.status_code == 200
    assert (await refresh(client, tokens["refresh_token"])).status_code == 400


async def test_a_client_cannot_revoke_another_clients_token(
    client: httpx.AsyncClient, db: AsyncSession, user: User
) -> None:
    tokens = await tokens_for(client, user)
    row, secret = await create_service_client(db)

    response = await client.post(
        REVOKE, data={"token": tokens["refresh_token"]}, headers=basic(row.client_id, secret)
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200


async def _first_party_resource_server(db: AsyncSession) -> tuple[str, str]:
    secret = new_token()
    await persist(
        db,
        OAuthClientFactory(
            client_id="resource-server", secret=secret, name="Resource server", grant_types=[]
        ),
    )
    return "resource-server", secret


async def test_introspecting_a_live_access_token(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession, user: User
) -> None:
    tokens = await tokens_for(client, user)
    client_id, secret = await _first_party_resource_server(db)

    response = await client.post(
        INTROSPECT, data={"token": tokens["access_token"]}, headers=basic(client_id, secret)
    )

    assert response.status_code == 200
    body = response.json()
    claims = app.state.key_ring.verify_access_token(tokens["access_token"])
    assert body["active"] is True
    assert body["sub"] == str(user.id)
    assert body["client_id"] == "web"
    assert body["exp"] == claims.expires_at
    assert body["iss"] == app.state.settings.issuer
    assert body["token_type"] == "Bearer"


async def test_introspecting_refresh_tokens_live_and_spent(
    client: httpx.AsyncClient, db: AsyncSession, user: User
) -> None:
    tokens = await tokens_for(client, user)
    client_id, secret = await _first_party_resource_server(db)
    family = await db.scalar(select(RefreshToken.family_id).where(RefreshToken.user_id == user.id))

    live = await client.post(
        INTROSPECT,
        data={"token": tokens["refresh_token"], "client_id": client_id, "client_secret": secret},
    )
    await refresh(client, tokens["refresh_token"])
    spent = await client.post(
        INTROSPECT, data={"token": tokens["refresh_token"]}, headers=basic(client_id, secret)
    )

    assert live.json()["active"] is True
    assert live.json()["sub"] == str(user.id)
    assert live.json()["sid"] == str(family)
    assert spent.json() == {"active": False}


async def test_revoked_and_unknown_tokens_are_inactive(
    client: httpx.AsyncClient, db: AsyncSession, user: User
) -> None:
    tokens = await tokens_for(client, user)
    client_id, secret = await _first_party_resource_server(db)
    await client.post(REVOKE, data={"token": tokens["access_token"], "client_id": "web"})

    for token in (tokens["access_token"], "unknown-token"):
        response = await client.post(
            INTROSPECT, data={"token": token}, headers=basic(client_id, secret)
        )
        assert response.json() == {"active": False}


async def test_public_clients_cannot_introspect(client: httpx.AsyncClient, user: User) -> None:
    tokens = await tokens_for(client, user)
    response = await client.post(
        INTROSPECT, data={"token": tokens["access_token"], "client_id": "web"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_a_service_client_only_sees_its_own_tokens(
    client: httpx.AsyncClient, db: AsyncSession, user: User
) -> None:
    user_tokens = await tokens_for(client, user)
    row, secret = await create_service_client(db)
    own = (
        await client.post(
            "/oauth/token", data=CLIENT_CREDENTIALS, headers=basic(row.client_id, secret)
        )
    ).json()["access_token"]

    of_user = await client.post(
        INTROSPECT,
        data={"token": user_tokens["access_token"]},
        headers=basic(row.client_id, secret),
    )
    of_itself = await client.post(
        INTROSPECT, data={"token": own}, headers=basic(row.client_id, secret)
    )

    assert of_user.json() == {"active": False}
    assert of_itself.json()["active"] is True
    assert of_itself.json()["tid"] == str(row.owner_tenant_id)
