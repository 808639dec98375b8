"""The trash of a tenant: its deleted projects and tasks, until the purge removes them.

Services take the session and a caller, decide and audit here, and never commit. Deleted rows
are hidden from every read by the soft-delete filter (`backend.core.soft_delete`); the reads
here are the ones that opt out of it, with `INCLUDE_DELETED`.

Who sees what: tenant owners and admins (and admin service clients) the whole trash; a project
owner the entries of the projects they own; anyone else gets 403. A task deleted together with
its project is not an entry of its own: restoring the project brings it back.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, delete, exists, literal, select, true, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import Actor
from backend.core.errors import Forbidden
from backend.core.pagination import PageRequest, fetch_page
from backend.core.soft_delete import INCLUDE_DELETED
from backend.projects.models import Project, ProjectMember, Task
from backend.projects.schemas import TrashItem
from tenants.audit import record_audit
from tenants.caller import TenantCaller
from tenants.isolation import current_tenant_id
from tenants.roles import ProjectAction, ProjectRole, TenantAction, project_allows

TRASH_REFUSED = "Only tenant owners and admins, and project owners, see the trash."


def _owned_by(user_id: uuid.UUID | None) -> Any:
    """The ids of the projects `user_id` owns (their project membership's role)."""
    return select(ProjectMember.project_id).where(
        ProjectMember.user_id == user_id, ProjectMember.role == ProjectRole.OWNER
    )


async def _visible_entries(session: AsyncSession, caller: TenantCaller) -> ColumnElement[bool]:
    """Which projects' entries the caller sees (a criterion on a project id column's owner),
    or 403."""
    if caller.can(TenantAction.SEE_ALL_PROJECTS):
        return true()
    owner = project_allows(caller.project_role(ProjectRole.OWNER), ProjectAction.MANAGE)
    if caller.is_service_client or not owner:
        raise Forbidden(TRASH_REFUSED)
    owns_any = await session.scalar(select(exists(_owned_by(caller.user_id))))
    if not owns_any:
        raise Forbidden(TRASH_REFUSED)
    return Project.id.in_(_owned_by(caller.user_id))


def _entries(visible: ColumnElement[bool]) -> Any:
    """Deleted projects, and deleted tasks not deleted with their project, as one relation."""
    projects = select(
        literal("project").label("type"),
        Project.id.label("id"),
        Project.id.label("project_id"),
        Project.name.label("name"),
        Project.deleted_at.label("deleted_at"),
        Project.deleted_by.label("deleted_by"),
    ).where(Project.deleted_at.is_not(None), visible)
    with_its_project = and_(Project.deleted_at.is_not(None), Project.deleted_at == Task.deleted_at)
    tasks = (
        select(
            literal("task").label("type"),
            Task.id.label("id"),
            Task.project_id.label("project_id"),
            Task.title.label("name"),
            Task.deleted_at.label("deleted_at"),
            Task.deleted_by.label("deleted_by"),
        )
        .join(Project, and_(Project.tenant_id == Task.tenant_id, Project.id == Task.project_id))
        .where(Task.deleted_at.is_not(None), ~with_its_project, visible)
    )
    return union_all(projects, tasks).subquery("trash")


async def list_trash(
    session: AsyncSession, caller: TenantCaller, page: PageRequest, *, retention: timedelta
) -> tuple[list[TrashItem], str | None]:
    """A page of the trash, most recently deleted first; each entry says when the purge
    removes it (`retention` after its deletion)."""
    visible = await _visible_entries(session, caller)
    trash = _entries(visible)
    statement = select(trash).execution_options(**INCLUDE_DELETED)
    # The trash's columns stand in for a table's `created_at` and `id`.
    deleted_at, entry_id = cast(Any, trash.c.deleted_at), cast(Any, trash.c.id)
    rows, cursor = await fetch_page(
        session,
        statement,
        deleted_at,
        entry_id,
        page,
        newest_first=True,
        key=lambda row: (row.deleted_at, row.id),
    )
    items = [TrashItem(**row._mapping, purge_after=row.deleted_at + retention) for row in rows]
    return items, cursor


async def purge_trash(session: AsyncSession, before: datetime) -> tuple[int, int]:
    """Remove for good what the context tenant deleted before `before`: the projects (with
    their tasks, members and invitations, ON DELETE CASCADE) and the tasks. One audit event,
    by the system, names what went. Returns the numbers of projects and tasks purged."""
    tasks = (
        await session.execute(
            delete(Task)
            .where(Task.deleted_at < before)
            .returning(Task.id, Task.project_id, Task.title)
            .execution_options(**INCLUDE_DELETED)
        )
    ).all()
    projects = (
        await session.execute(
            delete(Project)
            .where(Project.deleted_at < before)
            .returning(Project.id, Project.name)
            .execution_options(**INCLUDE_DELETED)
        )
    ).all()
    if not (tasks or projects):
        return 0, 0
    purged_projects = {project.id for project in projects}
    data = {
        "before": before.isoformat(),
        "projects": [{"id": str(p.id), "name": p.name} for p in projects],
        # Tasks deleted on their own; those of a purged project went with it.
        "tasks": [
            {"id": str(t.id), "title": t.title}
            for t in tasks
            if t.project_id not in purged_projects
        ],
        "tasks_purged": len(tasks),
    }
    tenant_id = current_tenant_id(session)
    record_audit(session, Actor(), "trash.purged", "tenant", str(tenant_id), data)
    return len(projects), len(tasks)
