"""Authlib's own OAuth2 client (httpx) drives every grant against the app served by uvicorn."""

from __future__ import annotations

import time

import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.identity.models import ClientRole, User
from tests.factories import DEFAULT_PASSWORD
from tests.harness.live import LiveServer
from tests.identity.conftest import create_service_client


async def test_password_grant_then_refresh_then_replay_then_revoke(
    app: FastAPI, live_server: LiveServer, user: User
) -> None:
    token_url = f"{live_server.url}/oauth/token"
    async with AsyncOAuth2Client(
        client_id="web", token_endpoint_auth_method="none", token_endpoint=token_url
    ) as oauth:
        first = await oauth.fetch_token(token_url, username=user.email, password=DEFAULT_PASSWORD)
        me = await oauth.get(f"{live_server.url}/api/v1/users/me")
        assert me.status_code == 200
        assert me.json()["email"] == user.email

        # The library refreshes by itself once the access token is (about to be) expired.
        oauth.token["expires_at"] = int(time.time()) - 1
        me_again = await oauth.get(f"{live_server.url}/api/v1/users/me")
        assert me_again.status_code == 200
        second_refresh_token = oauth.token["refresh_token"]
        assert second_refresh_token != first["refresh_token"]

        with pytest.raises(OAuthError) as replay:
            await oauth.refresh_token(token_url, refresh_token=first["refresh_token"])
        assert replay.value.error == "invalid_grant"
        with pytest.raises(OAuthError) as family_dead:
            await oauth.refresh_token(token_url, refresh_token=second_refresh_token)
        assert family_dead.value.error == "invalid_grant"


async def test_revoking_through_the_library(
    app: FastAPI, live_server: LiveServer, user: User
) -> None:
    token_url = f"{live_server.url}/oauth/token"
    async with AsyncOAuth2Client(client_id="web", token_endpoint_auth_method="none") as oauth:
        token = await oauth.fetch_token(token_url, username=user.email, password=DEFAULT_PASSWORD)

        revoked = await oauth.revoke_token(
            f"{live_server.url}/oauth/revoke",
            token=token["refresh_token"],
            token_type_hint="refresh_token",
        )

        assert revoked.status_code == 200
        assert (await oauth.get(f"{live_server.url}/api/v1/users/me")).status_code == 401
        with pytest.raises(OAuthError):
            await oauth.refresh_token(token_url, refresh_token=token["refresh_token"])


async def test_a_wrong_password_is_invalid_grant_for_the_library(
    app: FastAPI, live_server: LiveServer, user: User
) -> None:
    async with AsyncOAuth2Client(client_id="web", token_endpoint_auth_method="none") as oauth:
        with pytest.raises(OAuthError) as error:
            await oauth.fetch_token(
                f"{live_server.url}/oauth/token", username=user.email, password="nope nope nope"
            )
    assert error.value.error == "invalid_grant"


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
async def test_client_credentials_through_the_library(
    app: FastAPI, live_server: LiveServer, db: AsyncSession, auth_method: str
) -> None:
    row, secret = await create_service_client(db, role=ClientRole.ADMIN)
    token_url = f"{live_server.url}/oauth/token"
    async with AsyncOAuth2Client(
        client_id=row.client_id,
        client_secret=secret,
        token_endpoint_auth_method=auth_method,
        token_endpoint=token_url,
        grant_type="client_credentials",
    ) as oauth:
        token = await oauth.fetch_token(token_url, grant_type="client_credentials")

        assert "refresh_token" not in token
        claims = live_server.app.state.key_ring.verify_access_token(token["access_token"])
        assert claims.tenant_id == row.owner_tenant_id
        # No refresh token: once expired, the library asks for a new one with its secret.
        oauth.token["expires_at"] = int(time.time()) - 1
        users_only = await oauth.get(f"{live_server.url}/api/v1/users/me")
        assert users_only.status_code == 403  # a service client, recognised, is not a user
        assert oauth.token["access_token"] != token["access_token"]
