"""Tasks of a project. Services take the session and a `ProjectCaller`, decide whether the
caller may (project owners and editors write, every project role reads), record the audit event,
and never commit.

An assignee must be a member of the project (a `project_members` row): tenant owners and admins
who see every project add themselves to it to take tasks. Any other id answers 422, the same
for a stranger, a tenant member outside the project and an id from another tenant.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, and_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.audit import apply_changes, audit_value
from backend.core.conditional import (
    ANY_VERSION,
    Preconditions,
    flush_at_version,
    json_entity_tag,
)
from backend.core.database import utcnow
from backend.core.errors import NotFound, Problem
from backend.core.pagination import PageRequest, fetch_page
from backend.core.schemas import model_json
from backend.core.soft_delete import INCLUDE_DELETED
from backend.core.statements import AnyRow, AnySelect
from backend.identity.principals import Credentials
from backend.projects.access import PROJECT_ACCESS, ProjectCaller, resolve_project_access
from backend.projects.models import Project, ProjectMember, Task, TaskStatus
from backend.projects.schemas import TaskOut
from tenants.audit import record_audit
from tenants.roles import ProjectAction

TASK_NOT_FOUND = "No such task in this project."


class AssigneeNotInProject(Problem):
    status = 422

    def __init__(self) -> None:
        super().__init__("assignee_id must be a member of the project.")


async def _require_assignable(
    session: AsyncSession, project_id: uuid.UUID, assignee_id: uuid.UUID | None
) -> None:
    if assignee_id is None:
        return
    member = await session.scalar(
        select(ProjectMember.user_id).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == assignee_id
        )
    )
    if member is None:
        raise AssigneeNotInProject()


# What an answer shows of a task: `TaskOut`'s fields. Reads select just these columns (and the
# version), as rows: no `Task` objects to build and track in the session. The ORM filter scopes
# column selects to the tenant like entity selects.
_SHOWN = tuple(TaskOut.model_fields)
_SHOWN_COLUMNS = tuple(getattr(Task, name) for name in _SHOWN)


def task_json(task: Task | AnyRow) -> tuple[bytes, str]:
    """A `Task`, or a row of its shown columns and version, as `TaskOut`'s JSON, with the
    entity tag of that JSON: serialised once, for the body and the tag."""
    return _shown_json({name: getattr(task, name) for name in _SHOWN}, task.version)


def _shown_json(shown: dict[str, Any], version: int) -> tuple[bytes, str]:
    body = model_json(shown)
    return body, json_entity_tag(version, body)


def task_tag(task: Task | AnyRow) -> str:
    return task_json(task)[1]


def task_out(task: Task) -> TaskOut:
    """The task as a model: what its webhook events carry."""
    return TaskOut.model_validate(task)


_DESCRIBED = ("title", "status", "assignee_id")


def _described(task: Task) -> dict[str, Any]:
    """What a task's creation and deletion record in the audit log."""
    return {field: audit_value(getattr(task, field)) for field in _DESCRIBED}


async def create_task(
    session: AsyncSession,
    caller: ProjectCaller,
    *,
    title: str,
    description: str,
    status: TaskStatus,
    assignee_id: uuid.UUID | None,
) -> Task:
    caller.require(ProjectAction.EDIT)
    project_id = caller.project.id
    await _require_assignable(session, project_id, assignee_id)
    now = utcnow()
    # Every column the answer and the event show is set here, so the INSERT waits for the
    # commit's flush, which writes it with the audit and outbox rows: one flush, not two.
    task = Task(
        id=uuid.uuid4(),
        project_id=project_id,
        title=title,
        description=description,
        status=status,
        assignee_id=assignee_id,
        created_by=caller.tenant.user_id,
        created_at=now,
        updated_at=now,
        version=1,
    )
    session.add(task)
    data = _described(task)
    record_audit(session, caller.actor, "task.created", "task", task.id, data, event=task_out(task))
    return task


@functools.cache
def _task_list(by_status: bool, by_assignee: bool) -> AnySelect:
    """The list's statement for each combination of filters, built once (values are bound)."""
    statement = select(*_SHOWN_COLUMNS).where(Task.project_id == bindparam("project_id"))
    if by_status:
        statement = statement.where(Task.status == bindparam("status"))
    if by_assignee:
        statement = statement.where(Task.assignee_id == bindparam("assignee_id"))
    return statement


async def list_tasks(
    session: AsyncSession,
    caller: ProjectCaller,
    page: PageRequest,
    *,
    status: TaskStatus | None = None,
    assignee_id: uuid.UUID | None = None,
) -> tuple[list[Row[Any]], str | None]:
    """A page of the project's tasks (rows of `TaskOut`'s fields), oldest first, optionally
    filtered."""
    caller.require(ProjectAction.READ)
    statement = _task_list(status is not None, assignee_id is not None)
    values = {"project_id": caller.project.id, "status": status, "assignee_id": assignee_id}
    return await fetch_page(session, statement, Task.created_at, Task.id, page, parameters=values)


# Built once: the ORM filter scopes a statement object once, and SQLAlchemy keys it once.
_TASK_BY_ID = select(Task).where(
    Task.project_id == bindparam("project_id"), Task.id == bindparam("task_id")
)


async def _task(session: AsyncSession, project_id: uuid.UUID, task_id: uuid.UUID) -> Task:
    task = await session.scalar(_TASK_BY_ID, {"project_id": project_id, "task_id": task_id})
    if task is None:
        raise NotFound(TASK_NOT_FOUND)
    return task


class _TaskOfProject:
    """Adds to the project access query the shown columns and version of the project's task
    `task_id`, by an outer join (NULLs when the project has no such task). The ORM filters put
    the tenant and `deleted_at IS NULL` in the join's ON clause, as in any select."""

    def for_user(self, statement: AnySelect) -> AnySelect:
        on_task = and_(
            Task.tenant_id == Project.tenant_id,
            Task.project_id == Project.id,
            Task.id == bindparam("task_id"),
        )
        return statement.outerjoin(Task, on_task).add_columns(*_SHOWN_COLUMNS, Task.version)

    for_client = for_user


# A task read asks one query for the caller's access and the task: one round trip, and one
# statement through the ORM, fewer than an access query followed by the task's own.
TASK_READ_ACCESS = PROJECT_ACCESS.extended(_TaskOfProject())


@dataclass(frozen=True)
class TaskRead:
    """The caller on a project and the task they asked for, as `TASK_READ_ACCESS` found them:
    `columns` are the shown columns and the version, all None when there is no such task."""

    caller: ProjectCaller
    columns: tuple[Any, ...]


async def resolve_task_read(
    session: AsyncSession,
    claims: Credentials,
    tenant_id: uuid.UUID,
    project_id: uuid.UUID,
    task_id: uuid.UUID,
) -> TaskRead:
    """The access to the project (404 as `ProjectAccess` answers it) and the task, in one query."""
    caller, columns = await resolve_project_access(
        session, claims, tenant_id, project_id, TASK_READ_ACCESS, {"task_id": task_id}
    )
    return TaskRead(caller, columns)


def read_task(found: TaskRead) -> tuple[bytes, str]:
    """The task as `TaskOut`'s JSON, and its entity tag; every project role reads."""
    found.caller.require(ProjectAction.READ)
    *shown, version = found.columns
    if version is None:  # never NULL in a row: no task was found
        raise NotFound(TASK_NOT_FOUND)
    return _shown_json(dict(zip(_SHOWN, shown, strict=True)), version)


async def update_task(
    session: AsyncSession,
    caller: ProjectCaller,
    task_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    precondition: Preconditions = ANY_VERSION,
) -> Task:
    """Apply `changes` (title, description, status, assignee_id; None unassigns)."""
    caller.require(ProjectAction.EDIT)
    task = await _task(session, caller.project.id, task_id)
    precondition.require_match(task_tag(task))
    if "assignee_id" in changes:
        await _require_assignable(session, caller.project.id, changes["assignee_id"])
    changed = apply_changes(task, changes)
    if changed:
        await flush_at_version(session, precondition)  # sets updated_at, which the event shows
        event = task_out(task)
        record_audit(session, caller.actor, "task.updated", "task", task.id, changed, event=event)
    return task


async def delete_task(
    session: AsyncSession,
    caller: ProjectCaller,
    task_id: uuid.UUID,
    *,
    precondition: Preconditions = ANY_VERSION,
) -> None:
    """Move a task to the trash (project owners and editors)."""
    caller.require(ProjectAction.EDIT)
    if precondition.expects_version:
        await _delete_task_at_version(session, caller, task_id, precondition)
        return
    # One round trip: the UPDATE is the read (the soft-delete filter reaches SELECTs only, so
    # the statement names the live rows itself).
    deleted = (
        await session.execute(
            update(Task)
            .where(
                Task.project_id == caller.project.id,
                Task.id == task_id,
                Task.deleted_at.is_(None),
            )
            .values(deleted_at=utcnow(), deleted_by=caller.tenant.user_id, version=Task.version + 1)
            .returning(*_SHOWN_COLUMNS)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if deleted is None:
        raise NotFound(TASK_NOT_FOUND)
    event = TaskOut.model_validate(deleted, from_attributes=True)
    data = {field: audit_value(getattr(event, field)) for field in _DESCRIBED}
    record_audit(session, caller.actor, "task.deleted", "task", task_id, data, event=event)


async def _delete_task_at_version(
    session: AsyncSession, caller: ProjectCaller, task_id: uuid.UUID, precondition: Preconditions
) -> None:
    """`delete_task` under `If-Match`: read the task, compare, write at the version read."""
    task = await _task(session, caller.project.id, task_id)
    precondition.require_match(task_tag(task))
    task.deleted_at, task.deleted_by = utcnow(), caller.tenant.user_id
    await flush_at_version(session, precondition)  # sets updated_at, as the event shows
    data, event = _described(task), task_out(task)
    record_audit(session, caller.actor, "task.deleted", "task", task_id, data, event=event)


async def restore_task(session: AsyncSession, caller: ProjectCaller, task_id: uuid.UUID) -> Task:
    """Bring a task back from the trash (project owners and editors). 404 when it is not in
    the trash of this project; a task deleted with its project comes back with the project."""
    caller.require(ProjectAction.EDIT)
    task = await session.scalar(
        select(Task).where(
            Task.project_id == caller.project.id,
            Task.id == task_id,
            Task.deleted_at.is_not(None),
        ),
        execution_options=INCLUDE_DELETED,
    )
    if task is None:
        raise NotFound(TASK_NOT_FOUND)
    task.deleted_at, task.deleted_by = None, None
    await flush_at_version(session)
    record_audit(session, caller.actor, "task.restored", "task", task_id, _described(task))
    return task
