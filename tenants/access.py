"""Isolation layer 1: a verified token's standing in a tenant, as a `TenantCaller`.

One query, built once at import, loads the principal (active user, unrevoked service client, or
the user behind a valid API key of this tenant) together with its membership and the tenant. A
key acts with the lower of its role and the user's current one, so a demotion applies at once.
Not a member: 404, so that other tenants' ids reveal nothing. A suspended tenant, or one
pending deletion (except on the routes that `tenants.lifecycle` keeps open): 403. Then the
session is scoped to the tenant for the rest of the request.
No FastAPI here: `tenants.dependencies` wraps it for the routes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import bindparam
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.errors import Forbidden, NotFound, Unauthorized
from backend.core.statements import AnyRow, AnySelect
from backend.identity.api_keys import ApiKeyCredential, record_use
from backend.identity.models import ApiKey, OAuthClient, User
from backend.identity.principals import (
    CLIENT_PRINCIPAL,
    KEY_PRINCIPAL,
    USER_PRINCIPAL,
    Credentials,
    principal_parameters,
    principal_statement,
)
from tenants.caller import TenantCaller
from tenants.isolation import enter_tenant
from tenants.models import Membership, Tenant, TenantStatus
from tenants.roles import TenantRole, weaker_role

TENANT_NOT_FOUND = "No such tenant."
TENANT_SUSPENDED = "This tenant is suspended. Contact the platform administrators."
TENANT_PENDING_DELETION = (
    "This tenant is scheduled for deletion{when}. Until then its owner may restore it with "
    "POST /api/v1/tenants/{tenant_id}/restore, and export its data."
)


class AccessExtension(Protocol):
    """Columns a route needs besides the access decision, fetched by the same single query.

    Both methods add the same number of columns; they come back next to the caller. The user
    statement selects `User`, `Membership.role` and `Tenant` (the API key statement the same,
    then the key's columns, and takes `for_user` too); the client statement `OAuthClient` and
    `Tenant`. They run once, at import (`AccessQueries.extended`): a value
    that varies by request is a `bindparam`, passed to `resolve_tenant_access` in `parameters`.
    """

    def for_user(self, statement: AnySelect) -> AnySelect: ...

    def for_client(self, statement: AnySelect) -> AnySelect: ...


@dataclass(frozen=True)
class AccessQueries:
    """The access query for a user's token, a service client's and an API key, built once."""

    user: AnySelect
    client: AnySelect
    key: AnySelect

    def extended(self, extension: AccessExtension) -> AccessQueries:
        return AccessQueries(
            extension.for_user(self.user),
            extension.for_client(self.client),
            extension.for_user(self.key),
        )


def _member_in_tenant(principal: AnySelect) -> AnySelect:
    return (
        principal.add_columns(Membership.role, Tenant)
        .join(Membership, Membership.user_id == User.id)
        .join(Tenant, Tenant.id == Membership.tenant_id)
        .where(Membership.tenant_id == bindparam("access_tenant_id"))
    )


TENANT_ACCESS = AccessQueries(
    user=_member_in_tenant(USER_PRINCIPAL),
    client=CLIENT_PRINCIPAL.add_columns(Tenant)
    .join(Tenant, Tenant.id == OAuthClient.owner_tenant_id)
    .where(OAuthClient.owner_tenant_id == bindparam("access_tenant_id")),
    # A key of another tenant finds no row: 404, as for a stranger.
    key=_member_in_tenant(KEY_PRINCIPAL)
    .add_columns(ApiKey.id, ApiKey.role, ApiKey.last_used_at)
    .where(ApiKey.scope_tenant_id == bindparam("access_tenant_id")),
)


async def _one_or_refuse(
    session: AsyncSession, statement: AnySelect, values: dict[str, Any], claims: Credentials
) -> AnyRow:
    """The access row, or the right refusal. Only the failure path costs a second query: it
    tells a dead token (401) from a caller outside the tenant (404)."""
    row = (await session.execute(statement, values)).one_or_none()
    if row is not None:
        return row
    if await session.scalar(principal_statement(claims), values) is None:
        what = "API key" if isinstance(claims, ApiKeyCredential) else "access token"
        raise Unauthorized(f"The {what} is no longer valid.")
    raise NotFound(TENANT_NOT_FOUND)


async def _key_caller(
    session: AsyncSession, statement: AnySelect, values: dict[str, Any], claims: Credentials
) -> tuple[TenantCaller, list[Any]]:
    row = await _one_or_refuse(session, statement, values, claims)
    user, member_role, tenant, key_id, key_role, last_used_at, *extra = row
    await record_use(session, key_id, last_used_at, values["principal_now"])
    role = weaker_role(TenantRole(key_role), member_role)
    return TenantCaller(tenant=tenant, role=role, user=user, api_key_id=key_id), extra


async def resolve_tenant_access(
    session: AsyncSession,
    claims: Credentials,
    tenant_id: uuid.UUID,
    queries: AccessQueries = TENANT_ACCESS,
    parameters: dict[str, Any] | None = None,
    *,
    open_while_pending_deletion: bool = False,
) -> tuple[TenantCaller, tuple[Any, ...]]:
    """The caller behind `claims` in `tenant_id`, and what the extension of `queries` added to
    the query (whose own values are `parameters`). A tenant pending deletion is refused unless
    the route is `open_while_pending_deletion`."""
    # The context is set before the lookup: membership rows are only visible inside it (RLS).
    await enter_tenant(session, tenant_id)
    values = principal_parameters(claims) | {"access_tenant_id": tenant_id} | (parameters or {})
    if isinstance(claims, ApiKeyCredential):
        caller, extra = await _key_caller(session, queries.key, values, claims)
    elif claims.tenant_id is None:
        user, role, tenant, *extra = await _one_or_refuse(session, queries.user, values, claims)
        caller = TenantCaller(tenant=tenant, role=role, user=user)
    else:
        client, tenant, *extra = await _one_or_refuse(session, queries.client, values, claims)
        caller = TenantCaller(tenant=tenant, role=TenantRole(client.role), client=client)
    status = caller.tenant.status
    if status is TenantStatus.SUSPENDED:
        raise Forbidden(TENANT_SUSPENDED)
    if status is TenantStatus.PENDING_DELETION and not open_while_pending_deletion:
        raise Forbidden(pending_deletion_detail(caller.tenant))
    return caller, tuple(extra)


def pending_deletion_detail(tenant: Tenant) -> str:
    when = f" on {tenant.purge_after:%Y-%m-%d %H:%M} UTC" if tenant.purge_after else ""
    return TENANT_PENDING_DELETION.format(when=when, tenant_id=tenant.id)
