"""Projects and project members. Services take the session and never commit.

Every function runs inside the session's tenant context (set by `TenantAccess`/`ProjectAccess`,
or by `tenants.service.add_member` on an invitation's acceptance); the ORM filter and RLS scope
each statement to it, so none of them names the tenant. Permission checks are the routes' job.
"""

from __future__ import annotations

import uuid

from sqlalchemy import and_, delete, null, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.errors import NotFound
from backend.core.pagination import PageRequest, page_of, paginate
from backend.identity.models import User
from backend.projects.models import Project, ProjectMember, Task
from backend.projects.schemas import ProjectMemberOut, ProjectOut
from tenants.audit import Actor, record_audit
from tenants.dependencies import TenantAccessContext
from tenants.models import Membership
from tenants.roles import ProjectRole
from tenants.service import MEMBER_NOT_FOUND, before_member_removed

PROJECT_MEMBER_NOT_FOUND = "No member of this project has this id."


def project_out(project: Project, role: ProjectRole) -> ProjectOut:
    return ProjectOut(
        id=project.id,
        name=project.name,
        description=project.description,
        created_by=project.created_by,
        created_at=project.created_at,
        updated_at=project.updated_at,
        role=role,
    )


def _role_on_visible_project(
    access: TenantAccessContext, membership_role: ProjectRole | None
) -> ProjectRole:
    role = access.project_role(membership_role)
    if role is None:  # a bug: callers pass only projects the caller created or may see
        raise RuntimeError("the caller has no role on a project they were shown")
    return role


async def create_project(
    session: AsyncSession, access: TenantAccessContext, name: str, description: str
) -> ProjectOut:
    """A new project; a user who creates one becomes its owner (a service client does not)."""
    creator = access.principal.user_id
    project = Project(id=uuid.uuid4(), name=name, description=description, created_by=creator)
    session.add(project)
    await session.flush()  # the project row first: the membership's foreign key points at it
    membership_role = None
    if creator is not None:
        membership_role = ProjectRole.OWNER
        session.add(ProjectMember(project_id=project.id, user_id=creator, role=membership_role))
    record_audit(session, access.actor, "project.created", "project", project.id, {"name": name})
    await session.flush()
    return project_out(project, _role_on_visible_project(access, membership_role))


async def list_projects(
    session: AsyncSession, access: TenantAccessContext, page: PageRequest
) -> tuple[list[ProjectOut], str | None]:
    """The projects the caller can see, with the caller's effective role on each."""
    if access.principal.is_service_client:
        statement = select(Project, null())
    else:
        on_membership = and_(
            ProjectMember.tenant_id == Project.tenant_id,
            ProjectMember.project_id == Project.id,
            ProjectMember.user_id == access.principal.user_id,
        )
        statement = select(Project, ProjectMember.role).outerjoin(ProjectMember, on_membership)
        if not access.sees_all_projects:
            statement = statement.where(ProjectMember.user_id.is_not(None))
    statement = paginate(statement, Project.created_at, Project.id, page)
    rows = (await session.execute(statement)).all()
    kept, cursor = page_of(rows, page, key=lambda row: (row[0].created_at, row[0].id))
    items = [project_out(project, _role_on_visible_project(access, role)) for project, role in kept]
    return items, cursor


async def update_project(
    session: AsyncSession, project: Project, *, name: str | None, description: str | None
) -> Project:
    if name is not None:
        project.name = name
    if description is not None:
        project.description = description
    await session.flush()
    return project


async def delete_project(session: AsyncSession, project: Project, actor: Actor) -> None:
    """Delete a project with its members, tasks and invitations (ON DELETE CASCADE)."""
    record_audit(session, actor, "project.deleted", "project", project.id, {"name": project.name})
    await session.execute(delete(Project).where(Project.id == project.id))


def _member_statement(project_id: uuid.UUID):
    return (
        select(
            ProjectMember.user_id,
            User.email,
            User.full_name,
            ProjectMember.role,
            ProjectMember.created_at,
        )
        .join(User, User.id == ProjectMember.user_id)
        .where(ProjectMember.project_id == project_id)
    )


async def list_project_members(
    session: AsyncSession, project_id: uuid.UUID, page: PageRequest
) -> tuple[list[ProjectMemberOut], str | None]:
    statement = paginate(
        _member_statement(project_id), ProjectMember.created_at, ProjectMember.user_id, page
    )
    rows, cursor = page_of(
        (await session.execute(statement)).all(), page, key=lambda r: (r.created_at, r.user_id)
    )
    return [ProjectMemberOut.model_validate(row, from_attributes=True) for row in rows], cursor


async def put_project_member(
    session: AsyncSession,
    project_id: uuid.UUID,
    user_id: uuid.UUID,
    role: ProjectRole,
    actor: Actor,
) -> bool:
    """Add a member of the tenant to the project with `role`, or change their role there.

    Returns True when the membership was created. See `set_project_member`.
    """
    _, created = await set_project_member(session, project_id, user_id, role, actor)
    return created


async def set_project_member(
    session: AsyncSession,
    project_id: uuid.UUID,
    user_id: uuid.UUID,
    role: ProjectRole,
    actor: Actor,
) -> tuple[ProjectMemberOut, bool]:
    """Add a member of the tenant to the project with `role`, or change their role there.

    Returns the member as the API shows it (built from the rows the write read, so that nothing
    is read back) and whether the membership was created. 404 when `user_id` is not a member of
    the tenant. `project_id` must be a project of the context tenant (ProjectAccess checks it;
    an invitation's foreign key keeps it so). A tenant viewer may hold any project role, but
    acts as a viewer (`effective_project_role`).
    """
    on_project = and_(
        ProjectMember.tenant_id == Membership.tenant_id,
        ProjectMember.user_id == Membership.user_id,
        ProjectMember.project_id == project_id,
    )
    statement = (
        select(User.email, User.full_name, ProjectMember)
        .select_from(Membership)
        .join(User, User.id == Membership.user_id)
        .outerjoin(ProjectMember, on_project)
        .where(Membership.user_id == user_id)
    )
    row = (await session.execute(statement)).first()
    if row is None:
        raise NotFound(MEMBER_NOT_FOUND)
    email, full_name, existing = row
    member = existing
    if existing is None:
        member = ProjectMember(project_id=project_id, user_id=user_id, role=role)
        session.add(member)
        data = {"project_id": str(project_id), "role": role.value}
        record_audit(session, actor, "project_member.added", "user", user_id, data)
    elif existing.role is not role:
        data = {
            "project_id": str(project_id),
            "role": {"from": existing.role.value, "to": role.value},
        }
        existing.role = role
        record_audit(session, actor, "project_member.role_changed", "user", user_id, data)
    await session.flush()  # a new member's created_at is set by the flush (a Python default)
    out = ProjectMemberOut(
        user_id=user_id,
        email=email,
        full_name=full_name,
        role=member.role,
        created_at=member.created_at,
    )
    return out, existing is None


async def remove_project_member(
    session: AsyncSession, project_id: uuid.UUID, user_id: uuid.UUID, actor: Actor
) -> None:
    """Remove someone from the project (or let them leave); their tasks there are unassigned."""
    membership = await session.scalar(
        select(ProjectMember).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
        )
    )
    if membership is None:
        raise NotFound(PROJECT_MEMBER_NOT_FOUND)
    role = membership.role
    await session.execute(
        update(Task)
        .where(Task.project_id == project_id, Task.assignee_id == user_id)
        .values(assignee_id=None)
    )
    await session.delete(membership)
    data = {"project_id": str(project_id), "role": role.value}
    action = "project_member.left" if actor.user_id == user_id else "project_member.removed"
    record_audit(session, actor, action, "user", user_id, data)
    await session.flush()


@before_member_removed
async def unassign_tasks_of_leaving_member(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Someone leaving the tenant leaves every project in it: unassign all their tasks."""
    await session.execute(update(Task).where(Task.assignee_id == user_id).values(assignee_id=None))
