"""Isolation layer 1: a verified token's standing in a tenant, as a `TenantCaller`.

One query loads the principal (active user, or unrevoked service client) together with its
membership and the tenant. Not a member: 404, so that other tenants' ids reveal nothing. A
suspended tenant: 403. Then the session is scoped to the tenant for the rest of the request.
No FastAPI here: `tenants.dependencies` wraps it for the routes.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.errors import Forbidden, NotFound, Unauthorized
from backend.identity.keys import AccessTokenClaims
from backend.identity.models import OAuthClient, User
from backend.identity.principals import client_principal_statement, user_principal_statement
from tenants.caller import TenantCaller
from tenants.isolation import enter_tenant
from tenants.models import Membership, Tenant, TenantStatus
from tenants.roles import TenantRole

TENANT_NOT_FOUND = "No such tenant."
TENANT_SUSPENDED = "This tenant is suspended. Contact the platform administrators."


class AccessExtension(Protocol):
    """Columns a route needs besides the access decision, fetched by the same single query.

    Both methods add the same number of columns; they come back next to the caller. The user
    statement selects `User`, `Membership.role` and `Tenant`; the client statement
    `OAuthClient` and `Tenant`.
    """

    def for_user(self, statement: Select[Any]) -> Select[Any]: ...

    def for_client(self, statement: Select[Any]) -> Select[Any]: ...


async def _one_or_refuse(
    session: AsyncSession, statement: Select[Any], principal_alone: Select[Any]
) -> Row[Any]:
    """The access row, or the right refusal. Only the failure path costs a second query: it
    tells a dead token (401) from a caller outside the tenant (404)."""
    row = (await session.execute(statement)).one_or_none()
    if row is not None:
        return row
    if await session.scalar(principal_alone) is None:
        raise Unauthorized("The access token is no longer valid.")
    raise NotFound(TENANT_NOT_FOUND)


async def _user_access(
    session: AsyncSession,
    claims: AccessTokenClaims,
    tenant_id: uuid.UUID,
    extension: AccessExtension | None,
) -> tuple[TenantCaller, tuple[Any, ...]]:
    statement = (
        user_principal_statement(claims)
        .add_columns(Membership.role, Tenant)
        .join(Membership, Membership.user_id == User.id)
        .join(Tenant, Tenant.id == Membership.tenant_id)
        .where(Membership.tenant_id == tenant_id)
    )
    if extension is not None:
        statement = extension.for_user(statement)
    row = await _one_or_refuse(session, statement, user_principal_statement(claims))
    user, role, tenant, *extra = row
    return TenantCaller(tenant=tenant, role=role, user=user), tuple(extra)


async def _client_access(
    session: AsyncSession,
    claims: AccessTokenClaims,
    tenant_id: uuid.UUID,
    extension: AccessExtension | None,
) -> tuple[TenantCaller, tuple[Any, ...]]:
    statement = (
        client_principal_statement(claims)
        .add_columns(Tenant)
        .join(Tenant, Tenant.id == OAuthClient.owner_tenant_id)
        .where(OAuthClient.owner_tenant_id == tenant_id)
    )
    if extension is not None:
        statement = extension.for_client(statement)
    row = await _one_or_refuse(session, statement, client_principal_statement(claims))
    client, tenant, *extra = row
    return TenantCaller(tenant=tenant, role=TenantRole(client.role), client=client), tuple(extra)


async def resolve_tenant_access(
    session: AsyncSession,
    claims: AccessTokenClaims,
    tenant_id: uuid.UUID,
    extension: AccessExtension | None = None,
) -> tuple[TenantCaller, tuple[Any, ...]]:
    """The caller behind `claims` in `tenant_id`, and what `extension` added to the query."""
    # The context is set before the lookup: membership rows are only visible inside it (RLS).
    await enter_tenant(session, tenant_id)
    if claims.tenant_id is None:
        caller, extra = await _user_access(session, claims, tenant_id, extension)
    else:
        caller, extra = await _client_access(session, claims, tenant_id, extension)
    if caller.tenant.status is TenantStatus.SUSPENDED:
        raise Forbidden(TENANT_SUSPENDED)
    return caller, extra
