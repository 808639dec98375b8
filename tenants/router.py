"""HTTP routes of the tenants layer. Thin: parse, call the service, shape the answer.

Every route under `/api/v1/tenants/{tenant_id}/` takes `TenantAccess`, which answers 404 to
strangers and 403 for a suspended tenant (or one pending deletion) before the handler runs; the
service then checks the action against the matrix, which answers 403 for a too-weak role.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor
from backend.core.database import DbSession
from backend.core.dependencies import AppSettings
from backend.core.pagination import Page
from backend.core.request_params import (
    ETAG_HEADER,
    READ_RESPONSES,
    UPDATE_RESPONSES,
    WRITE_RESPONSES,
    IfMatch,
    IfNoneMatch,
    Pagination,
    tagged,
)
from backend.identity import service as identity_service
from backend.identity.dependencies import CurrentUser
from backend.identity.models import User
from backend.identity.schemas import UserRead, UserUpdate
from tenants import audit, clients, lifecycle, service
from tenants.dependencies import TenantAccess
from tenants.idempotent_routes import Idempotency, IdempotentRoute
from tenants.roles import TenantRole
from tenants.schemas import (
    AuditEventOut,
    MemberOut,
    MemberRoleUpdate,
    ServiceClientCreate,
    ServiceClientCreated,
    ServiceClientOut,
    TenantCreate,
    TenantDeletionScheduled,
    TenantOut,
    TenantUpdate,
    UserWithMemberships,
)

account_router = APIRouter(prefix="/api/v1/users", tags=["users"])
tenants_router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"], route_class=IdempotentRoute)


async def _with_memberships(session: AsyncSession, user: User) -> UserWithMemberships:
    memberships = await service.memberships_of_user(session, user.id)
    profile = UserRead.model_validate(user).model_dump()
    return UserWithMemberships(**profile, memberships=memberships)


@account_router.get("/me", response_model=UserWithMemberships)
async def read_me(user: CurrentUser, session: DbSession) -> UserWithMemberships:
    return await _with_memberships(session, user)


# Served here rather than in identity: the answer includes memberships, a tenants-layer concept.
@account_router.patch("/me", response_model=UserWithMemberships)
async def update_me(data: UserUpdate, user: CurrentUser, session: DbSession) -> UserWithMemberships:
    updated = await identity_service.update_profile(session, user, data)
    return await _with_memberships(session, updated)


@tenants_router.post("", status_code=status.HTTP_201_CREATED)
async def create_tenant(
    body: TenantCreate, user: CurrentUser, session: DbSession, idempotency: Idempotency
) -> TenantOut:
    """Create a tenant; the caller becomes its owner."""
    actor = Actor(user_id=user.id)
    tenant = await service.create_tenant(session, actor, body.name, body.slug, owner_id=user.id)
    return service.tenant_out(tenant, TenantRole.OWNER)


@tenants_router.get("")
async def list_my_tenants(
    user: CurrentUser, session: DbSession, page: Pagination
) -> Page[TenantOut]:
    """The caller's tenants, with the caller's role in each."""
    rows, cursor = await service.tenants_of_user(session, user.id, page)
    return Page(
        items=[service.tenant_out(tenant, role) for tenant, role in rows], next_cursor=cursor
    )


@tenants_router.get("/{tenant_id}", responses=READ_RESPONSES)
async def read_tenant(
    caller: TenantAccess, condition: IfNoneMatch, response: Response
) -> TenantOut:
    tenant = service.read_tenant(caller)
    tagged(response, condition, service.tenant_tag(tenant, caller.role))
    return service.tenant_out(tenant, caller.role)


@tenants_router.patch("/{tenant_id}", responses=UPDATE_RESPONSES)
async def update_tenant(
    body: TenantUpdate,
    caller: TenantAccess,
    session: DbSession,
    condition: IfMatch,
    response: Response,
) -> TenantOut:
    tenant = await service.update_tenant(
        session, caller, name=body.name, slug=body.slug, precondition=condition
    )
    response.headers["ETag"] = service.tenant_tag(tenant, caller.role)
    return service.tenant_out(tenant, caller.role)


@tenants_router.delete(
    "/{tenant_id}", status_code=status.HTTP_202_ACCEPTED, responses=WRITE_RESPONSES
)
async def delete_tenant(
    caller: TenantAccess, session: DbSession, condition: IfMatch, settings: AppSettings
) -> TenantDeletionScheduled:
    """Schedule the tenant's deletion (owners only): closed at once, and purged with every row
    it holds after `TENANT_DELETION_GRACE_DAYS`, unless its owner restores it before."""
    grace = timedelta(days=settings.tenant_deletion_grace_days)
    tenant = await lifecycle.delete_tenant(session, caller, grace=grace, precondition=condition)
    if tenant.purge_after is None:  # a bug: scheduling sets it
        raise RuntimeError("a tenant pending deletion has no purge time")
    return TenantDeletionScheduled(purge_after=tenant.purge_after)


@tenants_router.post("/{tenant_id}/restore", responses={200: {"headers": ETAG_HEADER}})
async def restore_tenant(caller: TenantAccess, session: DbSession, response: Response) -> TenantOut:
    """Cancel the tenant's deletion (owners only): it is active again."""
    tenant = await lifecycle.restore_tenant(session, caller)
    response.headers["ETag"] = service.tenant_tag(tenant, caller.role)
    return service.tenant_out(tenant, caller.role)


@tenants_router.get("/{tenant_id}/members")
async def list_members(
    caller: TenantAccess, session: DbSession, page: Pagination
) -> Page[MemberOut]:
    members, cursor = await service.list_members(session, caller, page)
    return Page(items=members, next_cursor=cursor)


@tenants_router.get("/{tenant_id}/members/{user_id}", responses=READ_RESPONSES)
async def read_member(
    user_id: uuid.UUID,
    caller: TenantAccess,
    session: DbSession,
    condition: IfNoneMatch,
    response: Response,
) -> MemberOut:
    member, tag = await service.read_member(session, caller, user_id)
    tagged(response, condition, tag)
    return member


@tenants_router.patch("/{tenant_id}/members/{user_id}", responses=UPDATE_RESPONSES)
async def change_member_role(
    user_id: uuid.UUID,
    body: MemberRoleUpdate,
    caller: TenantAccess,
    session: DbSession,
    condition: IfMatch,
    response: Response,
) -> MemberOut:
    """Change a member's role. Admins never touch owners nor grant owner; a tenant keeps an
    owner (409)."""
    member, tag = await service.change_member_role(
        session, caller, user_id, body.role, precondition=condition
    )
    response.headers["ETag"] = tag
    return member


@tenants_router.delete(
    "/{tenant_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=WRITE_RESPONSES,
)
async def remove_member(
    user_id: uuid.UUID, caller: TenantAccess, session: DbSession, condition: IfMatch
) -> None:
    """Remove a member, or leave the tenant with your own user id (not as its last owner)."""
    await service.remove_member(session, caller, user_id, precondition=condition)


@tenants_router.get("/{tenant_id}/audit-events")
async def list_audit_events(
    caller: TenantAccess, session: DbSession, page: Pagination
) -> Page[AuditEventOut]:
    """The tenant's audit log, newest first."""
    events, cursor = await audit.list_audit_events(session, caller, page)
    return Page(items=[AuditEventOut.model_validate(event) for event in events], next_cursor=cursor)


@tenants_router.post("/{tenant_id}/clients", status_code=status.HTTP_201_CREATED)
async def create_service_client(
    body: ServiceClientCreate, caller: TenantAccess, session: DbSession, idempotency: Idempotency
) -> ServiceClientCreated:
    """Create a service client (client_credentials) with a tenant role. The secret is shown
    here once, and never again."""
    client, secret = await clients.create_service_client(session, caller, body.name, body.role)
    return ServiceClientCreated(
        **ServiceClientOut.model_validate(client).model_dump(), client_secret=secret
    )


@tenants_router.get("/{tenant_id}/clients")
async def list_service_clients(
    caller: TenantAccess, session: DbSession, page: Pagination
) -> Page[ServiceClientOut]:
    found, cursor = await clients.list_service_clients(session, caller, page)
    return Page(
        items=[ServiceClientOut.model_validate(client) for client in found], next_cursor=cursor
    )


@tenants_router.delete("/{tenant_id}/clients/{client_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_service_client(
    client_id: Annotated[str, Path(max_length=64)], caller: TenantAccess, session: DbSession
) -> None:
    """Revoke a service client: its tokens stop working at once."""
    await clients.revoke_service_client(session, caller, client_id)
