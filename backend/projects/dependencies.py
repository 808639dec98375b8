"""`ProjectAccess`: the caller's standing in the path's tenant and project, in one query.

It extends the `TenantAccess` query (once, at import) with the project and the caller's project
membership, so that a project route costs one query for the whole access decision. A project
the caller cannot see answers 404, exactly like a project that does not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import Select, and_, bindparam, null
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.database import DbSession
from backend.core.errors import Forbidden, NotFound
from backend.identity.dependencies import TokenClaims
from backend.identity.keys import AccessTokenClaims
from backend.identity.models import User
from backend.projects.models import Project, ProjectMember
from tenants.audit import Actor
from tenants.dependencies import TENANT_ACCESS, TenantAccessContext, resolve_tenant_access
from tenants.models import Tenant
from tenants.roles import ProjectAction, ProjectRole, project_allows

PROJECT_NOT_FOUND = "No such project."


@dataclass(frozen=True)
class ProjectAccessContext:
    tenant: TenantAccessContext
    project: Project
    role: ProjectRole

    @property
    def actor(self) -> Actor:
        return self.tenant.actor

    def can(self, action: ProjectAction) -> bool:
        return project_allows(self.role, action)

    def require(self, action: ProjectAction) -> None:
        if not self.can(action):
            raise Forbidden(f"Your project role ({self.role}) may not {action.value}.")


class _ProjectLookup:
    """Adds the project and the user's project role (NULL for clients) to the access query."""

    def _with_project(self, statement: Select[Any]) -> Select[Any]:
        on_project = and_(Project.tenant_id == Tenant.id, Project.id == bindparam("project_id"))
        return statement.add_columns(Project).outerjoin(Project, on_project)

    def for_user(self, statement: Select[Any]) -> Select[Any]:
        on_membership = and_(
            ProjectMember.tenant_id == Project.tenant_id,
            ProjectMember.project_id == Project.id,
            ProjectMember.user_id == User.id,
        )
        return (
            self._with_project(statement)
            .add_columns(ProjectMember.role)
            .outerjoin(ProjectMember, on_membership)
        )

    def for_client(self, statement: Select[Any]) -> Select[Any]:
        return self._with_project(statement).add_columns(null())


PROJECT_ACCESS = TENANT_ACCESS.extended(_ProjectLookup())


async def resolve_project_access(
    session: AsyncSession, claims: AccessTokenClaims, tenant_id: uuid.UUID, project_id: uuid.UUID
) -> ProjectAccessContext:
    access = await resolve_tenant_access(
        session, claims, tenant_id, PROJECT_ACCESS, {"project_id": project_id}
    )
    project, membership_role = access.extra
    role = access.project_role(membership_role) if project is not None else None
    if role is None:
        raise NotFound(PROJECT_NOT_FOUND)
    return ProjectAccessContext(access, project, role)


async def _project_access(
    tenant_id: uuid.UUID, project_id: uuid.UUID, claims: TokenClaims, session: DbSession
) -> ProjectAccessContext:
    return await resolve_project_access(session, claims, tenant_id, project_id)


ProjectAccess = Annotated[ProjectAccessContext, Depends(_project_access)]
