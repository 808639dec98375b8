"""HTTP routes of projects, project members and tasks. Thin: parse, call, shape the answer.

`ProjectAccess` has already answered 404 for a project the caller cannot see (and 404/403 for
the tenant); the service checks the action against the project matrix (403 when too weak).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter, Response

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
    json_response,
    require_modified,
    rows_page_response,
    tagged,
)
from backend.projects import service, tasks, trash
from backend.projects.dependencies import ProjectAccess, TaskAccess
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
    TrashItem,
)
from tenants.dependencies import TenantAccess
from tenants.idempotent_routes import Idempotency, IdempotentRoute

router = APIRouter(
    prefix="/api/v1/tenants/{tenant_id}/projects", tags=["projects"], route_class=IdempotentRoute
)
trash_router = APIRouter(prefix="/api/v1/tenants/{tenant_id}", tags=["trash"])
TaskPage = Page[TaskOut]


@trash_router.get("/trash")
async def list_trash(
    caller: TenantAccess, session: DbSession, page: Pagination, settings: AppSettings
) -> Page[TrashItem]:
    """Deleted projects and tasks, most recently deleted first, until the purge removes them
    (`purge_after`). Tenant owners and admins see all; project owners their projects'."""
    retention = timedelta(days=settings.trash_retention_days)
    items, cursor = await trash.list_trash(session, caller, page, retention=retention)
    return Page(items=items, next_cursor=cursor)


@router.post("", status_code=201)
async def create_project(
    body: ProjectCreate, caller: TenantAccess, session: DbSession, idempotency: Idempotency
) -> ProjectOut:
    """Create a project; a user who creates one becomes its owner."""
    created = await service.create_project(session, caller, body.name, body.description)
    return service.read_project(created)


@router.get("")
async def list_projects(
    caller: TenantAccess, session: DbSession, page: Pagination
) -> Page[ProjectOut]:
    """Every project for tenant owners, admins and service clients; the caller's otherwise."""
    items, cursor = await service.list_projects(session, caller, page)
    return Page(items=items, next_cursor=cursor)


@router.get("/{project_id}", responses=READ_RESPONSES)
async def read_project(
    caller: ProjectAccess, condition: IfNoneMatch, response: Response
) -> ProjectOut:
    project = service.read_project(caller)
    tagged(response, condition, service.project_tag(caller.project, caller.role))
    return project


@router.patch("/{project_id}", responses=UPDATE_RESPONSES)
async def update_project(
    body: ProjectUpdate,
    caller: ProjectAccess,
    session: DbSession,
    condition: IfMatch,
    response: Response,
) -> ProjectOut:
    project = await service.update_project(
        session, caller, name=body.name, description=body.description, precondition=condition
    )
    response.headers["ETag"] = service.project_tag(caller.project, caller.role)
    return project


@router.delete("/{project_id}", status_code=204, responses=WRITE_RESPONSES)
async def delete_project(caller: ProjectAccess, session: DbSession, condition: IfMatch) -> None:
    """Move the project to the trash with its tasks; its members and invitations are hidden
    with it until it is restored or purged."""
    await service.delete_project(session, caller, precondition=condition)


@router.post("/{project_id}/restore", responses={200: {"headers": ETAG_HEADER}})
async def restore_project(
    project_id: uuid.UUID, caller: TenantAccess, session: DbSession, response: Response
) -> ProjectOut:
    """Bring the project back from the trash, with the tasks deleted with it."""
    restored = await service.restore_project(session, caller, project_id)
    response.headers["ETag"] = service.project_tag(restored.project, restored.role)
    return service.read_project(restored)


@router.get("/{project_id}/members")
async def list_project_members(
    caller: ProjectAccess, session: DbSession, page: Pagination
) -> Page[ProjectMemberOut]:
    items, cursor = await service.list_project_members(session, caller, page)
    return Page(items=items, next_cursor=cursor)


@router.get("/{project_id}/members/{user_id}", responses=READ_RESPONSES)
async def read_project_member(
    user_id: uuid.UUID,
    caller: ProjectAccess,
    session: DbSession,
    condition: IfNoneMatch,
    response: Response,
) -> ProjectMemberOut:
    member, tag = await service.read_project_member(session, caller, user_id)
    tagged(response, condition, tag)
    return member


@router.put(
    "/{project_id}/members/{user_id}",
    responses={**UPDATE_RESPONSES, 201: {"headers": ETAG_HEADER}},
)
async def put_project_member(
    user_id: uuid.UUID,
    body: ProjectMemberPut,
    caller: ProjectAccess,
    session: DbSession,
    condition: IfMatch,
    response: Response,
) -> ProjectMemberOut:
    """Add a member of the tenant to the project (201), or change their role there (200).
    With `If-Match`, only an existing membership changes."""
    member, created, tag = await service.set_project_member(
        session, caller, user_id, body.role, precondition=condition
    )
    if created:
        response.status_code = 201
    response.headers["ETag"] = tag
    return member


@router.delete("/{project_id}/members/{user_id}", status_code=204, responses=WRITE_RESPONSES)
async def remove_project_member(
    user_id: uuid.UUID, caller: ProjectAccess, session: DbSession, condition: IfMatch
) -> None:
    """Remove a member (project owners), or leave the project with your own user id. Their
    tasks in the project are unassigned."""
    await service.remove_project_member(session, caller, user_id, precondition=condition)


# The task routes answer `TaskOut`'s JSON serialised once, from the task (`tasks.task_json`),
# which also gives the entity tag; `response_model` documents it.


@router.post("/{project_id}/tasks", status_code=201, response_model=TaskOut)
async def create_task(
    body: TaskCreate, caller: ProjectAccess, session: DbSession, idempotency: Idempotency
) -> Response:
    task = await tasks.create_task(session, caller, **body.model_dump())
    return json_response(tasks.task_json(task)[0], 201)


@router.get("/{project_id}/tasks", response_model=TaskPage)
async def list_tasks(
    caller: ProjectAccess,
    session: DbSession,
    page: Pagination,
    status: TaskStatus | None = None,
    assignee_id: uuid.UUID | None = None,
) -> Response:
    found, cursor = await tasks.list_tasks(
        session, caller, page, status=status, assignee_id=assignee_id
    )
    return rows_page_response(found, cursor)


@router.get("/{project_id}/tasks/{task_id}", response_model=TaskOut, responses=READ_RESPONSES)
async def read_task(found: TaskAccess, condition: IfNoneMatch) -> Response:
    body, tag = tasks.read_task(found)
    require_modified(condition, tag)
    return json_response(body, etag=tag)


@router.patch("/{project_id}/tasks/{task_id}", response_model=TaskOut, responses=UPDATE_RESPONSES)
async def update_task(
    task_id: uuid.UUID,
    body: TaskUpdate,
    caller: ProjectAccess,
    session: DbSession,
    condition: IfMatch,
) -> Response:
    task = await tasks.update_task(session, caller, task_id, body.changes(), precondition=condition)
    answer, tag = tasks.task_json(task)
    return json_response(answer, etag=tag)


@router.post(
    "/{project_id}/tasks/{task_id}/restore",
    response_model=TaskOut,
    responses={200: {"headers": ETAG_HEADER}},
)
async def restore_task(task_id: uuid.UUID, caller: ProjectAccess, session: DbSession) -> Response:
    """Bring the task back from the trash."""
    body, tag = tasks.task_json(await tasks.restore_task(session, caller, task_id))
    return json_response(body, etag=tag)


@router.delete("/{project_id}/tasks/{task_id}", status_code=204, responses=WRITE_RESPONSES)
async def delete_task(
    task_id: uuid.UUID, caller: ProjectAccess, session: DbSession, condition: IfMatch
) -> None:
    await tasks.delete_task(session, caller, task_id, precondition=condition)
