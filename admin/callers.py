"""The signed-in admin as the services' caller: the same `TenantCaller` the API builds from a
token, built here from the panel's session (`AdminScope`), so that every write of the panel goes
through the service that decides and audits it."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.base import AdminWriteRefused
from admin.scoping import AdminScope
from backend.core.errors import NotFound
from backend.identity.models import User
from backend.projects.access import ProjectCaller, project_caller
from tenants.caller import TenantCaller
from tenants.models import Tenant
from tenants.roles import TenantRole


async def tenant_caller(
    session: AsyncSession, scope: AdminScope, tenant_id: uuid.UUID
) -> TenantCaller:
    """The admin in `tenant_id`: a superuser acts as an owner; a tenant admin with the role the
    scope loaded for this request."""
    role = TenantRole.OWNER if scope.platform else scope.role
    if role is None or not (scope.platform or scope.tenant_id == tenant_id):
        raise AdminWriteRefused("This tenant is out of your reach.")
    # One round trip for both rows: a join on a constant, which is no cartesian product.
    statement = (
        select(Tenant, User).join(User, User.id == scope.user_id).where(Tenant.id == tenant_id)
    )
    row = (await session.execute(statement)).one_or_none()
    if row is None:
        raise AdminWriteRefused("No such tenant.")
    tenant, user = row
    return TenantCaller(tenant=tenant, role=role, user=user, platform=scope.platform)


async def admin_project_caller(
    session: AsyncSession, scope: AdminScope, tenant_id: uuid.UUID, project_id: uuid.UUID
) -> ProjectCaller:
    """The admin on a project of `tenant_id` (tenant owners and admins own every project)."""
    caller = await tenant_caller(session, scope, tenant_id)
    try:
        return await project_caller(session, caller, project_id)
    except NotFound as exc:
        if not scope.platform:
            raise
        # The platform's forms list every tenant's projects: one may be paired with another.
        raise AdminWriteRefused(
            "The panel refused this change: the project does not belong to the chosen tenant."
        ) from exc
