"""Tasks of a project. Services take the session and never commit.

An assignee must be a member of the project (a `project_members` row): tenant owners and admins
who see every project add themselves to it to take tasks. Any other id answers 422, the same
for a stranger, a tenant member outside the project and an id from another tenant.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.errors import NotFound, Problem
from backend.core.pagination import PageRequest, page_of, paginate
from backend.projects.models import ProjectMember, Task, TaskStatus
from tenants.audit import Actor

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


async def create_task(
    session: AsyncSession,
    project_id: uuid.UUID,
    actor: Actor,
    *,
    title: str,
    description: str,
    status: TaskStatus,
    assignee_id: uuid.UUID | None,
) -> Task:
    await _require_assignable(session, project_id, assignee_id)
    task = Task(
        project_id=project_id,
        title=title,
        description=description,
        status=status,
        assignee_id=assignee_id,
        created_by=actor.user_id,
    )
    session.add(task)
    await session.flush()
    return task


async def list_tasks(
    session: AsyncSession,
    project_id: uuid.UUID,
    page: PageRequest,
    *,
    status: TaskStatus | None = None,
    assignee_id: uuid.UUID | None = None,
) -> tuple[list[Task], str | None]:
    """A page of the project's tasks, oldest first, optionally filtered."""
    statement = select(Task).where(Task.project_id == project_id)
    if status is not None:
        statement = statement.where(Task.status == status)
    if assignee_id is not None:
        statement = statement.where(Task.assignee_id == assignee_id)
    statement = paginate(statement, Task.created_at, Task.id, page)
    return page_of((await session.scalars(statement)).all(), page)


async def get_task(session: AsyncSession, project_id: uuid.UUID, task_id: uuid.UUID) -> Task:
    task = await session.scalar(
        select(Task).where(Task.project_id == project_id, Task.id == task_id)
    )
    if task is None:
        raise NotFound(TASK_NOT_FOUND)
    return task


async def update_task(
    session: AsyncSession, project_id: uuid.UUID, task_id: uuid.UUID, changes: dict[str, Any]
) -> Task:
    """Apply `changes` (title, description, status, assignee_id; None unassigns)."""
    task = await get_task(session, project_id, task_id)
    if "assignee_id" in changes:
        await _require_assignable(session, project_id, changes["assignee_id"])
    for field, value in changes.items():
        setattr(task, field, value)
    await session.flush()
    return task


async def delete_task(session: AsyncSession, project_id: uuid.UUID, task_id: uuid.UUID) -> None:
    result = await session.execute(
        delete(Task).where(Task.project_id == project_id, Task.id == task_id)
    )
    if result.rowcount == 0:
        raise NotFound(TASK_NOT_FOUND)
