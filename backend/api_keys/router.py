"""HTTP routes of personal API keys, under the signed-in user (`/api/v1/users/me/api-keys`).

An API key itself is refused here (403, `CurrentUser`): keys do not make keys.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from backend.api_keys import service
from backend.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from backend.core.database import DbSession
from backend.core.pagination import Page
from backend.core.request_params import Pagination
from backend.identity.dependencies import CurrentUser, TokenClaims
from tenants.access import resolve_tenant_access
from tenants.idempotent_routes import Idempotency, IdempotentRoute
from tenants.roles import TenantRole

router = APIRouter(
    prefix="/api/v1/users/me/api-keys", tags=["api keys"], route_class=IdempotentRoute
)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_api_key(
    body: ApiKeyCreate,
    user: CurrentUser,
    claims: TokenClaims,
    session: DbSession,
    response: Response,
    idempotency: Idempotency,
) -> ApiKeyCreated:
    """Create a personal API key acting in one tenant of the caller's. The key is shown here
    once, and never again (a replay with the same `Idempotency-Key` answers it as null); a
    tenant the caller is not a member of is a 404."""
    # `user` refuses API keys and service clients (403) before the tenant is looked at.
    caller, _ = await resolve_tenant_access(session, claims, body.tenant_id)
    key, secret = await service.create_api_key(
        session, caller, name=body.name, role=body.role, expires_in_days=body.expires_in_days
    )
    response.headers["Cache-Control"] = "no-store"
    return ApiKeyCreated(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        key=secret,
        tenant_id=key.scope_tenant_id,
        role=TenantRole(key.role),
        expires_at=key.expires_at,
    )


@router.get("")
async def list_api_keys(user: CurrentUser, session: DbSession, page: Pagination) -> Page[ApiKeyOut]:
    """The caller's API keys that are not revoked (expired ones included), without secrets."""
    keys, cursor = await service.list_api_keys(session, user, page)
    return Page(items=[ApiKeyOut.model_validate(key) for key in keys], next_cursor=cursor)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(key_id: uuid.UUID, user: CurrentUser, session: DbSession) -> None:
    """Revoke one of the caller's API keys: it gets 401 from the next request on."""
    await service.revoke_api_key(session, user, key_id)
