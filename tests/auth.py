"""Acting as someone in a test: bearer headers minted with the app's own signing keys.

Tests of the token endpoint itself go through /oauth/token; every other test may use these.
"""

from __future__ import annotations

import uuid

from fastapi import FastAPI

from backend.identity.models import OAuthClient, User


def bearer(app: FastAPI, user: User) -> dict[str, str]:
    token = app.state.key_ring.issue_access_token(
        subject=str(user.id), client_id=app.state.settings.default_client_id
    )
    return {"Authorization": f"Bearer {token}"}


def client_bearer(app: FastAPI, client: OAuthClient) -> dict[str, str]:
    assert client.owner_tenant_id is not None, "service clients belong to a tenant"
    token = app.state.key_ring.issue_access_token(
        subject=client.client_id, client_id=client.client_id, tenant_id=client.owner_tenant_id
    )
    return {"Authorization": f"Bearer {token}"}


def random_id() -> str:
    return str(uuid.uuid4())
