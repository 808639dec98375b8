"""`ProjectCaller`: a `TenantCaller` with its standing on one project, and the queries behind it.

The caller's project role comes from one join (`membership_of`), written once here and used by
the access query of the routes (`resolve_project_access`, one round trip with the tenant
access), by `project_caller` (a caller already in hand: the admin panel, invitations) and by the
project list. A project the caller cannot see answers 404, exactly like one that does not exist.
No FastAPI here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor
from backend.core.errors import Forbidden, NotFound
from backend.core.soft_delete import INCLUDE_DELETED
from backend.core.statements import AnySelect
from backend.identity.models import User
from backend.identity.principals import Credentials
from backend.projects.models import Project, ProjectMember
from tenants.access import TENANT_ACCESS, AccessQueries, resolve_tenant_access
from tenants.caller import TenantCaller
from tenants.models import Tenant
from tenants.roles import ProjectAction, ProjectRole, project_allows

PROJECT_NOT_FOUND = "No such project."


@dataclass(frozen=True)
class ProjectCaller:
    tenant: TenantCaller
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


def membership_of(user_id: Any) -> ColumnElement[bool]:
    """Join condition: the project membership of `user_id` (a value or a column) on `Project`."""
    return and_(
        ProjectMember.tenant_id == Project.tenant_id,
        ProjectMember.project_id == Project.id,
        ProjectMember.user_id == user_id,
    )


def _as_project_caller(
    caller: TenantCaller, project: Project | None, membership_role: ProjectRole | None
) -> ProjectCaller:
    role = caller.project_role(membership_role) if project is not None else None
    if project is None or role is None:
        raise NotFound(PROJECT_NOT_FOUND)
    return ProjectCaller(caller, project, role)


class _ProjectLookup:
    """Adds the project and the user's project role (NULL for clients) to the access query."""

    def _with_project(self, statement: AnySelect) -> AnySelect:
        on_project = and_(Project.tenant_id == Tenant.id, Project.id == bindparam("project_id"))
        return statement.add_columns(Project).outerjoin(Project, on_project)

    def for_user(self, statement: AnySelect) -> AnySelect:
        return (
            self._with_project(statement)
            .add_columns(ProjectMember.role)
            .outerjoin(ProjectMember, membership_of(User.id))
        )

    def for_client(self, statement: AnySelect) -> AnySelect:
        return self._with_project(statement).add_columns(null())


PROJECT_ACCESS = TENANT_ACCESS.extended(_ProjectLookup())


async def resolve_project_access(
    session: AsyncSession,
    claims: Credentials,
    tenant_id: uuid.UUID,
    project_id: uuid.UUID,
    queries: AccessQueries = PROJECT_ACCESS,
    parameters: dict[str, Any] | None = None,
) -> tuple[ProjectCaller, tuple[Any, ...]]:
    """The token's caller on the project, with the tenant access, in one query; and what an
    extension of `PROJECT_ACCESS` (`queries`, whose own values are `parameters`) added to it."""
    values = {"project_id": project_id} | (parameters or {})
    caller, (project, membership_role, *extra) = await resolve_tenant_access(
        session, claims, tenant_id, queries, values
    )
    return _as_project_caller(caller, project, membership_role), tuple(extra)


async def project_caller(
    session: AsyncSession, caller: TenantCaller, project_id: uuid.UUID, *, in_trash: bool = False
) -> ProjectCaller:
    """`caller` on the project `project_id` of their tenant; 404 when they may not see it.
    With `in_trash`, the project must be in the trash instead (to restore it)."""
    statement = (
        select(Project, ProjectMember.role)
        .outerjoin(ProjectMember, membership_of(caller.user_id))
        .where(Project.id == project_id)
    )
    options = {}
    if in_trash:
        statement = statement.where(Project.deleted_at.is_not(None))
        options = INCLUDE_DELETED
    row = (await session.execute(statement, execution_options=options)).one_or_none()
    project, membership_role = row if row is not None else (None, None)
    return _as_project_caller(caller, project, membership_role)
