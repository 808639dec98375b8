"""Identity test helpers: signing in through /oauth/token, service clients, app variants."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from limits.aio.storage import MemoryStorage
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.rate_limit import Throttle
from backend.core.secrets import new_token
from backend.identity.models import ClientRole, OAuthClient, User
from backend.identity.passwords import Passwords
from backend.identity.sign_in_throttle import SignInThrottle
from tests.conftest import BASE_URL
from tests.factories import DEFAULT_PASSWORD, OAuthClientFactory, UserFactory, persist

TOKEN_URL = "/oauth/token"


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = DEFAULT_PASSWORD, **extra: str
) -> httpx.Response:
    form = {"grant_type": "password", "username": email, "password": password, "client_id": "web"}
    return await client.post(TOKEN_URL, data={**form, **extra})


async def tokens_for(client: httpx.AsyncClient, user: User) -> dict[str, Any]:
    response = await sign_in(client, user.email)
    assert response.status_code == 200, response.text
    return response.json()


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "web"}
    return await client.post(TOKEN_URL, data=form)


def auth(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


async def create_service_client(
    db: AsyncSession,
    *,
    role: ClientRole = ClientRole.MEMBER,
    grant_types: list[str] | None = None,
    tenant_id: uuid.UUID | None = None,
) -> tuple[OAuthClient, str]:
    """A confidential client as the tenant API creates it: (row, the secret shown once)."""
    secret = new_token()
    owner = {"owner_tenant_id": tenant_id} if tenant_id else {}
    row = OAuthClientFactory(
        service=True,
        client_id=f"svc-{uuid.uuid4().hex[:12]}",
        secret=secret,
        name="Build robot",
        grant_types=grant_types or ["client_credentials"],
        role=role,
        **owner,
    )
    await persist(db, row)
    return row, secret


@pytest.fixture
async def user(db: AsyncSession) -> User:
    return await persist(db, UserFactory(email="ada@example.com", full_name="Ada Lovelace"))


@asynccontextmanager
async def http_client(
    application: FastAPI, client_address: str = "127.0.0.1", base_url: str = BASE_URL
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on `application` whose requests come from `client_address`."""
    transport = httpx.ASGITransport(
        app=application, raise_app_exceptions=False, client=(client_address, 50000)
    )
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
        yield http


@pytest.fixture
def reconfigured(app: FastAPI):
    """`async with reconfigured(allow_signup=False):` changes the app's settings for a while.

    The one app is changed in place rather than a second one built: SQLAdmin keeps its session
    maker on the view classes, so a second app would re-wire the first one's admin panel.
    """

    @asynccontextmanager
    async def apply(**overrides: Any) -> AsyncIterator[FastAPI]:
        state = app.state
        saved = (state.settings, state.login_throttle, state.sign_in_throttle, state.passwords)
        state.settings = settings = state.settings.model_copy(update=overrides)
        if {"login_rate_limit", "login_account_failure_budget"} & set(overrides):
            state.login_throttle = Throttle(settings.login_rate_limit, MemoryStorage())
            state.sign_in_throttle = SignInThrottle(
                settings.login_rate_limit, settings.login_account_failure_budget, MemoryStorage()
            )
        if "environment" in overrides:
            state.passwords = Passwords(state.settings)
        try:
            yield app
        finally:
            state.settings, state.login_throttle, state.sign_in_throttle, state.passwords = saved

    return apply


@pytest.fixture
def variant_client(reconfigured):
    """`async with variant_client(allow_signup=False) as http:` on the reconfigured app."""

    @asynccontextmanager
    async def open_client(
        client_address: str = "127.0.0.1", base_url: str = BASE_URL, **overrides: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        async with (
            reconfigured(**overrides) as application,
            http_client(application, client_address, base_url) as http,
        ):
            yield http

    return open_client
