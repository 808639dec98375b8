"""HTTP routes of projects, project members and tasks. Thin: access, matrix, service.

`ProjectAccess` has already answered 404 for a project the caller cannot see (and 404/403 for
the tenant); each handler checks its action against the project matrix (403 when too weak).
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from backend.core.database import DbSession
from backend.core.pagination import Page, Pagination
from backend.projects import service, tasks
from backend.projects.dependencies import ProjectAccess
from backend.projects.models import TaskStatus
from backend.projects.schemas import (
    ProjectCreate,
    ProjectMemberOut,
    ProjectMemberPut,
    ProjectOut,
    ProjectUpdate,
    TaskCreate,
    TaskOut,
    TaskUpdate,
)
from tenants.dependencies import TenantAccess
from tenants.roles import ProjectAction, TenantAction

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}/projects", tags=["projects"])


@router.post("", status_code=201)
async def create_project(
    body: ProjectCreate, access: TenantAccess, session: DbSession
) -> ProjectOut:
    """Create a project; a user who creates one becomes its owner."""
    access.require(TenantAction.CREATE_PROJECT)
    return await service.create_project(session, access, body.name, body.description)


@router.get("")
async def list_projects(
    access: TenantAccess, session: DbSession, page: Pagination
) -> Page[ProjectOut]:
    """Every project for tenant owners, admins and service clients; the caller's otherwise."""
    items, cursor = await service.list_projects(session, access, page)
    return Page(items=items, next_cursor=cursor)


@router.get("/{project_id}")
async def read_project(access: ProjectAccess) -> ProjectOut:
    access.require(ProjectAction.READ)
    return service.project_out(access.project, access.role)


@router.patch("/{project_id}")
async def update_project(
    body: ProjectUpdate, access: ProjectAccess, session: DbSession
) -> ProjectOut:
    access.require(ProjectAction.EDIT)
    project = await service.update_project(
        session, access.project, name=body.name, description=body.description
    )
    return service.project_out(project, access.role)


@router.delete("/{project_id}", status_code=204)
async def delete_project(access: ProjectAccess, session: DbSession) -> None:
    """Delete the project with its members, tasks and invitations."""
    access.require(ProjectAction.MANAGE)
    await service.delete_project(session, access.project, access.actor)


@router.get("/{project_id}/members")
async def list_project_members(
    access: ProjectAccess, session: DbSession, page: Pagination
) -> Page[ProjectMemberOut]:
    access.require(ProjectAction.READ)
    items, cursor = await service.list_project_members(session, access.project.id, page)
    return Page(items=items, next_cursor=cursor)


@router.put("/{project_id}/members/{user_id}")
async def put_project_member(
    user_id: uuid.UUID,
    body: ProjectMemberPut,
    access: ProjectAccess,
    session: DbSession,
    response: Response,
) -> ProjectMemberOut:
    """Add a member of the tenant to the project (201), or change their role there (200)."""
    access.require(ProjectAction.MANAGE)
    member, created = await service.set_project_member(
        session, access.project.id, user_id, body.role, access.actor
    )
    if created:
        response.status_code = 201
    return member


@router.delete("/{project_id}/members/{user_id}", status_code=204)
async def remove_project_member(
    user_id: uuid.UUID, access: ProjectAccess, session: DbSession
) -> None:
    """Remove a member (project owners), or leave the project with your own user id. Their
    tasks in the project are unassigned."""
    if access.tenant.principal.user_id != user_id:
        access.require(ProjectAction.MANAGE)
    await service.remove_project_member(session, access.project.id, user_id, access.actor)


@router.post("/{project_id}/tasks", status_code=201)
async def create_task(body: TaskCreate, access: ProjectAccess, session: DbSession) -> TaskOut:
    access.require(ProjectAction.EDIT)
    task = await tasks.create_task(session, access.project.id, access.actor, **body.model_dump())
    return TaskOut.model_validate(task)


@router.get("/{project_id}/tasks")
async def list_tasks(
    access: ProjectAccess,
    session: DbSession,
    page: Pagination,
    status: TaskStatus | None = None,
    assignee_id: uuid.UUID | None = None,
) -> Page[TaskOut]:
    access.require(ProjectAction.READ)
    found, cursor = await tasks.list_tasks(
        session, access.project.id, page, status=status, assignee_id=assignee_id
    )
    return Page(items=[TaskOut.model_validate(task) for task in found], next_cursor=cursor)


@router.get("/{project_id}/tasks/{task_id}")
async def read_task(task_id: uuid.UUID, access: ProjectAccess, session: DbSession) -> TaskOut:
    access.require(ProjectAction.READ)
    return TaskOut.model_validate(await tasks.get_task(session, access.project.id, task_id))


@router.patch("/{project_id}/tasks/{task_id}")
async def update_task(
    task_id: uuid.UUID, body: TaskUpdate, access: ProjectAccess, session: DbSession
) -> TaskOut:
    access.require(ProjectAction.EDIT)
    task = await tasks.update_task(session, access.project.id, task_id, body.changes())
    return TaskOut.model_validate(task)


@router.delete("/{project_id}/tasks/{task_id}", status_code=204)
async def delete_task(task_id: uuid.UUID, access: ProjectAccess, session: DbSession) -> None:
    access.require(ProjectAction.EDIT)
    await tasks.delete_task(session, access.project.id, task_id)
