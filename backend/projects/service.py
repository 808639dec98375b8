"""Projects and project members. Services take the session and never commit.

Every function runs inside the session's tenant context (set by `TenantAccess`/`ProjectAccess`,
by the admin panel, or by `tenants.service.add_member` on an invitation's acceptance); the ORM
filter and RLS scope each statement to it, so none of them names the tenant. Each function that
acts for a caller decides here whether the caller may (the project matrix of `tenants.roles`)
and records its audit event.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, null, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor, apply_changes
from backend.core.conditional import (
    ANY_VERSION,
    Preconditions,
    entity_tag,
    flush_at_version,
    flush_unique,
)
from backend.core.database import utcnow
from backend.core.errors import NotFound
from backend.core.pagination import PageRequest, fetch_page
from backend.core.statements import AnySelect
from backend.identity.models import User
from backend.projects.access import ProjectCaller, membership_of, project_caller
from backend.projects.models import Project, ProjectMember, Task
from backend.projects.schemas import ProjectData, ProjectMemberOut, ProjectOut
from tenants.audit import record_audit
from tenants.caller import TenantCaller
from tenants.models import Membership
from tenants.roles import ProjectAction, ProjectRole, TenantAction
from tenants.service import MEMBER_NOT_FOUND, before_member_removed, roles_changed

PROJECT_MEMBER_NOT_FOUND = "No member of this project has this id."
PROJECT_NAME_TAKEN = "Another project of this tenant has this name."


async def _flush_unique_name(
    session: AsyncSession, precondition: Preconditions = ANY_VERSION
) -> None:
    """Flush a project's name: unique in the tenant among the projects not in the trash (the
    projects table's one unique key)."""
    await flush_unique(session, PROJECT_NAME_TAKEN, precondition)


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


def project_data(project: Project) -> ProjectData:
    """The project as its webhook events show it."""
    return ProjectData.model_validate(project)


def project_tag(project: Project, role: ProjectRole) -> str:
    """The entity tag of the project as a caller with `role` on it is shown it."""
    return entity_tag(project.version, project_out(project, role))


def _role_on_visible_project(
    caller: TenantCaller, membership_role: ProjectRole | None
) -> ProjectRole:
    role = caller.project_role(membership_role)
    if role is None:  # a bug: callers pass only projects the caller created or may see
        raise RuntimeError("the caller has no role on a project they were shown")
    return role


async def create_project(
    session: AsyncSession, caller: TenantCaller, name: str, description: str
) -> ProjectCaller:
    """A new project; a member who creates one becomes its owner (a service client or a platform
    admin does not)."""
    caller.require(TenantAction.CREATE_PROJECT)
    creator = caller.user_id
    project = Project(id=uuid.uuid4(), name=name, description=description, created_by=creator)
    session.add(project)
    await _flush_unique_name(
        session
    )  # the project row first: the membership's foreign key points at it
    membership_role = None
    if creator is not None and not caller.platform:
        membership_role = ProjectRole.OWNER
        session.add(ProjectMember(project_id=project.id, user_id=creator, role=membership_role))
    await session.flush()
    data = {"name": name}
    event = project_data(project)
    record_audit(session, caller.actor, "project.created", "project", project.id, data, event=event)
    return ProjectCaller(caller, project, _role_on_visible_project(caller, membership_role))


async def list_projects(
    session: AsyncSession, caller: TenantCaller, page: PageRequest
) -> tuple[list[ProjectOut], str | None]:
    """The projects the caller can see, with the caller's effective role on each."""
    statement: AnySelect
    if caller.is_service_client:
        statement = select(Project, null())
    else:
        statement = select(Project, ProjectMember.role).outerjoin(
            ProjectMember, membership_of(caller.user_id)
        )
        if not caller.sees_all_projects:
            statement = statement.where(ProjectMember.user_id.is_not(None))
    rows, cursor = await fetch_page(
        session,
        statement,
        Project.created_at,
        Project.id,
        page,
        key=lambda row: (row[0].created_at, row[0].id),
    )
    items = [project_out(project, _role_on_visible_project(caller, role)) for project, role in rows]
    return items, cursor


def read_project(caller: ProjectCaller) -> ProjectOut:
    caller.require(ProjectAction.READ)
    return project_out(caller.project, caller.role)


async def update_project(
    session: AsyncSession,
    caller: ProjectCaller,
    *,
    name: str | None,
    description: str | None,
    precondition: Preconditions = ANY_VERSION,
) -> ProjectOut:
    """Change the fields given (project owners and editors)."""
    caller.require(ProjectAction.EDIT)
    project = caller.project
    precondition.require_match(project_tag(project, caller.role))
    sent = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
    changes = apply_changes(project, sent)
    if changes:
        await _flush_unique_name(session, precondition)  # sets updated_at, as the event shows
        event = project_data(project)
        record_audit(
            session, caller.actor, "project.updated", "project", project.id, changes, event=event
        )
    return project_out(project, caller.role)


async def delete_project(
    session: AsyncSession, caller: ProjectCaller, *, precondition: Preconditions = ANY_VERSION
) -> None:
    """Move a project to the trash with the tasks it holds, all with the same `deleted_at`, so
    that restoring it brings back exactly those. Its members and invitations stay, hidden with
    it; the purge removes them all (ON DELETE CASCADE)."""
    caller.require(ProjectAction.MANAGE)
    project = caller.project
    precondition.require_match(project_tag(project, caller.role))
    now, by = utcnow(), caller.tenant.user_id
    project.deleted_at, project.deleted_by = now, by
    await flush_at_version(session, precondition)  # the UPDATE names the version compared
    tasks = await session.execute(
        update(Task)
        .where(Task.project_id == project.id, Task.deleted_at.is_(None))
        .values(deleted_at=now, deleted_by=by, version=Task.version + 1)
    )
    data = {"name": project.name, "tasks": _count(tasks)}
    event = project_data(project)
    record_audit(session, caller.actor, "project.deleted", "project", project.id, data, event=event)


async def restore_project(
    session: AsyncSession, caller: TenantCaller, project_id: uuid.UUID
) -> ProjectCaller:
    """Bring a project back from the trash with the tasks deleted with it (project owners).
    404 when it is not in the trash (never deleted, purged, or not visible to the caller); 409
    when another project has taken its name meanwhile."""
    on_project = await project_caller(session, caller, project_id, in_trash=True)
    on_project.require(ProjectAction.MANAGE)
    project = on_project.project
    deleted_at = project.deleted_at
    project.deleted_at, project.deleted_by = None, None
    await _flush_unique_name(session)
    tasks = await session.execute(
        update(Task)
        .where(Task.project_id == project.id, Task.deleted_at == deleted_at)
        .values(deleted_at=None, deleted_by=None, version=Task.version + 1)
    )
    data = {"name": project.name, "tasks": _count(tasks)}
    record_audit(session, caller.actor, "project.restored", "project", project.id, data)
    return on_project


def _count(result: Any) -> int:
    rows: int = result.rowcount
    return rows


def _member_statement(project_id: uuid.UUID) -> AnySelect:
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
    session: AsyncSession, caller: ProjectCaller, page: PageRequest
) -> tuple[list[ProjectMemberOut], str | None]:
    caller.require(ProjectAction.READ)
    statement = _member_statement(caller.project.id)
    rows, cursor = await fetch_page(
        session, statement, ProjectMember.created_at, ProjectMember.user_id, page
    )
    return [ProjectMemberOut.model_validate(row, from_attributes=True) for row in rows], cursor


async def read_project_member(
    session: AsyncSession, caller: ProjectCaller, user_id: uuid.UUID
) -> tuple[ProjectMemberOut, str]:
    """One member of the project, with its entity tag."""
    caller.require(ProjectAction.READ)
    row = (await _member_rows(session, caller.project.id, user_id)).first()
    if row is None or row.ProjectMember is None:
        raise NotFound(PROJECT_MEMBER_NOT_FOUND)
    email, full_name, member = row
    out = _project_member_out(member, email, full_name)
    return out, entity_tag(member.version, out)


async def set_project_member(
    session: AsyncSession,
    caller: ProjectCaller,
    user_id: uuid.UUID,
    role: ProjectRole,
    *,
    precondition: Preconditions = ANY_VERSION,
) -> tuple[ProjectMemberOut, bool, str]:
    """Add a member of the tenant to the project with `role`, or change their role there
    (project owners). Returns the member, whether the membership was created, and its entity
    tag. Under `If-Match`, only an existing membership whose tag it names changes (412)."""
    caller.require(ProjectAction.MANAGE)
    return await _put_member(session, caller.project.id, user_id, role, caller.actor, precondition)


async def put_project_member(
    session: AsyncSession,
    project_id: uuid.UUID,
    user_id: uuid.UUID,
    role: ProjectRole,
    actor: Actor,
) -> bool:
    """`set_project_member` on an authority decided elsewhere (an accepted invitation): True
    when the membership was created."""
    _, created, _ = await _put_member(session, project_id, user_id, role, actor, ANY_VERSION)
    return created


async def _put_member(
    session: AsyncSession,
    project_id: uuid.UUID,
    user_id: uuid.UUID,
    role: ProjectRole,
    actor: Actor,
    precondition: Preconditions,
) -> tuple[ProjectMemberOut, bool, str]:
    """The member as the API shows it (built from the rows the write read, so that nothing is
    read back), whether the membership was created, and its entity tag.

    404 when `user_id` is not a member of the tenant. `project_id` must be a project of the
    context tenant (the caller's, or an invitation's: its foreign key keeps it so). A tenant
    viewer may hold any project role, but acts as a viewer (`effective_project_role`).
    """
    row = (await _member_rows(session, project_id, user_id)).first()
    if row is None:
        raise NotFound(MEMBER_NOT_FOUND)
    email, full_name, existing = row
    current_tag = None  # no current representation: If-Match fails (RFC 9110 13.1.1)
    if existing is not None:
        current_tag = entity_tag(existing.version, _project_member_out(existing, email, full_name))
    precondition.require_match(current_tag)
    # Only a project owner sends invitations into the project: losing that is losing rights.
    lost_ownership = (
        existing is not None
        and existing.role is ProjectRole.OWNER
        and role is not ProjectRole.OWNER
    )
    member = existing
    if existing is None:
        member = ProjectMember(project_id=project_id, user_id=user_id, role=role)
        session.add(member)
        data: dict[str, Any] = {"project_id": str(project_id), "role": role.value}
        record_audit(session, actor, "project_member.added", "user", user_id, data)
    elif existing.role is not role:
        data = {
            "project_id": str(project_id),
            "role": {"from": existing.role.value, "to": role.value},
        }
        existing.role = role
        record_audit(session, actor, "project_member.role_changed", "user", user_id, data)
    # A new member's created_at is set by the flush (a Python default).
    await flush_at_version(session, precondition)
    if lost_ownership:
        await roles_changed(session, actor, user_id)
    out = _project_member_out(member, email, full_name)
    return out, existing is None, entity_tag(member.version, out)


async def _member_rows(session: AsyncSession, project_id: uuid.UUID, user_id: uuid.UUID) -> Any:
    """The tenant member `user_id` (email, name) with their membership of the project, or
    None in its place; no row when they are not a member of the tenant."""
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
    return await session.execute(statement)


def _project_member_out(member: ProjectMember, email: str, full_name: str) -> ProjectMemberOut:
    return ProjectMemberOut(
        user_id=member.user_id,
        email=email,
        full_name=full_name,
        role=member.role,
        created_at=member.created_at,
    )


async def remove_project_member(
    session: AsyncSession,
    caller: ProjectCaller,
    user_id: uuid.UUID,
    *,
    precondition: Preconditions = ANY_VERSION,
) -> None:
    """Remove someone from the project (project owners), or let the caller leave it; their
    tasks there are unassigned. The ORM's DELETE names the version read (`Versioned`)."""
    leaving = caller.tenant.user_id == user_id
    if not leaving:
        caller.require(ProjectAction.MANAGE)
    project_id = caller.project.id
    row = (await _member_rows(session, project_id, user_id)).first()
    if row is None or row.ProjectMember is None:
        raise NotFound(PROJECT_MEMBER_NOT_FOUND)
    email, full_name, membership = row
    out = _project_member_out(membership, email, full_name)
    precondition.require_match(entity_tag(membership.version, out))
    role = membership.role
    await session.execute(
        update(Task)
        .where(Task.project_id == project_id, Task.assignee_id == user_id)
        .values(assignee_id=None, version=Task.version + 1)
    )
    await session.delete(membership)
    data = {"project_id": str(project_id), "role": role.value}
    action = "project_member.left" if leaving else "project_member.removed"
    record_audit(session, caller.actor, action, "user", user_id, data)
    await flush_at_version(session, precondition)
    await roles_changed(session, caller.actor, user_id)


@before_member_removed
async def unassign_tasks_of_leaving_member(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Someone leaving the tenant leaves every project in it: unassign all their tasks."""
    await session.execute(
        update(Task)
        .where(Task.assignee_id == user_id)
        .values(assignee_id=None, version=Task.version + 1)
    )
