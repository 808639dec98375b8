"""grant_type=client_credentials: confidential service clients acting for their tenant."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import utcnow
from backend.identity.dependencies import CurrentPrincipal
from backend.identity.models import ClientRole, OAuthClient
from tests.factories import OAuthClientFactory, persist
from tests.identity.conftest import TOKEN_URL, auth, create_service_client, tokens_for

CLIENT_CREDENTIALS = {"grant_type": "client_credentials"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


async def test_a_service_client_gets_a_tenant_token_with_http_basic(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    row, secret = await create_service_client(db, role=ClientRole.ADMIN)

    response = await client.post(
        TOKEN_URL, data=CLIENT_CREDENTIALS, headers=basic(row.client_id, secret)
    )

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert "refresh_token" not in body
    assert body["token_type"] == "Bearer"
    claims = app.state.key_ring.verify_access_token(body["access_token"])
    assert claims.tenant_id == row.owner_tenant_id
    assert claims.client_id == claims.subject == row.client_id
    assert claims.session_id is None


async def test_a_service_client_may_authenticate_in_the_form(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    row, secret = await create_service_client(db)

    response = await client.post(
        TOKEN_URL,
        data={**CLIENT_CREDENTIALS, "client_id": row.client_id, "client_secret": secret},
    )

    assert response.status_code == 200
    assert "refresh_token" not in response.json()


async def test_a_wrong_secret_is_invalid_client_with_a_basic_challenge(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    row, _secret = await create_service_client(db)

    response = await client.post(
        TOKEN_URL, data=CLIENT_CREDENTIALS, headers=basic(row.client_id, "not-the-secret")
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")
    form = await client.post(
        TOKEN_URL,
        data={**CLIENT_CREDENTIALS, "client_id": row.client_id, "client_secret": "nope"},
    )
    assert form.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("client_values", "status", "error"),
    [
        pytest.param({"revoked": True}, 401, "invalid_client", id="revoked: unknown"),
        pytest.param(
            {"grant_types": ["refresh_token"]}, 400, "unauthorized_client", id="without the grant"
        ),
        # Without a tenant and a role, the token would act for nobody.
        pytest.param(
            {"owner_tenant_id": None, "role": None}, 400, "unauthorized_client", id="of no tenant"
        ),
    ],
)
async def test_a_client_that_may_not_use_client_credentials_is_refused(
    client: httpx.AsyncClient,
    db: AsyncSession,
    client_values: dict[str, Any],
    status: int,
    error: str,
) -> None:
    row = await persist(db, OAuthClientFactory(service=True, secret="s3cret", **client_values))

    response = await client.post(
        TOKEN_URL, data=CLIENT_CREDENTIALS, headers=basic(row.client_id, "s3cret")
    )

    assert response.status_code == status
    assert response.json()["error"] == error


async def test_the_public_web_client_cannot_use_client_credentials(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(TOKEN_URL, data={**CLIENT_CREDENTIALS, "client_id": "web"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_service_clients_cannot_use_the_password_grant(
    client: httpx.AsyncClient, db: AsyncSession, user
) -> None:
    row, secret = await create_service_client(db)
    response = await client.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": user.email, "password": "whatever it is"},
        headers=basic(row.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


@pytest.fixture
def principal_route(app: FastAPI):
    """A route that reports who CurrentPrincipal says is calling."""

    async def whoami(principal: CurrentPrincipal) -> dict[str, str | None]:
        return {
            "user_id": str(principal.user_id) if principal.user_id else None,
            "client_id": principal.client.client_id if principal.client else None,
            "tenant_id": str(principal.client_tenant_id) if principal.client_tenant_id else None,
            "role": principal.client_role,
        }

    app.add_api_route("/__test__/whoami", whoami)
    yield "/__test__/whoami"
    app.router.routes.pop()


async def test_the_principal_is_the_service_client_until_it_is_revoked(
    client: httpx.AsyncClient, db: AsyncSession, principal_route: str
) -> None:
    row, secret = await create_service_client(db, role=ClientRole.VIEWER)
    token = (
        await client.post(TOKEN_URL, data=CLIENT_CREDENTIALS, headers=basic(row.client_id, secret))
    ).json()["access_token"]

    who = await client.get(principal_route, headers=auth(token))
    users_only = await client.get("/api/v1/users/me", headers=auth(token))
    await db.execute(
        update(OAuthClient)
        .where(OAuthClient.client_id == row.client_id)
        .values(revoked_at=utcnow())
    )
    await db.commit()
    after = await client.get(principal_route, headers=auth(token))

    assert who.json() == {
        "user_id": None,
        "client_id": row.client_id,
        "tenant_id": str(row.owner_tenant_id),
        "role": "viewer",
    }
    assert users_only.status_code == 403
    assert after.status_code == 401
    assert after.headers["www-authenticate"].startswith("Bearer")


async def test_the_principal_is_the_user_for_a_user_token(
    client: httpx.AsyncClient, user, principal_route: str
) -> None:
    tokens = await tokens_for(client, user)
    who = await client.get(principal_route, headers=auth(tokens["access_token"]))
    assert who.json()["user_id"] == str(user.id)
    assert who.json()["client_id"] is None


async def test_the_bootstrap_web_client_is_public(db: AsyncSession) -> None:
    web = await db.get(OAuthClient, "web")
    assert web is not None
    assert web.client_secret_hash is None
    assert web.owner_tenant_id is None
    assert set(web.grant_types) == {"password", "refresh_token"}
