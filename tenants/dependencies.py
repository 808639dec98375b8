"""Isolation layer 1: `TenantAccess` resolves the caller's standing in the path's tenant.

One query, built once at import, loads the principal (active user, or unrevoked service client)
together with its membership and the tenant. Not a member: 404, so that other tenants' ids
reveal nothing. A suspended tenant: 403. Then the session is scoped to the tenant for the rest
of the request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends
from sqlalchemy import Row, Select, bindparam
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import DbSession
from backend.core.errors import Forbidden, NotFound, Unauthorized
from backend.identity.dependencies import (
    CLIENT_PRINCIPAL,
    USER_PRINCIPAL,
    Principal,
    TokenClaims,
    principal_parameters,
    principal_statement,
)
from backend.identity.keys import AccessTokenClaims
from backend.identity.models import OAuthClient, User
from tenants.audit import Actor
from tenants.isolation import enter_tenant
from tenants.models import Membership, Tenant, TenantStatus
from tenants.roles import (
    CLIENT_PROJECT_ROLE,
    ProjectRole,
    TenantAction,
    TenantRole,
    effective_project_role,
    tenant_allows,
)

TENANT_NOT_FOUND = "No such tenant."
TENANT_SUSPENDED = "This tenant is suspended. Contact the platform administrators."


@dataclass(frozen=True)
class TenantAccessContext:
    tenant: Tenant
    principal: Principal
    role: TenantRole
    # What an AccessExtension added to the access query (a project and its membership role...).
    extra: tuple[Any, ...] = ()

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.tenant.id

    @property
    def actor(self) -> Actor:
        return Actor(
            user_id=self.principal.user_id,
            client_id=self.principal.client.client_id if self.principal.client else None,
        )

    def can(self, action: TenantAction) -> bool:
        return tenant_allows(self.role, action)

    def require(self, action: TenantAction) -> None:
        if not self.can(action):
            raise Forbidden(f"Your role ({self.role}) may not {action.value}.")

    @property
    def sees_all_projects(self) -> bool:
        """Tenant owners and admins see every project, and so does every service client."""
        return self.principal.is_service_client or self.can(TenantAction.SEE_ALL_PROJECTS)

    def project_role(self, membership_role: ProjectRole | None) -> ProjectRole | None:
        """The caller's effective role on a project, from their project membership (if any)."""
        if self.principal.is_service_client:
            return CLIENT_PROJECT_ROLE[self.role]
        return effective_project_role(self.role, membership_role)


class AccessExtension(Protocol):
    """Columns a route needs besides the access decision, fetched by the same single query.

    Both methods add the same number of columns; they arrive as `TenantAccessContext.extra`.
    The user statement selects `User`, `Membership.role` and `Tenant`; the client statement
    `OAuthClient` and `Tenant`. They run once, at import (`AccessQueries.extended`): a value
    that varies by request is a `bindparam`, passed to `resolve_tenant_access` in `parameters`.
    """

    def for_user(self, statement: Select[Any]) -> Select[Any]: ...

    def for_client(self, statement: Select[Any]) -> Select[Any]: ...


@dataclass(frozen=True)
class AccessQueries:
    """The access query for a user's token and for a service client's, built once."""

    user: Select[Any]
    client: Select[Any]

    def extended(self, extension: AccessExtension) -> AccessQueries:
        return AccessQueries(extension.for_user(self.user), extension.for_client(self.client))


TENANT_ACCESS = AccessQueries(
    user=USER_PRINCIPAL.add_columns(Membership.role, Tenant)
    .join(Membership, Membership.user_id == User.id)
    .join(Tenant, Tenant.id == Membership.tenant_id)
    .where(Membership.tenant_id == bindparam("access_tenant_id")),
    client=CLIENT_PRINCIPAL.add_columns(Tenant)
    .join(Tenant, Tenant.id == OAuthClient.owner_tenant_id)
    .where(OAuthClient.owner_tenant_id == bindparam("access_tenant_id")),
)


async def _one_or_refuse(
    session: AsyncSession, statement: Select[Any], values: dict[str, Any], claims: AccessTokenClaims
) -> Row[Any]:
    """The access row, or the right refusal. Only the failure path costs a second query: it
    tells a dead token (401) from a caller outside the tenant (404)."""
    row = (await session.execute(statement, values)).one_or_none()
    if row is not None:
        return row
    if await session.scalar(principal_statement(claims), values) is None:
        raise Unauthorized("The access token is no longer valid.")
    raise NotFound(TENANT_NOT_FOUND)


async def resolve_tenant_access(
    session: AsyncSession,
    claims: AccessTokenClaims,
    tenant_id: uuid.UUID,
    queries: AccessQueries = TENANT_ACCESS,
    parameters: dict[str, Any] | None = None,
) -> TenantAccessContext:
    """The caller's standing in `tenant_id`, by `queries` (which bind `parameters` too)."""
    # The context is set before the lookup: membership rows are only visible inside it (RLS).
    await enter_tenant(session, tenant_id)
    values = principal_parameters(claims) | {"access_tenant_id": tenant_id} | (parameters or {})
    if claims.tenant_id is None:
        user, role, tenant, *extra = await _one_or_refuse(session, queries.user, values, claims)
        principal = Principal(claims=claims, user=user)
    else:
        client, tenant, *extra = await _one_or_refuse(session, queries.client, values, claims)
        principal, role = Principal(claims=claims, client=client), TenantRole(client.role)
    if tenant.status is TenantStatus.SUSPENDED:
        raise Forbidden(TENANT_SUSPENDED)
    return TenantAccessContext(tenant, principal, role, tuple(extra))


async def _tenant_access(
    tenant_id: uuid.UUID, claims: TokenClaims, session: DbSession
) -> TenantAccessContext:
    return await resolve_tenant_access(session, claims, tenant_id)


TenantAccess = Annotated[TenantAccessContext, Depends(_tenant_access)]
